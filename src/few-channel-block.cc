#include "few-channel-block.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <tuple>
#include <vector>

#include "amx.h"
#include "parameter-cache.h"
#include "simd.h"
#include "weight-gradient.h"

namespace tl {

namespace {

using simd::kBlocked;
using simd::kMaxChannels;
using simd::v16;

std::atomic<bool> gEnabled{true};
std::atomic<uint64_t> gConvCalls{0};  // fewChannelConvAmx calls (info().amxFewChannelConvCalls: tests)

// x: the padded input [N][Hp][Wp][C] in float; conv output [Hp-KH+1][Wp-KW+1] pooled to [PH][PW];
// kernel packed [KH][KW * C][OP], O filters zero-padded to OP (a multiple of 16).
struct Geometry {
  int64_t C, Hp, Wp, O, OP, KH, T /* KW * C */, PH, PW;
};

// The 2x2 window's max over L lanes, scanned row-major, a value winning if it is greater or NaN
// (libtorch's rule), then the relu: best = the pooled output, winner = 0..3 or kBlocked. Scalar
// loops over lanes, which GCC vectorizes for each clone's instruction set (it lowers vector-typed
// comparisons in target_clones functions to scalar code).
template <int L>
__attribute__((always_inline)) inline void pool(const float (&s)[4][L], float* best, int32_t* winner) {
  for (int l = 0; l < L; ++l) {
    float m = s[0][l];
    int32_t at = 0;
    for (int k = 1; k < 4; ++k) {
      const float v = s[k][l];
      const bool take = simd::wins(v, m);
      m = take ? v : m;
      at = take ? k : at;
    }
    const bool pass = simd::reluPasses(m);
    best[l] = pass ? m : 0.f;
    winner[l] = pass ? at : kBlocked;
  }
}

// Each value rounded to bfloat16 (nearest even, NaN kept), still as a float: what autocast's
// bfloat16 convolution output holds.
template <int L>
__attribute__((always_inline)) inline void roundBf16(float (&s)[4][L]) {
  for (int k = 0; k < 4; ++k)
    for (int l = 0; l < L; ++l) s[k][l] = simd::value(simd::toBf16(s[k][l]));
}

// A window's 4 conv sums (bias included) -> the pooled output at `o` and its winner: rounded to
// bfloat16 when mixed, the pool, the relu, `lanes` filters written (float or bfloat16 bits, NHWC).
template <int L>
__attribute__((always_inline)) inline void finish(float (&sums)[4][L], void* out, uint8_t* __restrict__ arg, bool bf16, int64_t o, int64_t lanes) {
  float best[L];
  int32_t winner[L];
  if (bf16) roundBf16(sums);
  pool(sums, best, winner);
  if (bf16) {
    uint16_t* dst = static_cast<uint16_t*>(out) + o;
    for (int64_t l = 0; l < lanes; ++l) dst[l] = static_cast<uint16_t>(__builtin_bit_cast(uint32_t, best[l]) >> 16);
  } else {
    std::memcpy(static_cast<float*>(out) + o, best, lanes * sizeof(float));
  }
  if (arg)
    for (int64_t l = 0; l < lanes; ++l) arg[o + l] = static_cast<uint8_t>(winner[l]);
}

// Pooled rows [begin, end) (row = n * PH + ph): for each 2x2 window of conv outputs and NB blocks of
// 16 filters, the 4 sums in registers, then the window's max (row-major scan, a value wins if it is
// greater or NaN: libtorch's rule) and the relu. Writes the pooled output (float or bfloat16 bits,
// NHWC) and, with `arg`, each output's winner 0..3 or kBlocked.
template <int T, int NB>
__attribute__((always_inline)) inline void windows(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                                                   void* out, uint8_t* __restrict__ arg, bool bf16, const Geometry& g, int64_t row,
                                                   int64_t ob) {
  const int64_t n = row / g.PH, ph = row % g.PH, C = g.C;
  const int64_t lanes = std::min<int64_t>(16 * NB, g.O - ob);
  for (int64_t pw = 0; pw < g.PW; ++pw) {
    v16 a[4][NB];
    for (int b = 0; b < NB; ++b) a[0][b] = a[1][b] = a[2][b] = a[3][b] = simd::load(bias + ob + 16 * b);
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const float* r0 = x + ((n * g.Hp + 2 * ph + kh) * g.Wp + 2 * pw) * C;
      const float* r1 = r0 + g.Wp * C;
      const float* wk = w + kh * T * g.OP + ob;
      for (int t = 0; t < T; ++t) {
        const float x00 = r0[t], x01 = r0[t + C], x10 = r1[t], x11 = r1[t + C];
        for (int b = 0; b < NB; ++b) {
          const v16 wv = simd::load(wk + t * g.OP + 16 * b);
          a[0][b] += x00 * wv;
          a[1][b] += x01 * wv;
          a[2][b] += x10 * wv;
          a[3][b] += x11 * wv;
        }
      }
    }
    float sums[4][16 * NB];
    for (int k = 0; k < 4; ++k)
      for (int b = 0; b < NB; ++b) simd::store(sums[k] + 16 * b, a[k][b]);
    finish(sums, out, arg, bf16, (row * g.PW + pw) * g.O + ob, lanes);
  }
}

template <int T>
__attribute__((always_inline)) inline void forwardRowsT(const float* x, const float* w, const float* bias, void* out, uint8_t* arg, bool bf16,
                                                        const Geometry& g, int64_t begin, int64_t end) {
  for (int64_t row = begin; row < end; ++row) {
    int64_t ob = 0;
    for (; ob + 32 <= g.OP; ob += 32) windows<T, 2>(x, w, bias, out, arg, bf16, g, row, ob);
    if (ob < g.OP) windows<T, 1>(x, w, bias, out, arg, bf16, g, row, ob);
  }
}

TL_CLONES void forwardRows(const float* x, const float* w, const float* bias, void* out, uint8_t* arg, bool bf16, const Geometry& g,
                           int64_t begin, int64_t end) {
  switch (g.T) {
#define TL_TAPS(N)                                                 \
  case N:                                                          \
    forwardRowsT<N>(x, w, bias, out, arg, bf16, g, begin, end);    \
    break;
    TL_TAPS(1) TL_TAPS(2) TL_TAPS(3) TL_TAPS(4) TL_TAPS(5) TL_TAPS(6)
    TL_TAPS(7) TL_TAPS(8) TL_TAPS(9) TL_TAPS(10) TL_TAPS(11) TL_TAPS(12)
#undef TL_TAPS
  }
}

// Adds pooled rows [begin, end) to acc [KH][T][OP] and bias [OP]: each of a window's 2 conv rows gets
// its gradient rebuilt in gRow [2 * PW][OP] (the pooled gradient at the winner, 0 elsewhere; the
// uncovered last conv row and column get none, so they are skipped), then the row-taps kernel sums
// it against the input rows under it. gOut is the pooled output gradient (NHWC, float32 or
// bfloat16 bits: read as they are, without a converted copy).
template <typename G>
__attribute__((always_inline)) inline void accumulateRows(const float* x, const uint8_t* arg, const G* gOut, float* acc, float* bias,
                                                          const Geometry& g, int64_t begin, int64_t end, float* gRow, float* rowBias) {
  int64_t off[simd::kMaxRowTaps];
  for (int64_t t = 0; t < g.T; ++t) off[t] = t;  // dilation 1: a kernel row's taps (kw, c) are contiguous
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / g.PH, ph = row % g.PH;
    const G* go = gOut + row * g.PW * g.O;
    const uint8_t* a = arg + row * g.PW * g.O;
    for (int64_t dh = 0; dh < 2; ++dh) {
      std::fill(rowBias, rowBias + g.O, 0.f);
      for (int64_t pw = 0; pw < g.PW; ++pw) {
        for (int64_t dw = 0; dw < 2; ++dw) {
          const uint8_t k = static_cast<uint8_t>(dh * 2 + dw);
          float* dst = gRow + (2 * pw + dw) * g.OP;
          const G* gp = go + pw * g.O;
          const uint8_t* ap = a + pw * g.O;
          for (int64_t o = 0; o < g.O; ++o) {
            dst[o] = ap[o] == k ? simd::value(gp[o]) : 0.f;
            rowBias[o] += dst[o];
          }
          for (int64_t o = g.O; o < g.OP; ++o) dst[o] = 0.f;
        }
      }
      for (int64_t o = 0; o < g.O; ++o) bias[o] += rowBias[o];
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const float* xr = x + (n * g.Hp + 2 * ph + dh + kh) * g.Wp * g.C;
        simd::rowTapsAny(g.T, xr, gRow, acc + kh * g.T * g.OP, off, g.C, 2 * g.PW, g.OP);
      }
    }
  }
}

