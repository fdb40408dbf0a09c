// Small shared pieces of the hand-written CPU kernels (max-pool-relu.cc, few-channel-conv.cc,
// few-channel-block.cc): bfloat16 <-> float, the 16-float vector type, the instruction sets each
// kernel is compiled for, the max-pool + relu rules, and the row-taps weight-gradient kernel.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <cstring>

namespace tl::simd {

// One compiled copy per instruction set: the engine is built without -march.
#define TL_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))

using v16 = float __attribute__((vector_size(64)));

// bfloat16 (raw bits) -> float: exact
inline float value(uint16_t b) { return __builtin_bit_cast(float, static_cast<uint32_t>(b) << 16); }
inline float value(float v) { return v; }

// float -> bfloat16 bits, rounding to nearest even (NaN stays NaN), as libtorch rounds
inline uint16_t toBf16(float f) {
  const uint32_t u = __builtin_bit_cast(uint32_t, f);
  const uint32_t rounded = (u + 0x7fff + ((u >> 16) & 1)) >> 16;
  return static_cast<uint16_t>(f != f ? (u >> 16) | 0x40 : rounded);  // branch-free: vectorizes
}

// x rounded up to a multiple of m (tile and vector widths)
constexpr int64_t roundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// a bfloat16 tensor's elements as raw bits, which the kernels read through `value`
inline uint16_t* bits(const torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); }

// The few-channel kernels (few-channel-conv.cc, few-channel-block.cc) take at most this many input channels.
constexpr int64_t kMaxChannels = 4;

// A pooling window's recorded winner where relu stopped its gradient (its max <= 0): no element of
// the window receives one.
constexpr uint8_t kBlocked = 0xff;

// Max pooling's rule, libtorch's on the CPU: `v` replaces the running max `m` if greater or NaN (the
// same element wins ties and NaNs). Scalar per lane: callers loop over lanes so GCC vectorizes (it
// lowers vector-typed comparisons in target_clones functions to scalar code).
__attribute__((always_inline)) inline bool wins(float v, float m) { return v > m || v != v; }
// relu after the pool: NaN passes, as in clamp_min
__attribute__((always_inline)) inline bool reluPasses(float m) { return m > 0.f || m != m; }

__attribute__((always_inline)) inline v16 load(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
__attribute__((always_inline)) inline void store(float* p, v16 v) { std::memcpy(p, &v, sizeof v); }

// The taps of one kernel row: acc[t][o] += sum over w < W of x[w * step + off[t]] * g[w][o], for
// T taps t = (kw, c), filters o in blocks of 16 (g and acc rows hold OP = a multiple of 16 floats,
// zero-padded). Each block's sums start from zero and are added to acc once: row-sized float32
// partial sums, more precise than one running sum over the batch.
template <int T>
__attribute__((always_inline)) inline void rowTaps(const float* __restrict__ x, const float* __restrict__ g, float* __restrict__ acc,
                                                   const int64_t* off, int64_t step, int64_t W, int64_t OP) {
  for (int64_t ob = 0; ob < OP; ob += 16) {
    v16 a[T];
    for (int t = 0; t < T; ++t) a[t] = v16{};
    for (int64_t w = 0; w < W; ++w) {
      const v16 gv = load(g + w * OP + ob);
      const float* xp = x + w * step;
      for (int t = 0; t < T; ++t) a[t] += xp[off[t]] * gv;
    }
    for (int t = 0; t < T; ++t) store(acc + t * OP + ob, load(acc + t * OP + ob) + a[t]);
  }
}

constexpr int kMaxRowTaps = 12;  // accumulators held in registers

// rowTaps for a run-time tap count 1..kMaxRowTaps; inline it into a TL_CLONES function.
__attribute__((always_inline)) inline void rowTapsAny(int64_t T, const float* x, const float* g, float* acc, const int64_t* off,
                                                      int64_t step, int64_t W, int64_t OP) {
  switch (T) {
#define TL_TAPS(N)                              \
  case N:                                       \
    rowTaps<N>(x, g, acc, off, step, W, OP);    \
    break;
    TL_TAPS(1) TL_TAPS(2) TL_TAPS(3) TL_TAPS(4) TL_TAPS(5) TL_TAPS(6)
    TL_TAPS(7) TL_TAPS(8) TL_TAPS(9) TL_TAPS(10) TL_TAPS(11) TL_TAPS(12)
#undef TL_TAPS
  }
}

}  // namespace tl::simd
