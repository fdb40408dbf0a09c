// Data parallelism on torch.distributed's c10d: one process group per process (TCPStore
// rendezvous, ProcessGroupGloo), parameter broadcast, and the gradient/metric all-reduce that a
// data-parallel train step runs between backward and the optimizer update.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "layers.h"

namespace tl::dist {

// Averages a train step over the group, as PyTorch's DDP Reducer does. Made after the forward pass:
// sums (loss * examples, correct, examples) of every rank, so `loss` and `correct` become the
// global batch's, then hooks the weights' gradients. During backward, each bucket (~25 MB) of
// gradients (means over this rank's shard, scaled by examples / global examples) starts its sum
// over the ranks as soon as it is complete, in bucket order on every rank; finish() sends what a
// rank without examples (or a weight without a gradient) has as zeros, waits, and writes the sums
// into the gradients, so the update equals the one-process update on the whole global batch.
class StepReducer {
 public:
  StepReducer(std::vector<Layer>& layers, size_t from, int64_t examples, double& loss, int64_t& correct);
  ~StepReducer();
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

Napi::Object Init(Napi::Env env);

}  // namespace tl::dist
