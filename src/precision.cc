#include "precision.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "simd.h"

namespace tl {

bool parseDtypePolicy(const std::string& name, const std::string& layer) {
  if (name == "mixed_bfloat16") return true;
  if (name == "float32") return false;
  throw std::invalid_argument("layer '" + layer + "': unsupported dtype policy '" + name + "' (use 'float32' or 'mixed_bfloat16')");
}

namespace {

// TensorFlow's relu6 gradient from the output, on bfloat16 bits: the gradient where 0 < y < 6, else
// 0 (NaN included), elements [begin, end), in one pass.
TL_CLONES void relu6Gradient(const uint16_t* y, const uint16_t* g, uint16_t* out, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float v = simd::value(y[i]);
    out[i] = v > 0.f && v < 6.f ? g[i] : uint16_t{0};
  }
}

// relu6 on bfloat16 where a gradient flows: libtorch 1.13's hardtanh has a bfloat16 forward but no
// backward. hardtanh's one pass forward, and TensorFlow's gradient: one strictly inside (0, 6), zero
// at and beyond both ends (and for NaN), read from the output, which the next layer keeps anyway.
struct Relu6Bf16Function : public torch::autograd::Function<Relu6Bf16Function> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    torch::Tensor y = torch::hardtanh(x, 0.0, 6.0);
    ctx->save_for_backward({y});
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const torch::Tensor y = ctx->get_saved_variables()[0];
    const auto layout = y.suggest_memory_format();
    const torch::Tensor yd = y.contiguous(layout), g = grads[0].to(at::kBFloat16).contiguous(layout);
    torch::Tensor dx = torch::empty_like(yd);
    const uint16_t *yp = simd::bits(yd), *gp = simd::bits(g);
    uint16_t* dp = simd::bits(dx);
    at::parallel_for(0, yd.numel(), 1 << 16, [&](int64_t begin, int64_t end) { relu6Gradient(yp, gp, dp, begin, end); });
    return {dx};
  }
};

}  // namespace

torch::Tensor kerasRelu6(const torch::Tensor& x) {
  const bool grad = x.requires_grad() && torch::GradMode::is_enabled();
  return x.scalar_type() == at::kBFloat16 && grad ? Relu6Bf16Function::apply(x) : torch::hardtanh(x, 0.0, 6.0);
}

bool cpuHasBf16(std::string& reason) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  if (!cpuinfo) {
    reason = "cannot read /proc/cpuinfo to check for avx512_bf16 / amx_bf16";
    return false;
  }
  std::set<std::string> flags;
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string w; words >> w;) flags.insert(w);
    break;
  }
  std::string found;
  for (const char* flag : {"amx_bf16", "avx512_bf16"}) {
    if (flags.count(flag)) found += (found.empty() ? "" : " + ") + std::string(flag);
  }
  if (found.empty()) {
    reason = "the CPU has neither avx512_bf16 nor amx_bf16, so bfloat16 would be emulated (slower than float32)";
    return false;
  }
  reason = "the CPU has " + found;
  return true;
}

AutocastScope::AutocastScope() { at::autocast::set_autocast_cpu_dtype(at::kBFloat16); }

AutocastScope::~AutocastScope() {
  at::autocast::set_cpu_enabled(false);
  at::autocast::clear_cache();
}

torch::Tensor forwardWithPolicy(const Layer& layer, const torch::Tensor& x, bool training, bool skipActivation, bool isOutput) {
  at::autocast::set_cpu_enabled(layer.mixedBf16);
  // a mixed BatchNorm on its moving statistics with nothing to differentiate (a frozen base's):
  // libtorch's batch_norm reads the bfloat16 input with the float32 statistics and computes in
  // float32, the bits of the float32 pass rounded (checked bit for bit on libtorch 1.13), in one
  // pass over the activations instead of three. Not where a gradient flows: libtorch 1.13's mixed
  // backward sums in lower precision when the gradient's layout differs from the input's (a bias
  // gradient 0.8% off, measured)
  if (layer.kind == Kind::BatchNorm && layer.mixedBf16 && x.scalar_type() == at::kBFloat16 && !isOutput && !(training && layer.trainable) &&
      !needsGradient(layer, x)) {
    return forwardLayer(layer, x, training, skipActivation);
  }
  if (!layer.mixedBf16 || layer.kind == Kind::BatchNorm || (isOutput && layer.kind == Kind::Activation)) {
    torch::Tensor y = forwardLayer(layer, x.scalar_type() == at::kBFloat16 ? x.to(at::kFloat) : x, training, skipActivation);
    // a mixed BatchNorm hands bfloat16 on to the next layer, like Keras's
    return layer.mixedBf16 && !isOutput && x.scalar_type() == at::kBFloat16 ? y.to(at::kBFloat16) : y;
  }
  if (!isOutput) return forwardLayer(layer, x, training, skipActivation);
  torch::Tensor y = forwardLayer(layer, x, training, /*skipActivation=*/true).to(at::kFloat);
  return skipActivation ? y : activate(y, layer.activation, layer.alpha);
}

}  // namespace tl
