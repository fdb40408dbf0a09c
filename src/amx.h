// Intel AMX (Advanced Matrix Extensions) bfloat16 tiles, for the hand-written mixed_bfloat16
// kernels: whether this process may use them, a switch for tests and A/B benches, and the 64-byte
// tile configuration each kernel loads (per thread) before its tile instructions.
#pragma once
#include <immintrin.h>
#include <napi.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

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
  // all 8 tiles at their largest, 16 rows x 64 bytes
  static TileConfig full() {
    TileConfig c;
    for (int t = 0; t < 8; ++t) c.set(t, 16, 64);
    return c;
  }
};
static_assert(sizeof(TileConfig) == 64, "the tile configuration is 64 bytes");

// `config` loaded on this thread for the scope; the tiles released at its end, exceptions included.
// One per at::parallel_for chunk (the configuration is per thread).
struct TileScope {
  TL_AMX explicit TileScope(const TileConfig& config) { _tile_loadconfig(&config); }
  TL_AMX ~TileScope() { _tile_release(); }
  TileScope(const TileScope&) = delete;
  TileScope& operator=(const TileScope&) = delete;
};

// `config` loaded on this thread, for a kernel that borrows the tiles inside another's TileScope
// (which loads its own again after).
TL_AMX inline void loadTiles(const TileConfig& config) { _tile_loadconfig(&config); }

// Zeroed, 64-byte aligned per-thread scratch for tile operands and sums: a tile row that straddles two
// cache lines loads at about half the speed (measured in conv-pool-amx.cc's kernel).
template <class T>
struct Buffer {
  explicit Buffer(int64_t n) : data(static_cast<T*>(std::aligned_alloc(64, static_cast<size_t>((n * sizeof(T) + 63) / 64 * 64)))) {
    if (!data) throw std::bad_alloc();
    std::memset(data, 0, static_cast<size_t>(n) * sizeof(T));
  }
  ~Buffer() { std::free(data); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  T* data;
};

// `rows` rows of a stored accumulator tile (16 float32 each, 64-byte aligned) added to acc, rows `pitch` apart.
TL_AMX inline void addTile(const float (*c)[16], int64_t rows, float* acc, int64_t pitch) {
  for (int64_t m = 0; m < rows; ++m) _mm512_storeu_ps(acc + m * pitch, _mm512_add_ps(_mm512_loadu_ps(acc + m * pitch), _mm512_load_ps(c[m])));
}

// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized on their own `__Y = __Y` (GCC bug 105593)
// once inlined into the tile kernels: TL_AMX_BEGIN / TL_AMX_END around them.
#define TL_AMX_BEGIN _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define TL_AMX_END _Pragma("GCC diagnostic pop")

// setAmx(on) -> the previous setting; amxPeakFlops() (bench); info().amx / info().amxReason
void addExports(Napi::Env env, Napi::Object exports);
void addInfo(Napi::Object out);

}  // namespace tl::amx
