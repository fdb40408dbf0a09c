#include "conv-weight-gradient-amx.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <tuple>
#include <vector>

#include "amx.h"
#include "simd.h"
#include "weight-gradient.h"

namespace tl {

namespace {

// GCC 12 warns inside its own AVX-512 headers (their undefined-vector idiom) once inlined here
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// Output rows summed in the tiles before they are flushed into the float32 partial sums.
constexpr int64_t kRowsPerFlush = 8;

// x: the bfloat16 input [N][H][W][C], g: the output gradient [N][OH][OW][O]; top/left: padding.
struct Geometry {
  int64_t N, C, H, W, O, KH, KW, top, left, OH, OW;
  int64_t OWP;  // OW rounded up to 32: the positions of whole tiles
  int64_t CW;   // pitch (elements) of a transposed input row xt [C][CW], column left + x = input column x
};

// permutex2var indices of a 32 x 32 16-bit transpose, a pair per stage (block size 16, 8, 4, 2, 1)
struct TransposeIndices {
  alignas(64) uint16_t lo[5][32], hi[5][32];
  TransposeIndices() {
    for (int k = 0, s = 16; k < 5; ++k, s /= 2) {
      for (int j = 0; j < 32; ++j) {
        lo[k][j] = static_cast<uint16_t>((j & s) ? 32 + j - s : j);
        hi[k][j] = static_cast<uint16_t>((j & s) ? 32 + j : j + s);
      }
    }
  }
};

// r[i] = row i of a 32 x 32 matrix of 16-bit values -> its transpose: each stage swaps the
// off-diagonal blocks of every 2s x 2s block.
TL_AMX inline void transpose32(__m512i (&r)[32], const TransposeIndices& t) {
  for (int k = 0, s = 16; k < 5; ++k, s /= 2) {
    const __m512i lo = _mm512_load_si512(t.lo[k]), hi = _mm512_load_si512(t.hi[k]);
    for (int i = 0; i < 32; ++i) {
      if (i & s) continue;
      const __m512i a = r[i], b = r[i + s];
      r[i] = _mm512_permutex2var_epi16(a, lo, b);
      r[i + s] = _mm512_permutex2var_epi16(a, hi, b);
    }
  }
}

// One input row [W][C] -> channel-major xt [C][CW] from column `left` on, 32 x 32 blocks; columns
// from W to the next multiple of 32 written as zeros (the padding columns are zero from the start).
TL_AMX void transposeRow(const uint16_t* xr, const Geometry& g, const TransposeIndices& t, uint16_t* xt) {
  __m512i r[32];
  for (int64_t c0 = 0; c0 < g.C; c0 += 32) {
    const int64_t valid = std::min<int64_t>(32, g.C - c0);
    const __mmask32 lanes = valid == 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << valid) - 1);
    for (int64_t x0 = 0; x0 < g.W; x0 += 32) {
      for (int64_t i = 0; i < 32; ++i)
        r[i] = x0 + i < g.W ? _mm512_maskz_loadu_epi16(lanes, xr + (x0 + i) * g.C + c0) : _mm512_setzero_si512();
      transpose32(r, t);
      for (int64_t c = 0; c < valid; ++c) _mm512_storeu_si512(xt + (c0 + c) * g.CW + g.left + x0, r[c]);
    }
  }
}

// One output-gradient row [OW][O] -> the B tiles of each 16-filter block, gp [O / 16][OWP / 2][16][2]
// (VNNI: row j holds, per filter, positions 2j and 2j + 1; zero past OW), and its sum added to bias.
TL_AMX void pairRow(const uint16_t* gr, const Geometry& g, uint16_t* gp, float* bias) {
  const int64_t half = g.OWP / 2;
  for (int64_t ob = 0; ob < g.O / 16; ++ob) {
    __m512 sum = _mm512_setzero_ps();
    uint16_t* dst = gp + ob * half * 32;
    for (int64_t j = 0; j < half; ++j) {
      const int64_t x = 2 * j;
      const __m512i even = x < g.OW ? _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(gr + x * g.O + ob * 16)))
                                    : _mm512_setzero_si512();
      const __m512i odd = x + 1 < g.OW ? _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(gr + (x + 1) * g.O + ob * 16)))
                                       : _mm512_setzero_si512();
      _mm512_storeu_si512(dst + 32 * j, _mm512_or_si512(even, _mm512_slli_epi32(odd, 16)));
      sum = _mm512_add_ps(sum, _mm512_castsi512_ps(_mm512_slli_epi32(even, 16)));
      sum = _mm512_add_ps(sum, _mm512_castsi512_ps(_mm512_slli_epi32(odd, 16)));
    }
    _mm512_storeu_ps(bias + ob * 16, _mm512_add_ps(_mm512_loadu_ps(bias + ob * 16), sum));
  }
}

