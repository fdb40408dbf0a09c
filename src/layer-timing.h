// Per-layer forward/backward timing for the bench (off unless switched on from JS). Forward times
// are taken around each layer; backward times from gradient hooks on each layer's output: the
// hook on layer i's output fires when its backward starts, the next hook when it has finished.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <string>

namespace tl::timing {

bool enabled();
double now();
void forward(const std::string& layer, double start);
// A layer run inside the next layer's kernel: a row with no time of its own (the next one's holds it).
void fusedForward(const std::string& layer);
// Marks `out` as the output of `layer`: its gradient's arrival starts that layer's backward.
void markOutput(torch::Tensor& out, const std::string& layer);
void backwardBegin();
void backwardEnd();
void optimizer(double start);
void addExports(Napi::Env env, Napi::Object exports);

}  // namespace tl::timing
