// Grad-CAM's engine half: the feature map one layer outputs, and the gradient of each example's
// class score with respect to it. Weighting, ReLU and upsampling are done in TypeScript
// (lib/interpret/grad-cam.ts). Synchronous: it runs on the few gallery images of a report.
#include <stdexcept>
#include <string>
#include <vector>

#include "model.h"
#include "tensors.h"

namespace tl {

// gradCam(x, shape, to, classes): features = layers [0, to) on x; class score = the pre-activation
// output of the last layer for the example's class (for one sigmoid unit: z for class 1, -z for class 0).
Napi::Value Model::GradCam(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ensureIdle(env, "gradCam");
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "gradCam: x must be a Uint8Array or Float32Array");
  const size_t to = layerIndex(info, 2);
  if (to == 0 || to >= layers_.size()) {
    throw Napi::RangeError::New(env, "gradCam: the feature map must be the output of a layer that has layers after it (index 1.." +
                                         std::to_string(layers_.size() - 1) + "), got " + std::to_string(to));
  }
  if (!info[3].IsArray()) throw Napi::TypeError::New(env, "gradCam: classes must be an array with one class index per example");
  try {
    torch::Tensor x = toModelInput(viewInput(info[0].As<Napi::TypedArray>(), shapeArg(info[1], "shape")));
    const int64_t n = x.size(0);
    Napi::Array classArg = info[3].As<Napi::Array>();
    if (static_cast<int64_t>(classArg.Length()) != n) {
      throw std::invalid_argument("gradCam: " + std::to_string(n) + " examples but " + std::to_string(classArg.Length()) + " classes");
    }
    std::vector<int64_t> classes;
    for (uint32_t i = 0; i < classArg.Length(); ++i) classes.push_back(classArg.Get(i).As<Napi::Number>().Int64Value());

    torch::AutoGradMode gradients(true);
    torch::Tensor features = forward(x, 0, to, false, false).detach().requires_grad_(true);
    // a clone enters the rest of the model, so an in-place activation there never touches the leaf
    torch::Tensor scores = forward(features.clone(), to, layers_.size(), false, /*logits=*/true).reshape({n, -1});
    const int64_t width = scores.size(1);
    for (int64_t c : classes) {
      if (c < 0 || c >= std::max<int64_t>(width, 2)) {
        throw std::invalid_argument("gradCam: class " + std::to_string(c) + " is outside 0.." + std::to_string(std::max<int64_t>(width, 2) - 1));
      }
    }
    torch::Tensor index = torch::tensor(classes, torch::kInt64);
    torch::Tensor score = width == 1 ? (scores.squeeze(1) * (index.to(torch::kFloat32) * 2 - 1)).sum()
                                     : scores.gather(1, index.unsqueeze(1)).sum();
    // autograd::grad, not backward: the weights' .grad (the optimizer's) stay untouched
    torch::Tensor gradient = torch::autograd::grad({score}, {features})[0];

    Napi::Object out = Napi::Object::New(env);
    torch::Tensor map = toKerasOutput(features.detach());
    out.Set("featureMap", toFloat32Array(env, map));
    out.Set("gradient", toFloat32Array(env, toKerasOutput(gradient)));
    out.Set("shape", shapeToJs(env, map.sizes()));
    return out;
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

}  // namespace tl
