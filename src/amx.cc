#include "amx.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

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
}

void addInfo(Napi::Object out) {
  const char* reason = "";
  out.Set("amx", available(&reason));
  out.Set("amxReason", reason);
}

}  // namespace tl::amx
