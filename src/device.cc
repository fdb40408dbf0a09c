#include "device.h"

#include <regex>
#include <stdexcept>

namespace tl {

namespace {

// Set by binding.gyp when the libtorch found at build time has libtorch_cuda.so (linked with it).
#ifdef TL_WITH_CUDA
constexpr bool kCudaBuilt = true;
#else
constexpr bool kCudaBuilt = false;
#endif

void requireCuda(const std::string& name) {
  if (!kCudaBuilt) {
    throw std::invalid_argument("device '" + name +
                                "' needs CUDA, but this engine was built against a CPU-only libtorch. Rebuild it against a CUDA "
                                "libtorch (LIBTORCH=/path/to/libtorch-cuda npm run build:native, see docs/distributed.md), or use "
                                "device 'cpu' (or 'auto', which falls back to the CPU)");
  }
  if (!torch::cuda::is_available()) {
    throw std::invalid_argument("device '" + name +
                                "' needs a CUDA GPU, but libtorch sees none (check nvidia-smi, the driver and CUDA_VISIBLE_DEVICES), "
                                "or use device 'cpu'");
  }
}

}  // namespace

torch::Device resolveDevice(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "auto") return kCudaBuilt && torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  std::smatch m;
  static const std::regex cuda("^cuda(?::(\\d+))?$");
  if (!std::regex_match(name, m, cuda)) {
    throw std::invalid_argument("unknown device '" + name + "': use cpu, cuda, cuda:N (N = GPU index) or auto");
  }
  requireCuda(name);
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  const int64_t index = m[1].matched ? std::stoll(m[1].str()) : 0;
  if (index >= count) {
    throw std::invalid_argument("device '" + name + "': this machine has " + std::to_string(count) + " CUDA GPU(s), indices 0.." +
                                std::to_string(count - 1));
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

void moveLayers(std::vector<Layer>& layers, const torch::Device& device) {
  if (device.is_cpu()) return;  // tensors are created on the CPU
  torch::NoGradGuard noGrad;
  for (Layer& layer : layers) {
    for (torch::Tensor& p : layer.params) p = p.detach().to(device);
    if (layer.offsetTensor.defined()) layer.offsetTensor = layer.offsetTensor.to(device);
    applyTrainable(layer);
  }
}

Napi::Value DeviceInfo(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  const bool available = kCudaBuilt && torch::cuda::is_available();
  out.Set("cudaBuilt", kCudaBuilt);
  out.Set("cudaAvailable", available);
  out.Set("cudaDevices", available ? static_cast<double>(torch::cuda::device_count()) : 0.0);
  return out;
}

Napi::Value ResolveDevice(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "resolveDevice(name): name must be a string");
  try {
    return Napi::String::New(info.Env(), resolveDevice(info[0].As<Napi::String>().Utf8Value()).str());
  } catch (const std::invalid_argument& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

}  // namespace tl
