// Data parallelism on torch.distributed's c10d: one process group per process (TCPStore
// rendezvous, ProcessGroupGloo), parameter broadcast, and the gradient/metric all-reduce that a
// data-parallel train step runs between backward and the optimizer update.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <vector>

#include "layers.h"

namespace tl::dist {

// Averages a train step over the group: sums (loss * examples, correct, examples) of every rank,
// scales this rank's gradients (means over its shard) by examples / global examples and sums them
// in ~25 MB buckets, so the update equals the one-process update on the whole global batch.
// `loss` and `correct` come in as this rank's and go out as the global batch's.
void reduceStep(std::vector<Layer>& layers, size_t from, int64_t examples, double& loss, int64_t& correct);

Napi::Object Init(Napi::Env env);

}  // namespace tl::dist
