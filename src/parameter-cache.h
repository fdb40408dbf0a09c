// What the kernels derive from a layer's parameters (packed kernels, rounded biases), kept per
// layer and remade when a parameter changes: set_weights and optimizer steps bump a tensor's
// version, and the tensor is held so that its identity cannot pass to another.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <mutex>

namespace tl {

// The tensor something was derived from, and its version then.
struct DerivedFrom {
  torch::Tensor source;
  int64_t version = -1;
  // whether `t` is still that tensor, unchanged (an undefined one matches an undefined one)
  bool current(const torch::Tensor& t) const {
    return source.defined() == t.defined() && (!t.defined() || (source.is_same(t) && version == static_cast<int64_t>(t._version())));
  }
  void remember(const torch::Tensor& t) {
    source = t;
    version = t.defined() ? static_cast<int64_t>(t._version()) : -1;
  }
};

// A bias as a bfloat16 convolution adds it (autocast's, oneDNN's and the AMX kernels' alike): rounded
// to bfloat16 (nearest even), kept float32.
inline torch::Tensor bf16RoundedBias(const torch::Tensor& bias) { return bias.detach().to(at::kBFloat16).to(at::kFloat).contiguous(); }

// The layer's cache of type T held in `slot` (one of Layer's cache slots), made on first use.
template <class T>
T& layerCache(std::shared_ptr<void>& slot) {
  static std::mutex creation;
  std::lock_guard<std::mutex> lock(creation);
  if (!slot) slot = std::make_shared<T>();
  return *static_cast<T*>(slot.get());
}

}  // namespace tl