// A flushed accumulator tile [16 channels][16 filters] added to acc (rows `pitch` apart).
TL_AMX inline void flush(const float (&c)[16][16], float* acc, int64_t pitch) {
  for (int m = 0; m < 16; ++m) _mm512_storeu_ps(acc + m * pitch, _mm512_add_ps(_mm512_loadu_ps(acc + m * pitch), _mm512_load_ps(c[m])));
}

// Adds output rows [begin, end) (row = n * OH + y) to acc [KH][KW][C][O] and bias [O]. Per block of
// up to kRowsPerFlush rows of one image: the input rows under it transposed (xt), the gradient rows
// paired (gp); then per kernel row, 16 channels and 2 filter blocks, tiles 0..5 accumulate
// [kw][filter block] over the block's rows and positions: A = xt at column x0 + kw (tile 6),
// B = gp (tile 7); flushed once per block.
TL_AMX void accumulateRows(const uint16_t* x, const uint16_t* go, float* acc, float* bias, const Geometry& g, int64_t begin, int64_t end) {
  static const TransposeIndices indices;
  const int64_t slots = kRowsPerFlush + g.KH - 1, OB = g.O / 16, half = g.OWP / 2, rowPairs = OB * half * 32;
  std::vector<uint16_t> xt(static_cast<size_t>(slots * g.C * g.CW), 0), gp(static_cast<size_t>(kRowsPerFlush * rowPairs));
  alignas(64) float c[16][16];
  amx::TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.set(t, 16, 64);
  _tile_loadconfig(&cfg);
  const int64_t pitch = g.CW * static_cast<int64_t>(sizeof(uint16_t)), tap = g.C * g.O;
  for (int64_t row = begin; row < end;) {
    const int64_t n = row / g.OH, y0 = row % g.OH, R = std::min({kRowsPerFlush, g.OH - y0, end - row});
    for (int64_t i = 0; i < R + g.KH - 1; ++i) {
      const int64_t iy = y0 - g.top + i;
      if (iy >= 0 && iy < g.H) transposeRow(x + (n * g.H + iy) * g.W * g.C, g, indices, xt.data() + i * g.C * g.CW);
    }
    for (int64_t r = 0; r < R; ++r) pairRow(go + (n * g.OH + y0 + r) * g.OW * g.O, g, gp.data() + r * rowPairs, bias);
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t c0 = 0; c0 < g.C; c0 += 16) {
        for (int64_t ob = 0; ob < OB; ob += 2) {
          const bool two = ob + 1 < OB;
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
          _tile_zero(4);
          _tile_zero(5);
          for (int64_t r = 0; r < R; ++r) {
            const int64_t iy = y0 + r + kh - g.top;
            if (iy < 0 || iy >= g.H) continue;  // a padding row: adds zero
            const uint16_t* a = xt.data() + ((r + kh) * g.C + c0) * g.CW;
            const uint16_t* b = gp.data() + r * rowPairs + ob * half * 32;
            for (int64_t x0 = 0; x0 < g.OWP; x0 += 32) {
              _tile_loadd(7, b + x0 * 16, 64);
              _tile_loadd(6, a + x0, pitch);
              _tile_dpbf16ps(0, 6, 7);
              if (g.KW > 1) {
                _tile_loadd(6, a + x0 + 1, pitch);
                _tile_dpbf16ps(1, 6, 7);
              }
              if (g.KW > 2) {
                _tile_loadd(6, a + x0 + 2, pitch);
                _tile_dpbf16ps(2, 6, 7);
              }
              if (!two) continue;
              _tile_loadd(7, b + half * 32 + x0 * 16, 64);
              _tile_loadd(6, a + x0, pitch);
              _tile_dpbf16ps(3, 6, 7);
              if (g.KW > 1) {
                _tile_loadd(6, a + x0 + 1, pitch);
                _tile_dpbf16ps(4, 6, 7);
              }
              if (g.KW > 2) {
                _tile_loadd(6, a + x0 + 2, pitch);
                _tile_dpbf16ps(5, 6, 7);
              }
            }
          }
          float* out = acc + kh * g.KW * tap + c0 * g.O + ob * 16;  // [kh][kw][c0][ob * 16]
          _tile_stored(0, c, 64);
          flush(c, out, g.O);
          if (g.KW > 1) {
            _tile_stored(1, c, 64);
            flush(c, out + tap, g.O);
          }
          if (g.KW > 2) {
            _tile_stored(2, c, 64);
            flush(c, out + 2 * tap, g.O);
          }
          if (!two) continue;
          _tile_stored(3, c, 64);
          flush(c, out + 16, g.O);
          if (g.KW > 1) {
            _tile_stored(4, c, 64);
            flush(c, out + tap + 16, g.O);
          }
          if (g.KW > 2) {
            _tile_stored(5, c, 64);
            flush(c, out + 2 * tap + 16, g.O);
          }
        }
      }
    }
    row += R;
  }
  _tile_release();
}