TL_CLONES void accumulateRowsF32(const float* x, const uint8_t* arg, const float* gOut, float* acc, float* bias, const Geometry& g, int64_t begin,
                                 int64_t end, float* gRow, float* rowBias) {
  accumulateRows(x, arg, gOut, acc, bias, g, begin, end, gRow, rowBias);
}
TL_CLONES void accumulateRowsBf16(const float* x, const uint8_t* arg, const uint16_t* gOut, float* acc, float* bias, const Geometry& g,
                                  int64_t begin, int64_t end, float* gRow, float* rowBias) {
  accumulateRows(x, arg, gOut, acc, bias, g, begin, end, gRow, rowBias);
}

// The layer's input as the kernels read it: float32 NHWC, rounded to bfloat16 under
// mixed_bfloat16, zero-padded as the layer pads.
torch::Tensor kernelInput(const Layer& conv, const torch::Tensor& input) {
  torch::Tensor x = conv.mixedBf16 ? input.to(at::kBFloat16).to(at::kFloat) : input.to(at::kFloat);
  const auto& p = conv.pad;  // top, bottom, left, right
  if (p[0] || p[1] || p[2] || p[3]) x = torch::constant_pad_nd(x, {p[2], p[3], p[0], p[1]}, 0.0);
  return x.contiguous(at::MemoryFormat::ChannelsLast);
}

Geometry geometry(const torch::Tensor& x, const torch::Tensor& weight) {
  const int64_t O = weight.size(0), KH = weight.size(2), KW = weight.size(3), C = x.size(1);
  const int64_t OH = x.size(2) - KH + 1, OW = x.size(3) - KW + 1;
  return {C, x.size(2), x.size(3), O, simd::roundUp(O, 16), KH, KW * C, OH / 2, OW / 2};
}

