// Moving data across the JS boundary: typed arrays in NHWC (Keras layout) become NCHW-logical,
// channels-last tensors without a copy; results go back as Float32Arrays in Keras layout.
#pragma once
#include <napi.h>
#include <torch/torch.h>
#include <vector>

namespace tl {

std::vector<int64_t> shapeArg(const Napi::Value& value, const char* what);

// A view of a Uint8Array/Float32Array as a tensor. The caller keeps the array alive.
torch::Tensor viewInput(const Napi::TypedArray& array, const std::vector<int64_t>& nhwcShape);

// Converts a view from viewInput to the float tensor layers consume.
torch::Tensor toModelInput(const torch::Tensor& view);

// Keras-layout (NHWC) float32 copy of a model output.
torch::Tensor toKerasOutput(const torch::Tensor& out);

Napi::Float32Array toFloat32Array(Napi::Env env, const torch::Tensor& t);
torch::Tensor fromFloat32Array(const Napi::Value& value, const std::vector<int64_t>& shape, const std::string& what);
Napi::Array shapeToJs(Napi::Env env, c10::IntArrayRef sizes);

}  // namespace tl
