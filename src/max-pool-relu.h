// relu(max_pool2d(y)) as one autograd function, for a Conv2D(relu) + MaxPooling2D pair: a byte per
// output for each window's winner instead of an int64 index, the input not kept for backward, no
// zero-filled gradient, relu's backward folded in. Falls back to libtorch's max_pool2d + relu_ where unsupported.
#pragma once
#include <torch/torch.h>

#include "layers.h"

namespace tl {

// The pooling layer `pool` (under its dtype policy) followed by a ReLU, on the conv output `x`.
torch::Tensor maxPoolRelu(const Layer& pool, const torch::Tensor& x, bool training, bool isOutput);

}  // namespace tl
