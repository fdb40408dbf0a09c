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

TL_AMX_BEGIN

// Positions (padded rows x padded width) per block, at least: the tiles run over a block's rows as
// one flattened sequence and are flushed into the float32 partial sums once per block.
constexpr int64_t kBlockPositions = 2048;

// x: the bfloat16 input [N][H][W][C], g: the output gradient [N][OH][OW][O]; top/left: padding on
// each side (Hp = H + 2 top, Wp = W + 2 left). A block of output rows y0 .. y0 + R - 1 is flattened:
// position q = (y - y0) * Wp + x (columns x >= OW have a zero gradient), and the padded input
// under it transposed to xt [C][XW] at q', q' = (padded row - y0) * Wp + padded column, so tap
// (kh, kw) of position q reads xt at q + kh * Wp + kw: a plain column offset.
struct Geometry {
  int64_t N, C, H, W, O, KH, KW, top, left, OH, OW, Wp;
  int64_t R;   // output rows per block
  int64_t XW;  // pitch (elements) of xt's channel rows
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
#pragma GCC unroll 5
  for (int k = 0, s = 16; k < 5; ++k, s /= 2) {
    const __m512i lo = _mm512_load_si512(t.lo[k]), hi = _mm512_load_si512(t.hi[k]);
#pragma GCC unroll 32
    for (int i = 0; i < 32; ++i) {
      if (i & s) continue;
      const __m512i a = r[i], b = r[i + s];
      r[i] = _mm512_permutex2var_epi16(a, lo, b);
      r[i + s] = _mm512_permutex2var_epi16(a, hi, b);
    }
  }
}

// One input row [W][C] -> channel-major dst[c * XW + x], 32 x 32 blocks; only the W columns are
// written (the padding columns around them stay zero).
TL_AMX void transposeRow(const uint16_t* xr, const Geometry& g, const TransposeIndices& t, uint16_t* dst) {
  __m512i r[32];
  for (int64_t c0 = 0; c0 < g.C; c0 += 32) {
    const int64_t valid = std::min<int64_t>(32, g.C - c0);
    const __mmask32 lanes = valid == 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << valid) - 1);
    for (int64_t x0 = 0; x0 < g.W; x0 += 32) {
      const int64_t cols = std::min<int64_t>(32, g.W - x0);
      const __mmask32 store = cols == 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << cols) - 1);
      for (int64_t i = 0; i < 32; ++i) r[i] = i < cols ? _mm512_maskz_loadu_epi16(lanes, xr + (x0 + i) * g.C + c0) : _mm512_setzero_si512();
      transpose32(r, t);
      for (int64_t c = 0; c < valid; ++c) _mm512_mask_storeu_epi16(dst + (c0 + c) * g.XW + x0, store, r[c]);
    }
  }
}

// The B tiles of a block's KP positions (R rows of the gradient from gr [R][OW][O]), per 16-filter
// block: gp [O / 16][KP / 2][16][2] (VNNI: row j holds, per filter, positions 2j and 2j + 1; zero at
// columns >= OW and past the block); the gradient's sum added to bias.
TL_AMX void pairBlock(const uint16_t* gr, const Geometry& g, int64_t R, int64_t KP, uint16_t* gp, float* bias) {
  for (int64_t ob = 0; ob < g.O / 16; ++ob) {
    __m512 sum = _mm512_setzero_ps();
    uint16_t* dst = gp + ob * KP * 16;
    int64_t r = 0, x = 0;  // position 2j's row and column
    for (int64_t j = 0; j < KP / 2; ++j) {
      __m512i v[2];
      for (int k = 0; k < 2; ++k) {
        v[k] = r < R && x < g.OW ? _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(gr + (r * g.OW + x) * g.O + ob * 16)))
                                 : _mm512_setzero_si512();
        if (++x == g.Wp) {
          x = 0;
          ++r;
        }
      }
      _mm512_storeu_si512(dst + 32 * j, _mm512_or_si512(v[0], _mm512_slli_epi32(v[1], 16)));
      sum = _mm512_add_ps(sum, _mm512_castsi512_ps(_mm512_slli_epi32(v[0], 16)));
      sum = _mm512_add_ps(sum, _mm512_castsi512_ps(_mm512_slli_epi32(v[1], 16)));
    }
    _mm512_storeu_ps(bias + ob * 16, _mm512_add_ps(_mm512_loadu_ps(bias + ob * 16), sum));
  }
}

