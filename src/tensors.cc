#include "tensors.h"

#include <cstring>
#include <stdexcept>

#include "layers.h"

namespace tl {

std::vector<int64_t> shapeArg(const Napi::Value& value, const char* what) {
  if (!value.IsArray()) throw std::invalid_argument(std::string(what) + " must be an array of integers");
  Napi::Array arr = value.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < arr.Length(); ++i) shape.push_back(arr.Get(i).As<Napi::Number>().Int64Value());
  return shape;
}

torch::Tensor viewInput(const Napi::TypedArray& array, const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  if (static_cast<int64_t>(array.ElementLength()) != count) {
    throw std::invalid_argument("input has " + std::to_string(array.ElementLength()) + " values but its shape " +
                                shapeString(shape) + " needs " + std::to_string(count));
  }
  auto type = array.TypedArrayType();
  void* data = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  if (type == napi_uint8_array) return torch::from_blob(data, shape, torch::kUInt8);
  if (type == napi_float32_array) return torch::from_blob(data, shape, torch::kFloat32);
  throw std::invalid_argument("input must be a Uint8Array (pixels) or a Float32Array");
}

torch::Tensor toModelInput(const torch::Tensor& view) {
  // NHWC memory seen as NCHW is exactly the channels-last layout: no copy for the permute.
  torch::Tensor x = view.dim() == 4 ? view.permute({0, 3, 1, 2}) : view;
  return x.to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true);
}

torch::Tensor toKerasOutput(const torch::Tensor& out) {
  torch::Tensor y = out.dim() == 4 ? out.permute({0, 2, 3, 1}) : out;
  return y.to(torch::kFloat32).contiguous();
}

Napi::Float32Array toFloat32Array(Napi::Env env, const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kCPU, torch::kFloat32).contiguous();  // device: results come back to the CPU
  auto result = Napi::Float32Array::New(env, static_cast<size_t>(c.numel()));
  std::memcpy(result.Data(), c.data_ptr<float>(), sizeof(float) * static_cast<size_t>(c.numel()));
  return result;
}

torch::Tensor fromFloat32Array(const Napi::Value& value, const std::vector<int64_t>& shape, const std::string& what) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw std::invalid_argument(what + " must be a Float32Array");
  }
  auto array = value.As<Napi::Float32Array>();
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  if (static_cast<int64_t>(array.ElementLength()) != count) {
    throw std::invalid_argument(what + " has " + std::to_string(array.ElementLength()) + " values, expected " +
                                std::to_string(count) + " for shape " + shapeString(shape));
  }
  return torch::from_blob(array.Data(), shape, torch::kFloat32).clone();
}

Napi::Array shapeToJs(Napi::Env env, c10::IntArrayRef sizes) {
  Napi::Array arr = Napi::Array::New(env, sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) arr.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(sizes[i])));
  return arr;
}

}  // namespace tl