// Kernel [O, C, KH, KW] -> [KH][KW][C][OP] and bias -> [OP], float32 (bfloat16-rounded when mixed).
std::pair<torch::Tensor, torch::Tensor> packParams(const torch::Tensor& weight, const torch::Tensor& bias, bool bf16, const Geometry& g) {
  torch::NoGradGuard noGrad;
  auto cast = [&](const torch::Tensor& t) { return bf16 ? t.to(at::kBFloat16).to(at::kFloat) : t.to(at::kFloat); };
  torch::Tensor w = torch::constant_pad_nd(cast(weight).permute({2, 3, 1, 0}), {0, g.OP - g.O}, 0.0).contiguous();
  torch::Tensor b = bias.defined() ? torch::constant_pad_nd(cast(bias), {0, g.OP - g.O}, 0.0).contiguous() : torch::zeros({g.OP});
  return {w, b};
}

// The pooled output (NCHW logical, channels-last memory, float32 or bfloat16); `arg` [N][PH][PW][O]
// receives the winners when defined.
torch::Tensor blockForward(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, bool bf16, const torch::Tensor& arg) {
  const Geometry g = geometry(x, weight);
  const auto [w, b] = packParams(weight, bias, bf16, g);
  torch::Tensor out = torch::empty({x.size(0), g.O, g.PH, g.PW},
                                   x.options().dtype(bf16 ? at::kBFloat16 : at::kFloat).memory_format(at::MemoryFormat::ChannelsLast));
  void* o = out.data_ptr();
  uint8_t* a = arg.defined() ? arg.data_ptr<uint8_t>() : nullptr;
  at::parallel_for(0, x.size(0) * g.PH, 1, [&](int64_t begin, int64_t end) {
    forwardRows(x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), o, a, bf16, g, begin, end);
  });
  return out;
}

// Weight [O, C, KH, KW] (channels-last, like the layer's kernel) and bias [O] gradients, float32.
std::pair<torch::Tensor, torch::Tensor> blockBackward(const torch::Tensor& x, const torch::Tensor& arg, const torch::Tensor& gradOut,
                                                      int64_t KH, int64_t KW) {
  const bool bf16 = gradOut.scalar_type() == at::kBFloat16;
  const torch::Tensor go = (bf16 ? gradOut : gradOut.to(at::kFloat)).contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t O = go.size(1);
  const Geometry g{x.size(1), x.size(2), x.size(3), O, simd::roundUp(O, 16), KH, KW * x.size(1), go.size(2), go.size(3)};
  return simd::weightGradients(go.size(0) * g.PH, KH, KW, g.C, O, g.OP, [&](float* acc, float* bias, int64_t begin, int64_t end) {
    std::vector<float> gRow(static_cast<size_t>(2 * g.PW * g.OP)), rowBias(static_cast<size_t>(g.O));
    if (bf16)
      accumulateRowsBf16(x.data_ptr<float>(), arg.data_ptr<uint8_t>(), simd::bits(go), acc, bias, g, begin, end, gRow.data(), rowBias.data());
    else
      accumulateRowsF32(x.data_ptr<float>(), arg.data_ptr<uint8_t>(), go.data_ptr<float>(), acc, bias, g, begin, end, gRow.data(), rowBias.data());
  });
}

// ---- mixed_bfloat16 on AMX tiles (when amx::enabled(); the kernels above otherwise) ----
// The input becomes x4: the padded input as bfloat16 NHWC, channels zero-padded to 4, followed by
// kSlack zeros (the tile and vector loads of a row's tail read past it). Results as above but for
// the order of the float32 sums (the tiles sum a kernel row's products, then the kernel rows, then
// the bias is added, then the one bfloat16 rounding) and AMX flushing bfloat16 denormal inputs and
// float32 denormal results to zero.

TL_AMX_BEGIN

constexpr int64_t kSlack = 64 * 4;  // bfloat16 values: 64 positions

// 3x3 kernels (the gradient keeps 3 kernel rows x 2 filter halves in 6 accumulator tiles; a kernel
// row's 3 taps x 4 channels fit a tile row, with at most 4 channels its 12 taps + a bias row 16).
bool amxApplies(const Layer& conv) {
  const torch::Tensor& w = conv.params[0];
  return conv.mixedBf16 && amx::enabled() && w.size(2) == 3 && w.size(3) == 3;
}

