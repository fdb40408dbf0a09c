// Training convolutions through oneDNN (forward_training, backward_data, backward_weights) as one
// autograd Function: in float32 with Winograd, the experiment CNN's 3x3 layers with 32..128
// channels, where libtorch's conv2d runs direct convolution forward and backward; under
// mixed_bfloat16 direct in bfloat16 with the weight and bias gradients summed and returned in
// float32 (libtorch's bfloat16 conv2d rounds the weight gradient to bfloat16 before autocast's cast
// back: this path is more precise, not less). Compiled in only with TL_WITH_DNNL
// (scripts/find-libtorch.mjs); setDnnlConv(false) turns both off, setConvAlgorithm('direct') the
// float32 one.
#pragma once
#include <torch/torch.h>

#include "layers.h"

namespace tl {
namespace dnnlconv {

// Conv2D `L` on `x` (bias added, no activation) through oneDNN forward and backward, when a
// gradient is needed, the layer is not depthwise, has at least 16 channels in and out, runs on the
// CPU, oneDNN has a primitive for it, and either
// - the layer is float32, 3x3, stride 1, no dilation (Winograd; the output float32), or
// - the layer is mixed_bfloat16 under autocast on a CPU with native bfloat16, the input float32
//   (rounded here) or bfloat16 (direct; the output bfloat16, as libtorch's conv2d under autocast);
// otherwise an undefined tensor (the caller runs libtorch's conv2d).
torch::Tensor trainingForward(const Layer& L, const torch::Tensor& x);

}  // namespace dnnlconv
}  // namespace tl
