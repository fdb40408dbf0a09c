// A mixed_bfloat16 Conv2D on an input with few channels (an image's RGB) while training: oneDNN's
// bfloat16 weight gradient has no fast kernel for so few input channels (slower than its float32
// one), so this keeps libtorch's bfloat16 forward and computes the weight and bias gradients with a
// direct kernel that reads the bfloat16 input and output gradient once and sums in float32.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "layers.h"

namespace tl {

// Whether `conv` on `input` takes this path: a mixed_bfloat16 Conv2D (not depthwise) running under
// autocast on the CPU, at most 4 input channels, kernel width x channels <= 12, a weight that needs
// its gradient and an input that does not (the model's first convolution).
bool fewChannelConvApplies(const Layer& conv, const torch::Tensor& input);

// conv2d(input, weight, bias) in bfloat16, exactly as autocast computes it, with the gradients above.
torch::Tensor fewChannelConv(const Layer& conv, const torch::Tensor& input, const std::vector<int64_t>& padding);

}  // namespace tl
