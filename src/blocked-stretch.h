// Float32 convolutions in a row, in oneDNN Winograd's own blocked layout. Winograd reads and writes
// nChw16c, so each call alone converts its input from channels-last and its output back: in VGG16's
// float32 feature pass those copies took about as long as block 1's second convolution itself, and
// in the experiment CNN's training step about a third of its convolutions' time. A stretch of
// Conv2D (relu or linear) layers that run Winograd, with 2x2 MaxPooling2D layers between them,
// instead keeps the activations blocked from one layer to the next (5-D [N][C/16][H][W][16]
// tensors): one conversion in and one out. In inference the stretch runs oneDNN's inference
// primitives (dnnl-conv.cc); in training its Winograd training primitives (dnnl-conv-train.cc),
// whose gradients then come and go blocked too.
//
// Numerics are those of the layers run one by one: the same oneDNN primitives (but for a stretch's
// 3-channel first convolution, which oneDNN runs on planar input with another kernel), and a pool
// after a relu convolution pools first and applies the relu after (maxPoolRelu's rule: a value wins
// its window if greater or NaN; the relu keeps NaN), its backward through the winner it recorded.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <cstddef>
#include <vector>

#include "layers.h"

namespace tl {

// Whether a stretch starts at layers[i] on `x`: a float32 Conv2D, relu or linear, and the layer
// after it (before `to`) one that runs Winograd (dnnlconv::blockedApplies, or in training
// trainingBlockedApplies) or, after a Winograd one, a 2x2 MaxPooling2D of stride 2, 'valid'. In
// inference (no layer needs a gradient) the first may be any convolution that can write its output
// blocked (dnnlconv::blockedOutputApplies: an image's first too, which oneDNN then runs on planar
// input); in training every convolution needs one.
bool blockedStretchApplies(const std::vector<Layer>& layers, size_t i, size_t to, const torch::Tensor& x);

// Runs the stretch from layers[i] for as long as the layers qualify (before `to`); returns its
// output channels-last and leaves `i` at its last layer, or an undefined tensor when oneDNN had no
// primitive for the first convolution after all (then nothing ran). Each layer is timed as it runs.
torch::Tensor blockedStretch(const std::vector<Layer>& layers, size_t& i, size_t to, const torch::Tensor& x);

// info().blockedStretches: stretches run so far
void addBlockedStretchInfo(Napi::Object& out);
// setBlockedStretch(on) (tests and bench: off runs the layers one by one), returns the previous setting
void addBlockedStretchExports(Napi::Env env, Napi::Object exports);

}  // namespace tl