// Rows [begin, end) of x4 (row = n * Hp + y) from src, float32 NHWC [N][H][W][C]: 16 pixels at a
// time, C x 16 floats rounded to bfloat16 (vcvtneps2bf16: nearest even, NaN kept, denormals read as
// 0 as the tiles would) and spread to 4 channels by one 2-source permute, channels >= C zero.
TL_AMX void amxInputRows(const float* src, int64_t H, int64_t W, int64_t C, int64_t top, int64_t left, int64_t Hp, int64_t Wp, uint16_t* x4,
                         int64_t begin, int64_t end) {
  alignas(64) uint16_t index[64];  // output lane i = pixel i / 4, channel i % 4
  uint64_t keep = 0;
  for (int i = 0; i < 64; ++i) {
    index[i] = static_cast<uint16_t>((i / 4) * C + i % 4);
    if (i % 4 < C) keep |= uint64_t{1} << i;
  }
  const __m512i low = _mm512_load_si512(index), high = _mm512_load_si512(index + 32);
  for (int64_t r = begin; r < end; ++r) {
    uint16_t* d = x4 + r * Wp * 4;
    const int64_t n = r / Hp, y = r % Hp - top;
    if (y < 0 || y >= H) {
      std::fill(d, d + Wp * 4, 0);
      continue;
    }
    std::fill(d, d + left * 4, 0);
    std::fill(d + (left + W) * 4, d + Wp * 4, 0);
    const float* sr = src + (n * H + y) * W * C;
    for (int64_t p = 0; p < W; p += 16) {
      const int64_t floats = std::min<int64_t>(16, W - p) * C, values = std::min<int64_t>(16, W - p) * 4;
      __m256i part[4];
      for (int k = 0; k < 4; ++k) {
        const int64_t rest = std::clamp<int64_t>(floats - 16 * k, 0, 16);
        part[k] = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << rest) - 1), sr + p * C + 16 * k));
      }
      const __m512i a = _mm512_inserti64x4(_mm512_castsi256_si512(part[0]), part[1], 1);
      const __m512i b = _mm512_inserti64x4(_mm512_castsi256_si512(part[2]), part[3], 1);
      const uint64_t store = keep & (values >= 64 ? ~uint64_t{0} : (uint64_t{1} << values) - 1);
      uint16_t* dp = d + (left + p) * 4;
      _mm512_mask_storeu_epi16(dp, static_cast<__mmask32>((1ull << std::min<int64_t>(values, 32)) - 1),
                               _mm512_maskz_permutex2var_epi16(static_cast<__mmask32>(store), a, low, b));
      if (values > 32)
        _mm512_mask_storeu_epi16(dp + 32, static_cast<__mmask32>((1ull << (values - 32)) - 1),
                                 _mm512_maskz_permutex2var_epi16(static_cast<__mmask32>(store >> 32), a, high, b));
    }
  }
}

// The layer's input as x4 [N][Hp][Wp][4] (rounded to bfloat16 as autocast rounds, zero-padded as
// the layer pads): a view of a buffer with kSlack zeros after it. One pass over the input.
torch::Tensor amxInput(const Layer& conv, const torch::Tensor& input) {
  const torch::Tensor src = input.to(at::kFloat).contiguous(at::MemoryFormat::ChannelsLast);
  const auto& p = conv.pad;  // top, bottom, left, right
  const int64_t N = src.size(0), C = src.size(1), H = src.size(2), W = src.size(3);
  const int64_t Hp = H + p[0] + p[1], Wp = W + p[2] + p[3], size = N * Hp * Wp * 4;
  torch::Tensor buf = torch::empty({size + kSlack}, src.options().dtype(at::kBFloat16));
  uint16_t* x4 = simd::bits(buf);
  std::fill(x4 + size, x4 + size + kSlack, 0);
  at::parallel_for(0, N * Hp, 16, [&](int64_t begin, int64_t end) {
    amxInputRows(src.data_ptr<float>(), H, W, C, p[0], p[2], Hp, Wp, x4, begin, end);
  });
  return buf.narrow(0, 0, size).view({N, Hp, Wp, 4});
}

// OP: the filters padded to 32 (the forward pass takes them 32 at a time)
Geometry amxGeometry(const torch::Tensor& x4, const torch::Tensor& weight) {
  const int64_t O = weight.size(0), C = weight.size(1), KH = weight.size(2), KW = weight.size(3);
  const int64_t OH = x4.size(1) - KH + 1, OW = x4.size(2) - KW + 1;
  return {C, x4.size(1), x4.size(2), O, simd::roundUp(O, 32), KH, KW * C, OH / 2, OW / 2};
}

// Kernel [O, C, KH, KW] -> bfloat16 in the tiles' VNNI layout [KH][OP/16][K/2][16][2] (K = KW * 4:
// a kernel row's taps (kw, c), c padded to 4, consecutive pairs interleaved per filter) and bias ->
// float32 [OP], rounded to bfloat16.
std::pair<torch::Tensor, torch::Tensor> amxParams(const torch::Tensor& weight, const torch::Tensor& bias, int64_t OP) {
  torch::NoGradGuard noGrad;
  const int64_t O = weight.size(0), C = weight.size(1), KH = weight.size(2), KW = weight.size(3);
  torch::Tensor w = torch::constant_pad_nd(weight.to(at::kBFloat16).permute({2, 3, 1, 0}), {0, OP - O, 0, 4 - C}, 0.0);  // [KH][KW][4][OP]
  w = w.reshape({KH, KW * 2, 2, OP / 16, 16}).permute({0, 3, 1, 4, 2}).contiguous();
  torch::Tensor b = bias.defined() ? torch::constant_pad_nd(bf16RoundedBias(bias), {0, OP - O}, 0.0).contiguous() : torch::zeros({OP});
  return {w, b};
}

// The forward's tiles: 4 accumulators [16 positions][16 filters], A = 16 positions x a kernel row's
// K taps (tiles 4, 5), B = the packed kernel row, K / 2 pair rows (tiles 6, 7).
amx::TileConfig forwardTiles(const Geometry& g) {
  const int64_t K = g.T / g.C * 4;
  amx::TileConfig cfg;
  for (int t = 0; t < 4; ++t) cfg.set(t, 16, 64);
  for (int t = 4; t < 6; ++t) cfg.set(t, 16, static_cast<int>(2 * K));
  for (int t = 6; t < 8; ++t) cfg.set(t, static_cast<int>(K / 2), 64);
  return cfg;
}

