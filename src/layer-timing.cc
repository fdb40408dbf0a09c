#include "layer-timing.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace tl::timing {

namespace {

struct Times {
  double forward = 0, backward = 0;
  int64_t forwardCalls = 0, backwardCalls = 0;
  size_t order = 0;  // first seen, so layers come back in model order
};

std::atomic<bool> gEnabled{false};
std::mutex gMutex;
std::map<std::string, Times> gTimes;
// gradient arrivals of the running backward: (layer, time); the pseudo-layer "(loss)" opens it
std::vector<std::pair<std::string, double>> gEvents;

Times& entry(const std::string& layer) {
  auto it = gTimes.find(layer);
  if (it == gTimes.end()) it = gTimes.emplace(layer, Times{0, 0, 0, 0, gTimes.size()}).first;
  return it->second;
}

}  // namespace

bool enabled() { return gEnabled.load(std::memory_order_relaxed); }

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void forward(const std::string& layer, double start) {
  double t = now();
  std::lock_guard<std::mutex> lock(gMutex);
  Times& e = entry(layer);
  e.forward += t - start;
  e.forwardCalls++;
}

void fusedForward(const std::string& layer) {
  std::lock_guard<std::mutex> lock(gMutex);
  entry(layer).forwardCalls++;
}

void markOutput(torch::Tensor& out, const std::string& layer) {
  if (!out.requires_grad()) return;
  out.register_hook([layer](const torch::Tensor&) {
    double t = now();
    std::lock_guard<std::mutex> lock(gMutex);
    gEvents.emplace_back(layer, t);
  });
}

void backwardBegin() {
  double t = now();
  std::lock_guard<std::mutex> lock(gMutex);
  gEvents.assign(1, {"(loss)", t});
}

void backwardEnd() {
  double t = now();
  std::lock_guard<std::mutex> lock(gMutex);
  for (size_t i = 0; i < gEvents.size(); ++i) {
    double end = i + 1 < gEvents.size() ? gEvents[i + 1].second : t;
    Times& e = entry(gEvents[i].first);
    e.backward += end - gEvents[i].second;
    e.backwardCalls++;
  }
  gEvents.clear();
}

void optimizer(double start) {
  double t = now();
  std::lock_guard<std::mutex> lock(gMutex);
  Times& e = entry("(optimizer)");
  e.forward += t - start;  // reported as the update's time
  e.forwardCalls++;
}

namespace {

void SetLayerTiming(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(gMutex);
  gEnabled.store(info[0].ToBoolean().Value());
  gTimes.clear();
}

// [{ layer, forwardSeconds, backwardSeconds, forwardCalls, backwardCalls }] since the last call; resets.
Napi::Value TakeLayerTimes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::pair<std::string, Times>> rows;
  {
    std::lock_guard<std::mutex> lock(gMutex);
    rows.assign(gTimes.begin(), gTimes.end());
    gTimes.clear();
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.order < b.second.order; });
  Napi::Array out = Napi::Array::New(env, rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    Napi::Object row = Napi::Object::New(env);
    row.Set("layer", rows[i].first);
    row.Set("forwardSeconds", rows[i].second.forward);
    row.Set("backwardSeconds", rows[i].second.backward);
    row.Set("forwardCalls", static_cast<double>(rows[i].second.forwardCalls));
    row.Set("backwardCalls", static_cast<double>(rows[i].second.backwardCalls));
    out.Set(static_cast<uint32_t>(i), row);
  }
  return out;
}

}  // namespace

void addExports(Napi::Env env, Napi::Object exports) {
  exports.Set("setLayerTiming", Napi::Function::New(env, SetLayerTiming));
  exports.Set("takeLayerTimes", Napi::Function::New(env, TakeLayerTimes));
}

}  // namespace tl::timing