// The next block's input and gradient rows, pulled into L2 a few lines per tile step while the
// tiles work on this block (the rows come from memory; the tiles are otherwise left waiting).
struct Prefetch {
  const char* at[2] = {};
  const char* end[2] = {};
  int64_t perStep = 0;
};

TL_AMX inline void prefetchLines(Prefetch& p) {
  for (int64_t k = 0; k < p.perStep; ++k) {
    const int s = p.at[0] < p.end[0] ? 0 : 1;
    if (p.at[s] >= p.end[s]) return;
    _mm_prefetch(p.at[s], _MM_HINT_T1);
    p.at[s] += 64;
  }
}

// Adds output rows [begin, end) (row = n * OH + y) to acc [KH][KW][C][O] and bias [O]. Per block of
// up to R rows of one image: the padded input rows under it transposed (xt), the gradient paired
// (gp); then per tap (kh, kw), 32 channels and 32 filters, tiles 0..3 accumulate [2 channel blocks]
// x [2 filter blocks] over the block's positions, 32 at a time: A = xt at q0 + kh * Wp + kw (tiles
// 4, 5), B = gp at q0 (tiles 6, 7), each tile loaded once per two products; flushed into acc once
// per block. Positions with a zero gradient (columns >= OW, past the block) read whatever input
// lies there: products with zero.
TL_AMX void accumulateRows(const uint16_t* x, const uint16_t* go, float* acc, float* bias, const Geometry& g, int64_t begin, int64_t end) {
  static const TransposeIndices indices;
  const amx::Buffer<uint16_t> xt(g.C * g.XW), gp(g.O * simd::roundUp(g.R * g.Wp, 32));
  alignas(64) float c[16][16];
  const amx::TileScope tiles(amx::TileConfig::full());
  const int64_t pitch = g.XW * static_cast<int64_t>(sizeof(uint16_t)), tap = g.C * g.O, OB = g.O / 16;
  for (int64_t row = begin; row < end;) {
    const int64_t n = row / g.OH, y0 = row % g.OH, R = std::min({g.R, g.OH - y0, end - row}), KP = simd::roundUp(R * g.Wp, 32);
    for (int64_t i = 0; i < R + g.KH - 1; ++i) {
      const int64_t iy = y0 + i - g.top;
      uint16_t* dst = xt.data + i * g.Wp + g.left;
      if (iy >= 0 && iy < g.H) {
        transposeRow(x + (n * g.H + iy) * g.W * g.C, g, indices, dst);
      } else {
        for (int64_t ch = 0; ch < g.C; ++ch) std::fill_n(dst + ch * g.XW, g.W, uint16_t{0});  // a padding row
      }
    }
    pairBlock(go + (n * g.OH + y0) * g.OW * g.O, g, R, KP, gp.data, bias);
    Prefetch next;
    if (row + R < end) {
      const int64_t n2 = (row + R) / g.OH, y2 = (row + R) % g.OH, R2 = std::min({g.R, g.OH - y2, end - row - R});
      const int64_t lo = std::max<int64_t>(0, y2 - g.top), hi = std::min<int64_t>(g.H, y2 + R2 + g.KH - 1 - g.top);
      next.at[0] = reinterpret_cast<const char*>(x + (n2 * g.H + lo) * g.W * g.C);
      next.end[0] = next.at[0] + std::max<int64_t>(0, hi - lo) * g.W * g.C * 2;
      next.at[1] = reinterpret_cast<const char*>(go + (n2 * g.OH + y2) * g.OW * g.O);
      next.end[1] = next.at[1] + R2 * g.OW * g.O * 2;
      const int64_t steps = g.KH * g.KW * ((g.C + 31) / 32) * ((OB + 1) / 2) * (KP / 32);
      next.perStep = ((next.end[0] - next.at[0]) + (next.end[1] - next.at[1])) / 64 / steps + 1;
    }
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        for (int64_t c0 = 0; c0 < g.C; c0 += 32) {
          const bool twoC = c0 + 16 < g.C;
          const uint16_t* a = xt.data + c0 * g.XW + kh * g.Wp + kw;
          for (int64_t ob = 0; ob < OB; ob += 2) {
            const bool twoO = ob + 1 < OB;
            const uint16_t* b = gp.data + ob * KP * 16;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            for (int64_t q0 = 0; q0 < KP; q0 += 32) {
              prefetchLines(next);
              _tile_loadd(4, a + q0, pitch);
              _tile_loadd(6, b + q0 * 16, 64);
              if (twoO) _tile_loadd(7, b + KP * 16 + q0 * 16, 64);
              if (twoC) _tile_loadd(5, a + 16 * g.XW + q0, pitch);
              _tile_dpbf16ps(0, 4, 6);
              if (twoO) _tile_dpbf16ps(1, 4, 7);
              if (twoC) _tile_dpbf16ps(2, 5, 6);
              if (twoC && twoO) _tile_dpbf16ps(3, 5, 7);
            }
            float* out = acc + (kh * g.KW + kw) * tap + c0 * g.O + ob * 16;  // [kh][kw][c0][ob * 16]
            _tile_stored(0, c, 64);
            amx::addTile(c, 16, out, g.O);
            if (twoO) {
              _tile_stored(1, c, 64);
              amx::addTile(c, 16, out + 16, g.O);
            }
            if (twoC) {
              _tile_stored(2, c, 64);
              amx::addTile(c, 16, out + 16 * g.O, g.O);
            }
            if (twoC && twoO) {
              _tile_stored(3, c, 64);
              amx::addTile(c, 16, out + 16 * g.O + 16, g.O);
            }
          }
        }
      }
    }
    row += R;
  }
}