// Two conv rows (r0's and the row `second` values after it) x 16 columns from x4 at r0 x filters
// ob .. ob + 31 into c [conv row][column][filter]: 4 accumulator tiles (2 rows x 2 filter halves)
// summed over the kernel rows, A = 16 positions x a kernel row's taps read in place (position
// c + 1's taps start 4 values after c's: row stride 8 bytes), B = the packed kernel row.
TL_AMX inline void rowPairTiles(const uint16_t* r0, int64_t second, const uint16_t* w, int64_t ob, const Geometry& g, float (&c)[2][16][32]) {
  const int64_t packed = g.T / g.C * 4 * 16, rowStep = g.Wp * 4;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    const uint16_t* a = r0 + kh * rowStep;
    const uint16_t* b = w + (kh * g.OP / 16 + ob / 16) * packed;
    _tile_loadd(4, a, 8);
    _tile_loadd(5, a + second, 8);
    _tile_loadd(6, b, 64);
    _tile_loadd(7, b + packed, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, &c[0][0][0], 128);
  _tile_stored(1, &c[0][0][16], 128);
  _tile_stored(2, &c[1][0][0], 128);
  _tile_stored(3, &c[1][0][16], 128);
}

// Pooled rows [begin, end): per 16 conv columns and 32 filters, rowPairTiles over the window's two
// conv rows, then the epilogue. Garbage positions past 2 * PW (the next row's values) are never pooled.
TL_AMX void amxForwardRows(const uint16_t* x4, const uint16_t* w, const float* bias, void* out, uint8_t* arg, const Geometry& g, int64_t begin,
                           int64_t end) {
  const amx::TileScope tiles(forwardTiles(g));
  alignas(64) float c[2][16][32];  // [conv row][column][filter]
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / g.PH, ph = row % g.PH;
    for (int64_t c0 = 0; c0 < 2 * g.PW; c0 += 16) {
      const uint16_t* r0 = x4 + ((n * g.Hp + 2 * ph) * g.Wp + c0) * 4;
      for (int64_t ob = 0; ob < g.OP; ob += 32) {
        rowPairTiles(r0, g.Wp * 4, w, ob, g, c);
        const int64_t lanes = std::min<int64_t>(32, g.O - ob);
        for (int64_t j = 0; j < 8 && c0 / 2 + j < g.PW; ++j) {
          float sums[4][32];
          for (int k = 0; k < 4; ++k)
            for (int l = 0; l < 32; ++l) sums[k][l] = c[k >> 1][2 * j + (k & 1)][l] + bias[ob + l];
          finish(sums, out, arg, true, (row * g.PW + c0 / 2 + j) * g.O + ob, lanes);
        }
      }
    }
  }
}

// Unpooled, for a few-channel Conv2D without a pool after it (VGG16's first): conv rows [begin,
// end) of image n, two at a time through rowPairTiles as amxForwardRows, then + bias, relu when
// asked, one bfloat16 rounding, stored to dst (row y at dst + (y - begin) * rowStride, column x's
// filters at + x * O). An odd last row's pair reads its own row twice (the row under it may lie
// past the input). The caller has loaded forwardTiles(g).
TL_AMX void amxConvRowsInto(const uint16_t* x4, const uint16_t* w, const float* bias, const Geometry& g, int64_t OW, bool relu, int64_t n,
                            int64_t begin, int64_t end, uint16_t* dst, int64_t rowStride) {
  alignas(64) float c[2][16][32];  // [conv row][column][filter]
  // vmaxps(floor, v) returns v when v is NaN: torch's relu keeps a NaN
  const __m512 floor = relu ? _mm512_setzero_ps() : _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t y = begin; y < end; y += 2) {
    const int64_t rows = std::min<int64_t>(2, end - y);
    for (int64_t c0 = 0; c0 < OW; c0 += 16) {
      const uint16_t* r0 = x4 + ((n * g.Hp + y) * g.Wp + c0) * 4;
      for (int64_t ob = 0; ob < g.OP; ob += 32) {
        rowPairTiles(r0, rows == 2 ? g.Wp * 4 : 0, w, ob, g, c);
        const __m512 b0 = _mm512_loadu_ps(bias + ob), b1 = _mm512_loadu_ps(bias + ob + 16);
        const int64_t lanes = std::min<int64_t>(32, g.O - ob);
        const __mmask32 keep = lanes == 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << lanes) - 1);
        for (int64_t r = 0; r < rows; ++r) {
          uint16_t* d = dst + (y - begin + r) * rowStride + c0 * g.O + ob;
          for (int64_t j = 0; j < 16 && c0 + j < OW; ++j) {
            const __m512 lo = _mm512_max_ps(floor, _mm512_add_ps(_mm512_load_ps(&c[r][j][0]), b0));
            const __m512 hi = _mm512_max_ps(floor, _mm512_add_ps(_mm512_load_ps(&c[r][j][16]), b1));
            _mm512_mask_storeu_epi16(d + j * g.O, keep, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
          }
        }
      }
    }
  }
}

