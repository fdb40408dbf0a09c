// Module entry: memory policy, threads, and the NativeModel class. Everything a user sees is in
// TypeScript (lib/engine); this file only wires the native pieces together.
#include <malloc.h>
#include <napi.h>
#include <torch/torch.h>
#include <ATen/Parallel.h>

#include <atomic>
#include <thread>

#include "allocator.h"
#include "amx.h"
#include "blocked-stretch.h"
#include "chunked-forward.h"
#include "conv-pool-amx.h"
#include "few-channel-block.h"
#include "dnnl-conv.h"
#include "gather.h"
#include "layer-timing.h"
#include "device.h"
#include "distributed.h"
#include "model.h"
#include "precision.h"
#include "threads.h"

namespace tl {

namespace {
std::atomic<int> gThreads{0};
thread_local int tConfigured = -1;
}  // namespace

void setThreads(int threads) { gThreads.store(threads); }
int getThreads() {
  int t = gThreads.load();
  return t > 0 ? t : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}
void configureWorkerThreads() {
  int t = getThreads();
  if (tConfigured != t) {
    at::set_num_threads(t);
    tConfigured = t;
  }
}

namespace {

// Training allocates and frees hundreds of MB per step; returned to the kernel, they page-fault
// in again every step (5 -> 52 img/s when kept, docs/architecture.md). libtorch's large blocks go through the
// caching allocator; glibc keeps the rest (no trimming of the main heap).
void keepAllocationsInProcess() {
  installCachingAllocator();
  mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("torchVersion", TORCH_VERSION);
  out.Set("threads", getThreads());
  out.Set("parallelInfo", at::get_parallel_info());
  out.Set("mkldnn", at::hasMKLDNN());
  dnnlconv::addInfo(out);  // dnnl, dnnlVersion
  amx::addInfo(out);       // amx, amxReason
  addConvPoolAmxInfo(out);  // amxConvPoolCalls
  addBlockedStretchInfo(out);
  addFewChannelConvAmxInfo(out);  // amxFewChannelConvCalls
  out.Set("cuda", torch::cuda::is_available());
  std::string bf16Reason;
  out.Set("bf16Supported", cpuHasBf16(bf16Reason));
  out.Set("bf16Reason", bf16Reason);
  AllocatorStats stats = allocatorStats();
  out.Set("allocatorCachedBytes", static_cast<double>(stats.cachedBytes));
  out.Set("allocatorHits", static_cast<double>(stats.hits));
  out.Set("allocatorMisses", static_cast<double>(stats.misses));
  return out;
}

void EmptyCache(const Napi::CallbackInfo&) { emptyAllocatorCache(); }

void SetThreads(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 0) throw Napi::RangeError::New(info.Env(), "threads must be >= 0 (0 = all cores)");
  setThreads(n);
}

void ManualSeed(const Napi::CallbackInfo& info) {
  torch::manual_seed(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  keepAllocationsInProcess();
  exports.Set("NativeModel", Model::Init(env));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("emptyCache", Napi::Function::New(env, EmptyCache));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  timing::addExports(env, exports);  // setLayerTiming, takeLayerTimes (bench)
  gather::addExports(env, exports);  // gatherRecords (record datasets)
  chunking::addExports(env, exports);  // setForwardChunkBytes (bench, tests)
  firstBlock::addExports(env, exports);  // setFirstBlockFusion (bench, tests; few-channel-block.cc)
  dnnlconv::addExports(env, exports);  // setConvAlgorithm, setDnnlConv (dnnl-conv.cc)
  addBlockedStretchExports(env, exports);  // setBlockedStretch (bench, tests; blocked-stretch.cc)
  amx::addExports(env, exports);  // setAmx (bench, tests; amx.cc)
  exports.Set("deviceInfo", Napi::Function::New(env, DeviceInfo));  // device
  exports.Set("resolveDevice", Napi::Function::New(env, ResolveDevice));  // device
  exports.Set("distributed", dist::Init(env));
  return exports;
}

}  // namespace tl

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return tl::Init(env, exports); }
NODE_API_MODULE(transferlab, InitModule)
