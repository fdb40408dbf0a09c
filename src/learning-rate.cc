// The learning-rate hook: schedules and callbacks (computed in TypeScript) set the rate per step,
// as Keras evaluates a LearningRateSchedule at the optimizer's iteration count before each update.
#include <cmath>

#include "model.h"

namespace tl {

void Model::SetLearningRate(const Napi::CallbackInfo& info) {
  ensureIdle(info.Env(), "setLearningRate");
  if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "setLearningRate(rate): rate must be a number");
  double rate = info[0].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(rate) || rate < 0) {
    throw Napi::RangeError::New(info.Env(), "setLearningRate(rate): rate must be a finite number >= 0, got " + std::to_string(rate));
  }
  optimizer_.learningRate = rate;
}

Napi::Value Model::GetIterations(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(iterations_));
}

}  // namespace tl