torch::Tensor amxBlockForward(const torch::Tensor& x4, const torch::Tensor& weight, const torch::Tensor& bias, const torch::Tensor& arg) {
  const Geometry g = amxGeometry(x4, weight);
  const auto [w, b] = amxParams(weight, bias, g.OP);
  torch::Tensor out = torch::empty({x4.size(0), g.O, g.PH, g.PW}, x4.options().memory_format(at::MemoryFormat::ChannelsLast));
  uint8_t* a = arg.defined() ? arg.data_ptr<uint8_t>() : nullptr;
  at::parallel_for(0, x4.size(0) * g.PH, 1, [&](int64_t begin, int64_t end) {
    amxForwardRows(simd::bits(x4), simd::bits(w), b.data_ptr<float>(), out.data_ptr(), a, g, begin, end);
  });
  return out;
}

// One input row unfolded for the gradient's A tiles: u [T + 1][UW], row kw * C + c = the row's
// channel c from column kw on (columns < W2; the rest and the bias row are set once by the caller).
TL_AMX inline void unfold(const uint16_t* xr, const Geometry& g, int64_t W2, int64_t UW, int64_t CW, uint16_t* chan, uint16_t* u) {
  for (int64_t col = 0; col < g.Wp; col += 8) {  // 8 positions x 4 channels: one channel = a 16-bit slice of each 64 bits
    const __m512i v = _mm512_loadu_si512(xr + col * 4);
    for (int64_t c = 0; c < g.C; ++c)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(chan + c * CW + col), _mm512_cvtepi64_epi16(_mm512_srlv_epi64(v, _mm512_set1_epi64(16 * c))));
  }
  for (int64_t t = 0; t < g.T; ++t) std::memcpy(u + t * UW, chan + (t % g.C) * CW + t / g.C, W2 * sizeof(uint16_t));
}

// B for pooled columns pw0 .. pw0 + 15 of conv row 2 * ph + dh and filters o .. o + 15: row j holds,
// per filter, the gradient at the window's conv columns (2j, 2j + 1) (the pooled gradient where
// that column won, else 0) as a pair; rows past PW are 0. go and a: the pooled row's gradient and winners.
TL_AMX inline void gradientPairs(const uint16_t* go, const uint8_t* a, const Geometry& g, int64_t pw0, int64_t o, int dh, uint16_t* dst) {
  const int64_t valid = std::min<int64_t>(16, g.O - o);
  const __mmask16 lanes = static_cast<__mmask16>((1u << valid) - 1);
  const __m128i first = _mm_set1_epi8(static_cast<char>(2 * dh)), second = _mm_set1_epi8(static_cast<char>(2 * dh + 1));
  for (int64_t j = 0; j < 16; ++j) {
    __m512i pair = _mm512_setzero_si512();
    if (pw0 + j < g.PW) {
      const int64_t at = (pw0 + j) * g.O + o;
      const __m256i gv = _mm256_maskz_loadu_epi16(lanes, go + at);
      const __m128i av = _mm_maskz_loadu_epi8(lanes, a + at);
      const __m512i even = _mm512_cvtepu16_epi32(_mm256_maskz_mov_epi16(_mm_cmpeq_epi8_mask(av, first), gv));
      const __m512i odd = _mm512_cvtepu16_epi32(_mm256_maskz_mov_epi16(_mm_cmpeq_epi8_mask(av, second), gv));
      pair = _mm512_or_si512(even, _mm512_slli_epi32(odd, 16));
    }
    _mm512_storeu_si512(dst + 32 * j, pair);
  }
}

// An accumulator tile [taps + bias row][16 filters] added to acc (rows T apart by OP) and, for kernel row 0, to bias.
TL_AMX inline void flushTile(const float (&c)[16][16], float* acc, float* bias, int64_t T, int64_t OP) {
  amx::addTile(c, T, acc, OP);
  if (bias) amx::addTile(c + T, 1, bias, 0);
}

