// Keras dtype policies in the engine: 'float32', and 'mixed_bfloat16' (variables float32,
// computations bfloat16 through libtorch's CPU autocast). JS resolves each layer's policy; the
// engine only follows it, layer by layer.
#pragma once
#include <torch/torch.h>

#include <string>

#include "layers.h"

namespace tl {

// true for 'mixed_bfloat16', false for 'float32'; anything else names the layer and the choices.
bool parseDtypePolicy(const std::string& name, const std::string& layer);

// Keras's relu6: hardtanh; where a bfloat16 gradient flows, hardtanh's forward with TensorFlow's
// gradient (libtorch 1.13's hardtanh has no bfloat16 backward).
torch::Tensor kerasRelu6(const torch::Tensor& x);

// Whether the CPU computes bfloat16 natively (avx512_bf16 or amx_bf16 in /proc/cpuinfo); without
// it libtorch emulates bf16, slower than float32. `reason` says what was found.
bool cpuHasBf16(std::string& reason);

// Autocast is thread-local state: one forward pass turns it on per mixed layer, and this scope
// turns it off and drops autocast's cached weight casts however the pass ends.
class AutocastScope {
 public:
  AutocastScope();
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;
};

// One layer under its policy. A float32 layer casts a bfloat16 input up (Keras casts inputs to the
// layer's compute dtype). A mixed layer runs conv/matmul in bfloat16 under autocast, batch
// normalization in float32 (as Keras's does), and, as the model's output layer, its activation in
// float32 (Keras's mixed-precision guide: a float32 output keeps the softmax/sigmoid and the loss
// numerically stable).
torch::Tensor forwardWithPolicy(const Layer& layer, const torch::Tensor& x, bool training, bool skipActivation, bool isOutput);

}  // namespace tl
