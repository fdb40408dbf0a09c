// Intel AMX (Advanced Matrix Extensions) bfloat16 tiles, for the hand-written mixed_bfloat16
// kernels: whether this process may use them, a switch for tests and A/B benches, and the 64-byte
// tile configuration each kernel loads (per thread) before its tile instructions.
#pragma once
#include <napi.h>

#include <cstdint>

namespace tl::amx {

// The CPU has AMX-TILE and AMX-BF16 and Linux granted this process the tile data state (asked once;
// `reason` says why not otherwise).
bool available(const char** reason = nullptr);
// available() and not switched off with setAmx(false)
bool enabled();

// Functions that use tiles are compiled for these extensions and called only when enabled().
#define TL_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

// Palette 1: up to 8 tiles of at most 16 rows x 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t startRow = 0;
  uint8_t reserved[14] = {};
  uint16_t bytesPerRow[16] = {};
  uint8_t rows[16] = {};
  void set(int tile, int rowCount, int rowBytes) {
    rows[tile] = static_cast<uint8_t>(rowCount);
    bytesPerRow[tile] = static_cast<uint16_t>(rowBytes);
  }
};
static_assert(sizeof(TileConfig) == 64, "the tile configuration is 64 bytes");

// setAmx(on) -> the previous setting; info().amx / info().amxReason
void addExports(Napi::Env env, Napi::Object exports);
void addInfo(Napi::Object out);

}  // namespace tl::amx