// Adds pooled rows [begin, end) to acc [KH][T][OP] and bias [OP] (OP: filters padded to 16): per
// conv row and 32 conv columns, B = the conv output's gradient as pairs of columns (gradientPairs),
// A = the unfolded input rows under it (taps x columns, plus a row of ones: the bias gradient);
// accumulators [kernel row][16 filters] in tiles 0..5, flushed into acc once per pooled row
// (row-sized float32 partial sums). A pooled row reads 4 input rows, unfolded into a ring of 4
// slots: the 2 it shares with the next pooled row are unfolded once.
TL_AMX void amxAccumulateRows(const uint16_t* x4, const uint8_t* arg, const uint16_t* gOut, float* acc, float* bias, const Geometry& g,
                              int64_t begin, int64_t end) {
  const int64_t T = g.T, W2 = 2 * g.PW, UW = simd::roundUp(W2, 32), CW = simd::roundUp(g.Wp, 8), slots = 4, slotSize = (T + 1) * UW;
  const amx::Buffer<uint16_t> u(slots * slotSize);
  std::vector<uint16_t> chan(static_cast<size_t>(g.C * CW));
  for (int64_t s = 0; s < slots; ++s) std::fill_n(u.data + s * slotSize + T * UW, W2, uint16_t{0x3f80});  // 1.0
  std::vector<int64_t> held(static_cast<size_t>(slots), -1);  // the input row (n * Hp + y) each slot holds
  alignas(64) uint16_t b[2][16][32];
  alignas(64) float c[16][16];
  amx::TileConfig cfg;
  for (int t = 0; t < 7; ++t) cfg.set(t, static_cast<int>(T + 1), 64);
  cfg.set(7, 16, 64);
  const amx::TileScope tiles(cfg);
  const int64_t pitch = UW * sizeof(uint16_t);
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / g.PH, ph = row % g.PH;
    const uint16_t* un[4];  // input rows 2 * ph + i
    for (int64_t i = 0; i < 4; ++i) {
      const int64_t y = n * g.Hp + 2 * ph + i, s = y % slots;
      if (held[s] != y) {
        unfold(x4 + y * g.Wp * 4, g, W2, UW, CW, chan.data(), u.data + s * slotSize);
        held[s] = y;
      }
      un[i] = u.data + s * slotSize;
    }
    const uint16_t* go = gOut + row * g.PW * g.O;
    const uint8_t* a = arg + row * g.PW * g.O;
    for (int64_t ob = 0; ob < g.OP; ob += 32) {
      const bool two = ob + 16 < g.OP;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      _tile_zero(4);
      _tile_zero(5);
      for (int dh = 0; dh < 2; ++dh) {
        for (int64_t p0 = 0; p0 < W2; p0 += 32) {
          gradientPairs(go, a, g, p0 / 2, ob, dh, &b[0][0][0]);
          _tile_loadd(7, &b[0][0][0], 64);
          _tile_loadd(6, un[dh] + p0, pitch);
          _tile_dpbf16ps(0, 6, 7);
          _tile_loadd(6, un[dh + 1] + p0, pitch);
          _tile_dpbf16ps(2, 6, 7);
          _tile_loadd(6, un[dh + 2] + p0, pitch);
          _tile_dpbf16ps(4, 6, 7);
          if (!two) continue;
          gradientPairs(go, a, g, p0 / 2, ob + 16, dh, &b[1][0][0]);
          _tile_loadd(7, &b[1][0][0], 64);
          _tile_loadd(6, un[dh] + p0, pitch);
          _tile_dpbf16ps(1, 6, 7);
          _tile_loadd(6, un[dh + 1] + p0, pitch);
          _tile_dpbf16ps(3, 6, 7);
          _tile_loadd(6, un[dh + 2] + p0, pitch);
          _tile_dpbf16ps(5, 6, 7);
        }
      }
      _tile_stored(0, c, 64);
      flushTile(c, acc + ob, bias + ob, T, g.OP);
      _tile_stored(2, c, 64);
      flushTile(c, acc + T * g.OP + ob, nullptr, T, g.OP);
      _tile_stored(4, c, 64);
      flushTile(c, acc + 2 * T * g.OP + ob, nullptr, T, g.OP);
      if (!two) continue;
      _tile_stored(1, c, 64);
      flushTile(c, acc + ob + 16, bias + ob + 16, T, g.OP);
      _tile_stored(3, c, 64);
      flushTile(c, acc + T * g.OP + ob + 16, nullptr, T, g.OP);
      _tile_stored(5, c, 64);
      flushTile(c, acc + 2 * T * g.OP + ob + 16, nullptr, T, g.OP);
    }
  }
}

std::pair<torch::Tensor, torch::Tensor> amxBlockBackward(const torch::Tensor& x4, const torch::Tensor& arg, const torch::Tensor& gradOut, int64_t C,
                                                         int64_t KH, int64_t KW) {
  const torch::Tensor go = gradOut.to(at::kBFloat16).contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t O = go.size(1);
  const Geometry g{C, x4.size(1), x4.size(2), O, simd::roundUp(O, 16), KH, KW * C, go.size(2), go.size(3)};
  return simd::weightGradients(go.size(0) * g.PH, KH, KW, C, O, g.OP, [&](float* acc, float* bias, int64_t begin, int64_t end) {
    amxAccumulateRows(simd::bits(x4), arg.data_ptr<uint8_t>(), simd::bits(go), acc, bias, g, begin, end);
  });
}

TL_AMX_END

// Saves the (padded) input and a byte per pooled output, not the conv output.
// A bfloat16 x is amxInput's x4 (the tile kernels), a float32 one kernelInput's.
struct FewChannelBlockFunction : public torch::autograd::Function<FewChannelBlockFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& biasInput, bool bf16) {
    const torch::Tensor bias = biasOrNone(biasInput);
    const bool tiles = x.scalar_type() == at::kBFloat16;
    const Geometry g = tiles ? amxGeometry(x, weight) : geometry(x, weight);
    torch::Tensor arg = torch::empty({x.size(0), g.PH, g.PW, g.O}, x.options().dtype(at::kByte));
    torch::Tensor out = tiles ? amxBlockForward(x, weight, bias, arg) : blockForward(x, weight, bias, bf16, arg);
    ctx->saved_data["x"] = x;
    ctx->saved_data["arg"] = arg;
    ctx->saved_data["kernel"] = std::vector<int64_t>{weight.size(2), weight.size(3), weight.size(1)};
    ctx->saved_data["bias"] = bias.defined();
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const auto kernel = ctx->saved_data["kernel"].toIntVector();
    const torch::Tensor x = ctx->saved_data["x"].toTensor(), arg = ctx->saved_data["arg"].toTensor();
    auto [dW, db] = x.scalar_type() == at::kBFloat16 ? amxBlockBackward(x, arg, grads[0], kernel[2], kernel[0], kernel[1])
                                                     : blockBackward(x, arg, grads[0], kernel[0], kernel[1]);
    return {torch::Tensor(), dW, ctx->saved_data["bias"].toBool() ? db : torch::Tensor(), torch::Tensor()};
  }
};

