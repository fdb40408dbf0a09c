#include "precision.h"

#include <ATen/autocast_mode.h>

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace tl {

bool parseDtypePolicy(const std::string& name, const std::string& layer) {
  if (name == "mixed_bfloat16") return true;
  if (name == "float32") return false;
  throw std::invalid_argument("layer '" + layer + "': unsupported dtype policy '" + name + "' (use 'float32' or 'mixed_bfloat16')");
}

torch::Tensor kerasRelu6(const torch::Tensor& x) {
  // libtorch 1.13's hardtanh has a bfloat16 forward but no backward
  if (x.scalar_type() != at::kBFloat16 || !(x.requires_grad() && torch::GradMode::is_enabled())) return torch::hardtanh(x, 0.0, 6.0);
  // min(max(x, 0), 6) exactly (no arithmetic on the values) with TensorFlow's gradient: one
  // strictly inside (0, 6), zero at and beyond both ends. Five passes over x: a frozen base's
  // relu6 (MobileNet's) takes hardtanh's one above
  return (x * (x > 0).logical_and_(x < 6)).masked_fill_(x >= 6, 6.0);
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
  // pass over the activations instead of three
  if (layer.kind == Kind::BatchNorm && layer.mixedBf16 && x.scalar_type() == at::kBFloat16 && !(training && layer.trainable) &&
      !needsGradient(layer, x)) {
    torch::Tensor y = forwardLayer(layer, x, training, skipActivation);
    return isOutput ? y.to(at::kFloat) : y;
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
