// Reads records scattered over a cache file into one batch buffer, off the JS thread.
#pragma once
#include <napi.h>

namespace tl::gather {

// gatherRecords(fd, offsets: Float64Array, recordBytes, out: TypedArray): Promise<void>
// batchBuffer(bytes): ArrayBuffer, uninitialized, its memory from the engine's block cache
void addExports(Napi::Env env, Napi::Object exports);

}  // namespace tl::gather