#pragma GCC diagnostic pop

// dW [O, C, KH, KW] (channels-last) and db [O], float32, of the bfloat16 input x and output gradient.
std::pair<torch::Tensor, torch::Tensor> weightGradient(const torch::Tensor& x, const torch::Tensor& gradOut, int64_t KH, int64_t KW, int64_t top,
                                                       int64_t left) {
  const torch::Tensor go = gradOut.to(at::kBFloat16).contiguous(at::MemoryFormat::ChannelsLast);
  Geometry g{x.size(0), x.size(1), x.size(2), x.size(3), go.size(1), KH, KW, top, left, go.size(2), go.size(3), 0, 0};
  g.OWP = (g.OW + 31) / 32 * 32;
  g.CW = (std::max(g.left + (g.W + 31) / 32 * 32, g.OWP + g.KW - 1) + 31) / 32 * 32;
  return simd::weightGradients(g.N * g.OH, KH, KW, g.C, g.O, g.O, [&](float* acc, float* bias, int64_t begin, int64_t end) {
    accumulateRows(simd::bits(x), simd::bits(go), acc, bias, g, begin, end);
  });
}

// Forward: today's autocast convolution (input, kernel and bias rounded to bfloat16). Saves the
// bfloat16 input and kernel, as today's graph does.
struct ConvFunction : public torch::autograd::Function<ConvFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                               int64_t top, int64_t left) {
    const torch::Tensor xb = x.to(at::kBFloat16).contiguous(at::MemoryFormat::ChannelsLast), wb = weight.to(at::kBFloat16);
    const torch::Tensor bb = bias.defined() ? bias.to(at::kBFloat16) : torch::Tensor();
    ctx->saved_data["x"] = xb;
    ctx->saved_data["w"] = wb;
    ctx->saved_data["pad"] = std::vector<int64_t>{top, left};
    ctx->saved_data["bias"] = bias.defined();
    ctx->saved_data["dtype"] = x.scalar_type();
    return torch::conv2d(xb, wb, bb, {1, 1}, {top, left}, {1, 1}, 1);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const torch::Tensor x = ctx->saved_data["x"].toTensor(), w = ctx->saved_data["w"].toTensor();
    const auto pad = ctx->saved_data["pad"].toIntVector();
    torch::Tensor dx;
    if (ctx->needs_input_grad(0)) {
      dx = std::get<0>(at::convolution_backward(grads[0].to(at::kBFloat16), x, w, c10::nullopt, {1, 1}, pad, {1, 1}, false, {0, 0}, 1,
                                                {true, false, false}));
      dx = dx.to(ctx->saved_data["dtype"].toScalarType());
    }
    auto [dW, db] = weightGradient(x, grads[0], w.size(2), w.size(3), pad[0], pad[1]);
    return {dx, dW, ctx->saved_data["bias"].toBool() ? db : torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool convWeightGradientAmxApplies(const Layer& L, const torch::Tensor& input) {
  if (!L.mixedBf16 || L.depthwise || L.groups != 1 || !amx::enabled()) return false;
  if (L.strides != std::vector<int64_t>{1, 1} || L.dilation != std::vector<int64_t>{1, 1}) return false;
  if (!torch::GradMode::is_enabled() || !L.params[0].requires_grad()) return false;
  if (input.dim() != 4 || !input.device().is_cpu() || (input.scalar_type() != at::kFloat && input.scalar_type() != at::kBFloat16)) return false;
  const torch::Tensor& w = L.params[0];
  if (w.size(1) != input.size(1) || w.size(1) % 16 != 0 || w.size(0) % 16 != 0 || w.size(3) > 3) return false;
  return input.size(0) > 0;
}

torch::Tensor convWeightGradientAmx(const Layer& L, const torch::Tensor& input, const std::vector<int64_t>& padding) {
  const torch::Tensor& w = L.params[0];
  // an empty output: today's path says what is wrong
  if (input.size(2) + 2 * padding[0] < w.size(2) || input.size(3) + 2 * padding[1] < w.size(3)) {
    return torch::conv2d(input, w, L.useBias ? L.params[1] : torch::Tensor(), L.strides, padding, L.dilation, L.groups);
  }
  return ConvFunction::apply(input, w, L.useBias ? L.params[1] : torch::Tensor(), padding[0], padding[1]);
}

}  // namespace tl
