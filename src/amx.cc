#include "amx.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ATen/Parallel.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <string>

#include "threads.h"

namespace tl::amx {

namespace {

constexpr long kRequestPermission = 0x1023;  // ARCH_REQ_XCOMP_PERM
constexpr long kTileData = 18;               // XFEATURE_XTILEDATA

std::atomic<bool> gSwitch{true};

struct Probe {
  bool ok = false;
  std::string reason;
};

Probe probe() {
#if defined(__x86_64__) && defined(__linux__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 24) & 1) || !((d >> 22) & 1)) return {false, "the CPU has no AMX bfloat16 tiles"};
  // the tile kernels' operands are prepared with AVX-512 (TL_AMX); these also check that the OS saves its state
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512dq") ||
      !__builtin_cpu_supports("avx512bf16"))
    return {false, "the CPU (or the OS, or a VM) does not offer the AVX-512 BW/VL/DQ/BF16 the AMX kernels also use"};
  // Linux hands out the 8 KB tile state per process, on request (kernel 5.16 and later)
  if (syscall(SYS_arch_prctl, kRequestPermission, kTileData) != 0)
    return {false, std::string("Linux did not grant AMX tile state (") + std::strerror(errno) + "; kernel older than 5.16?)"};
  return {true, ""};
#else
  return {false, "AMX is an x86-64 Linux feature"};
#endif
}

TL_AMX_BEGIN

// `iterations` x 4 tdpbf16ps into 4 accumulator tiles from 4 operand tiles loaded once: the tiles'
// own rate, no memory traffic. Operands of ordinary magnitude (the tiles ran ~20% faster on zeros).
TL_AMX void peakLoop(int64_t iterations) {
  const TileScope tiles(TileConfig::full());
  alignas(64) uint16_t operand[16 * 32];
  for (int i = 0; i < 16 * 32; ++i) operand[i] = static_cast<uint16_t>(0x3f80 ^ ((i * 37) & 0x7f));  // bfloat16 values in [1, 2)
  alignas(64) float sink[16][16];
  _tile_loadd(4, operand, 64);
  _tile_loadd(5, operand, 64);
  _tile_loadd(6, operand, 64);
  _tile_loadd(7, operand, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t i = 0; i < iterations; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, sink, 64);
  asm volatile("" : : "r"(sink) : "memory");
}

TL_AMX_END

// Bench only: the bfloat16 FLOP/s of the tiles on every intra-op thread at once (a roofline's
// compute ceiling; a convolution also moves operands and sums), or 0 without AMX.
Napi::Value PeakFlops(const Napi::CallbackInfo& info) {
  if (!enabled()) return Napi::Number::New(info.Env(), 0);
  constexpr int64_t kIterations = 2'000'000;  // ~0.2-0.4 s per thread at 3-7 TFLOP/s
  configureWorkerThreads();  // OpenMP's thread count is per calling thread
  const int64_t threads = at::get_num_threads();
  auto onEveryThread = [threads](int64_t iterations) {
    const auto start = std::chrono::steady_clock::now();
    at::parallel_for(0, threads, 1, [iterations](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) peakLoop(iterations);
    });
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  onEveryThread(kIterations / 4);  // warm-up: each thread's first tile use, the cores' clocks
  const double seconds = onEveryThread(kIterations);
  return Napi::Number::New(info.Env(), static_cast<double>(threads) * kIterations * 4 * (16.0 * 16 * 32 * 2) / seconds);
}

}  // namespace

bool available(const char** reason) {
  static const Probe result = probe();
  if (reason) *reason = result.reason.c_str();
  return result.ok;
}

bool enabled() { return gSwitch.load() && available(); }

void addExports(Napi::Env env, Napi::Object exports) {
  exports.Set("setAmx", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                if (!info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "setAmx: pass true (AMX kernels where the CPU has them) or false");
                return Napi::Boolean::New(info.Env(), gSwitch.exchange(info[0].As<Napi::Boolean>().Value()));
              }));
  exports.Set("amxPeakFlops", Napi::Function::New(env, PeakFlops));
}

void addInfo(Napi::Object out) {
  const char* reason = "";
  out.Set("amx", available(&reason));
  out.Set("amxReason", reason);
}

}  // namespace tl::amx