Napi::Value SetFirstBlockFusion(const Napi::CallbackInfo& info) {
  if (!info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "setFirstBlockFusion: pass true (fused first block) or false (today's path)");
  return Napi::Boolean::New(info.Env(), gEnabled.exchange(info[0].As<Napi::Boolean>().Value()));
}

}  // namespace

bool fewChannelBlockApplies(const Layer& conv, const Layer& pool, const torch::Tensor& input, bool poolIsOutput) {
  if (!gEnabled.load() || poolIsOutput || !plainConv(conv) || !halvingPool(pool)) return false;
  if (conv.activation != Act::Relu || conv.mixedBf16 != pool.mixedBf16) return false;
  if (!kernelInput4d(input) || input.requires_grad()) return false;
  const torch::Tensor& w = conv.params[0];
  const int64_t C = input.size(1);
  if (C < 1 || C > kMaxChannels || w.size(1) != C || w.size(3) * C > simd::kMaxRowTaps) return false;
  // at least one pooled output
  const auto [OH, OW] = plainConvOutput(conv, input.size(2), input.size(3));
  return input.size(0) > 0 && OH >= 2 && OW >= 2;
}

torch::Tensor fewChannelBlock(const Layer& conv, const torch::Tensor& input) {
  const bool tiles = amxApplies(conv);
  const torch::Tensor x = tiles ? amxInput(conv, input) : kernelInput(conv, input);
  const torch::Tensor& weight = conv.params[0];
  const torch::Tensor bias = conv.useBias ? conv.params[1] : torch::Tensor();
  if (needsGradient(conv, input)) return FewChannelBlockFunction::apply(x, weight, functionBias(conv), conv.mixedBf16);
  torch::NoGradGuard noGrad;  // no winners to record
  return tiles ? amxBlockForward(x, weight, bias, torch::Tensor()) : blockForward(x, weight, bias, conv.mixedBf16, torch::Tensor());
}

bool fewChannelConvAmxApplies(const Layer& conv, const torch::Tensor& input) {
  if (!plainConv(conv) || !amxApplies(conv)) return false;
  if (!kernelInput4d(input) || input.size(0) == 0 || needsGradient(conv, input)) return false;
  const int64_t C = input.size(1);
  if (C < 1 || C > kMaxChannels || conv.params[0].size(1) != C) return false;
  return input.size(2) + conv.pad[0] + conv.pad[1] >= 3 && input.size(3) + conv.pad[2] + conv.pad[3] >= 3;
}

struct FewChannelConvRows::State {
  torch::Tensor x4, w, b;
  Geometry g;
  amx::TileConfig tiles;
  int64_t OH, OW;
  bool relu;
};

FewChannelConvRows::FewChannelConvRows(const Layer& conv, const torch::Tensor& input, bool relu) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.x4 = amxInput(conv, input);
  s.g = amxGeometry(s.x4, conv.params[0]);
  std::tie(s.w, s.b) = amxParams(conv.params[0], conv.useBias ? conv.params[1] : torch::Tensor(), s.g.OP);
  s.tiles = forwardTiles(s.g);
  s.OH = s.g.Hp - s.g.KH + 1;
  s.OW = s.g.Wp - s.g.T / s.g.C + 1;
  s.relu = relu;
}

FewChannelConvRows::~FewChannelConvRows() = default;

int64_t FewChannelConvRows::height() const { return state_->OH; }
int64_t FewChannelConvRows::width() const { return state_->OW; }

const amx::TileConfig& FewChannelConvRows::tiles() const { return state_->tiles; }

void FewChannelConvRows::rows(int64_t n, int64_t begin, int64_t end, uint16_t* dst, int64_t rowStride) const {
  const State& s = *state_;
  amxConvRowsInto(simd::bits(s.x4), simd::bits(s.w), s.b.data_ptr<float>(), s.g, s.OW, s.relu, n, begin, end, dst, rowStride);
}

torch::Tensor fewChannelConvAmx(const Layer& conv, const torch::Tensor& input, bool relu) {
  const FewChannelConvRows source(conv, input, relu);
  const int64_t N = input.size(0), O = conv.params[0].size(0), OH = source.height(), OW = source.width(), pairs = (OH + 1) / 2;
  torch::Tensor out = torch::empty({N, O, OH, OW}, input.options().dtype(at::kBFloat16).memory_format(at::MemoryFormat::ChannelsLast));
  uint16_t* y = simd::bits(out);
  at::parallel_for(0, N * pairs, 1, [&](int64_t begin, int64_t end) {
    const amx::TileScope tiles(source.tiles());
    for (int64_t pair = begin; pair < end; ++pair) {
      const int64_t n = pair / pairs, row = pair % pairs * 2;
      source.rows(n, row, std::min(row + 2, OH), y + (n * OH + row) * OW * O, OW * O);
    }
  });
  gConvCalls.fetch_add(1);
  return out;
}

void addFewChannelConvAmxInfo(Napi::Object& out) { out.Set("amxFewChannelConvCalls", static_cast<double>(gConvCalls.load())); }

namespace firstBlock {

void addExports(Napi::Env env, Napi::Object exports) {
  exports.Set("setFirstBlockFusion", Napi::Function::New(env, SetFirstBlockFusion));
}

}  // namespace firstBlock

}  // namespace tl
