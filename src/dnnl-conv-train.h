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

// For a stretch of such layers in Winograd's blocked layout (blocked-stretch.cc): whether `L` on
// `channels` input channels qualifies (as above, channels and filters multiples of 16), and
// trainingForward with `x` channels-last (4-D) or blocked (5-D [N][C/16][H][W][16]), the output
// blocked when `blockedOut`; gradients come back in the layouts of the tensors they belong to.
bool trainingBlockedApplies(const Layer& L, int64_t channels);
torch::Tensor trainingForwardBlocked(const Layer& L, const torch::Tensor& x, bool blockedOut);

}  // namespace dnnlconv
}  // namespace tl
