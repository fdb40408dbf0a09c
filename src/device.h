// Device selection (`--device cpu|cuda|cuda:N|auto`). The CUDA path is kept here, small and explicit:
// the rest of the engine only moves tensors to `Model::device_` and results back to the CPU.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "layers.h"

namespace tl {

// Parses and checks a device name; throws std::invalid_argument that says what to do when CUDA is
// asked for but this build or this machine cannot provide it.
torch::Device resolveDevice(const std::string& name);

// Moves every layer's tensors to `device`, keeping them leaves with the trainable flags they had.
void moveLayers(std::vector<Layer>& layers, const torch::Device& device);

// {cudaBuilt, cudaAvailable, cudaDevices}: what `auto` would find.
Napi::Value DeviceInfo(const Napi::CallbackInfo& info);

// resolveDevice(name) for JS: 'cpu' or 'cuda:N', so callers can check a device before building models.
Napi::Value ResolveDevice(const Napi::CallbackInfo& info);

}  // namespace tl
