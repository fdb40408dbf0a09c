// Bounded memory for the layers no gradient flows through: Model::forward (chunked-forward.cc)
// runs them a chunk of rows at a time. This header only carries the bench/test setting.
#pragma once
#include <napi.h>

namespace tl::chunking {

// setForwardChunkBytes(bytes): the budget for a chunk's largest activation (Infinity: whole
// batches); returns the previous one. Bench and tests only.
void addExports(Napi::Env env, Napi::Object exports);

}  // namespace tl::chunking
