// Inference convolutions straight through oneDNN (the library libtorch itself runs on): when no
// gradient is needed, a Conv2D runs as a oneDNN forward_inference primitive on the tensors' own
// channels-last memory, with its weights reordered once into the primitive's preferred layout and
// kept with the layer, its ReLU fused as a post-op, and in float32 Winograd where oneDNN has it.
// libtorch's conv2d reorders the weights on every call and cannot fuse the ReLU.
// Compiled in only with TL_WITH_DNNL (scripts/find-libtorch.mjs); without it nothing applies.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <string>

#include "layers.h"

namespace tl {
namespace dnnlconv {

// The convolution algorithm float32 layers ask oneDNN for: 'auto' (the default, see dnnl-conv.cc),
// 'direct' (always direct; training through libtorch), 'winograd' (Winograd wherever oneDNN has it,
// else direct; training as auto: dnnl-conv-train.cc).
enum class Algorithm { Auto, Direct, Winograd };
Algorithm algorithm();
bool enabled();  // false after setDnnlConv(false)
void countCall();  // one more convolution through oneDNN (info().dnnlCalls)

// Conv2D `L` on `x` through oneDNN (bias added, ReLU fused when `relu`, no other activation), in
// the dtype the layer's policy computes it in; an undefined tensor when this path does not apply
// (not compiled in, switched off, a gradient is needed, depthwise, another dtype or device, or no
// oneDNN primitive for it): the caller then runs libtorch's conv2d.
torch::Tensor forward(const Layer& L, const torch::Tensor& x, bool relu);

// Float32 inference (and training: dnnl-conv-train.h) can keep activations in Winograd's blocked
// layout (nChw16c) from one layer to the next (blocked-stretch.cc) instead of converting every
// convolution's input and output from and to channels-last: whether Conv2D `L` on `channels` input
// channels runs Winograd (float32, 3x3, channels and filters multiples of 16, oneDNN on).
bool blockedApplies(const Layer& L, int64_t channels);
// Whether Conv2D `L` can write its output blocked for such a stretch to start from, whatever it
// computes with (float32, filters a multiple of 16, oneDNN on): an image's first convolution too.
bool blockedOutputApplies(const Layer& L);
// forward() with the input channels-last (4-D) or blocked (5-D [N][C/16][H][W][16]) and the output
// blocked when `blockedOut`; undefined where forward() would be.
torch::Tensor forwardBlocked(const Layer& L, const torch::Tensor& x, bool relu, bool blockedOut);

// info(): whether the path is compiled in, oneDNN's version, and how many convolutions it ran.
void addInfo(Napi::Object& out);
// setConvAlgorithm (engine option), setDnnlConv (tests and bench: off runs libtorch's conv2d, inference and training).
void addExports(Napi::Env env, Napi::Object exports);

}  // namespace dnnlconv
}  // namespace tl