TL_AMX_END

// dW [O, C, KH, KW] (channels-last) and db [O], float32, of the bfloat16 input x and output gradient go (NHWC).
std::pair<torch::Tensor, torch::Tensor> weightGradient(const torch::Tensor& x, const torch::Tensor& go, int64_t KH, int64_t KW, int64_t top,
                                                       int64_t left) {
  Geometry g{x.size(0), x.size(1), x.size(2), x.size(3), go.size(1), KH, KW, top, left, go.size(2), go.size(3), x.size(3) + 2 * left, 0, 0};
  g.R = std::clamp<int64_t>((kBlockPositions + g.Wp - 1) / g.Wp, 1, g.OH);
  // the last tile of a block reads up to 31 positions past it, plus the largest tap offset
  g.XW = simd::roundUp(simd::roundUp(g.R * g.Wp, 32) + (KH - 1) * g.Wp + KW - 1, 32);
  return simd::weightGradients(g.N * g.OH, KH, KW, g.C, g.O, g.O, [&](float* acc, float* bias, int64_t begin, int64_t end) {
    accumulateRows(simd::bits(x), simd::bits(go), acc, bias, g, begin, end);
  });
}

// Forward: today's autocast convolution (input, kernel and bias rounded to bfloat16). Saves the
// bfloat16 input and kernel, as today's graph does.
struct ConvFunction : public torch::autograd::Function<ConvFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& biasInput, int64_t top, int64_t left) {
    const torch::Tensor bias = biasOrNone(biasInput);
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
    // the output gradient as both passes read it, converted once
    const torch::Tensor go = grads[0].to(at::kBFloat16).contiguous(at::MemoryFormat::ChannelsLast);
    torch::Tensor dx;
    if (ctx->needs_input_grad(0)) {
      dx = std::get<0>(at::convolution_backward(go, x, w, c10::nullopt, {1, 1}, pad, {1, 1}, false, {0, 0}, 1,
                                                {true, false, false}));
      dx = dx.to(ctx->saved_data["dtype"].toScalarType());
    }
    // Grad-CAM differentiates by the feature map only: no tile pass for a gradient nobody reads
    if (!ctx->needs_input_grad(1) && !ctx->needs_input_grad(2)) return {dx, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
    auto [dW, db] = weightGradient(x, go, w.size(2), w.size(3), pad[0], pad[1]);
    return {dx, dW, ctx->saved_data["bias"].toBool() ? db : torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool convWeightGradientAmxApplies(const Layer& L, const torch::Tensor& input) {
  if (!L.mixedBf16 || !plainConv(L) || !amx::enabled()) return false;
  if (!torch::GradMode::is_enabled() || !L.params[0].requires_grad() || !kernelInput4d(input)) return false;
  const torch::Tensor& w = L.params[0];
  if (w.size(1) != input.size(1) || w.size(1) % 16 != 0 || w.size(0) % 16 != 0) return false;
  return input.size(0) > 0;
}

torch::Tensor convWeightGradientAmx(const Layer& L, const torch::Tensor& input, const std::vector<int64_t>& padding) {
  const torch::Tensor& w = L.params[0];
  // an empty output: today's path says what is wrong
  if (input.size(2) + 2 * padding[0] < w.size(2) || input.size(3) + 2 * padding[1] < w.size(3)) {
    return torch::conv2d(input, w, L.useBias ? L.params[1] : torch::Tensor(), L.strides, padding, L.dilation, L.groups);
  }
  return ConvFunction::apply(input, w, functionBias(L), padding[0], padding[1]);
}

}  // namespace tl
