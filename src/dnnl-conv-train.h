// Training convolutions in float32 through oneDNN's Winograd (forward_training, backward_data,
// backward_weights) as one autograd Function: the experiment CNN's 3x3 layers with 32..128
// channels, where libtorch's conv2d runs direct convolution forward and backward. Compiled in only
// with TL_WITH_DNNL (scripts/find-libtorch.mjs); follows native().setConvAlgorithm ('direct' and
// setDnnlConv(false) turn it off).
#pragma once
#include <torch/torch.h>

#include "layers.h"

namespace tl {
namespace dnnlconv {

// Conv2D `L` on `x` (bias added, no activation) with Winograd forward and backward, when a gradient
// is needed, the layer is float32 (not mixed), 3x3, stride 1, no dilation, not depthwise, with at
// least 16 channels in and out, on the CPU, and oneDNN has Winograd for it; otherwise an undefined
// tensor (the caller runs libtorch's conv2d).
torch::Tensor trainingForward(const Layer& L, const torch::Tensor& x);

}  // namespace dnnlconv
}  // namespace tl
