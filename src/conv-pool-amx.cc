#include "conv-pool-amx.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

#include "amx.h"
#include "few-channel-block.h"
#include "parameter-cache.h"
#include "simd.h"

namespace tl {

namespace {

std::atomic<uint64_t> gCalls{0};          // convPoolAmx
std::atomic<uint64_t> gIntoPairCalls{0};  // fewChannelConvIntoPairAmx

// Output positions a work unit covers, at least (whole rows): the copied input rows (KH - 1 more
// than the unit's) are read from memory once per unit, so few rows per unit re-read many; the rows
// and the sums must still fit in L2.
constexpr int64_t kUnitPositions = 2048;
// ... and its input rows' bytes, at most (about): every filter block re-reads them, so they must
// stay in L2 beside a filter block's kernel (at 512 channels, 288 KB). Binds above 256 channels.
constexpr int64_t kUnitBytes = int64_t{1} << 20;

// input channels at most (see convPoolAmxApplies)
constexpr int64_t kMaxPairChannels = 512;

// Per layer: the kernel and bias in the tiles' layout, made from the layer's parameters.
struct Packed {
  std::mutex mutex;
  DerivedFrom weight, bias;
  torch::Tensor packedKernel;  // bfloat16 [O / 32][KH][KW][C / 32][2][16][16][2]: B tiles, VNNI pairs of channels
  torch::Tensor packedBias;    // float32 [O]: the bias rounded to bfloat16, or zeros
};

// The layer's packed kernel and bias, repacked after new weights (set_weights, fine-tuning).
std::pair<torch::Tensor, torch::Tensor> packedFor(const Layer& L) {
  Packed& p = layerCache<Packed>(L.amxConvCache);
  std::lock_guard<std::mutex> lock(p.mutex);
  const torch::Tensor& w = L.params[0];
  const torch::Tensor b = L.useBias ? L.params[1] : torch::Tensor();
  if (!p.weight.current(w) || !p.bias.current(b)) {
    torch::NoGradGuard noGrad;
    const int64_t O = w.size(0), C = w.size(1), KH = w.size(2), KW = w.size(3);
    // [O][C][KH][KW] split as [ob][half][filter][cb][pair][channel of pair][kh][kw] -> one B tile per (ob, kh, kw, cb, half)
    p.packedKernel = w.to(at::kBFloat16).contiguous().reshape({O / 32, 2, 16, C / 32, 16, 2, KH, KW}).permute({0, 6, 7, 3, 1, 4, 2, 5}).contiguous();
    p.packedBias = b.defined() ? bf16RoundedBias(b) : torch::zeros({O});
    p.weight.remember(w);
    p.bias.remember(b);
  }
  return {p.packedKernel, p.packedBias};
}

struct Geometry {
  int64_t C, H, W, O, KH, KW, top, left;
  int64_t Wp;      // padded input width
  int64_t rows;    // conv output rows computed: the pool's 2 * PH
  int64_t R;       // conv output rows per work unit (even)
  int64_t PH, PW;  // the pooled output
};

TL_AMX_BEGIN

TL_AMX inline __m512 maxPropagatingNan(__m512 a, __m512 b) {
  // libtorch's max_pool2d keeps a NaN; vmaxps would return b
  return _mm512_mask_mov_ps(_mm512_max_ps(a, b), _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), a);
}

// Filters ob * 32 .. + 31 of a unit's conv rows y0 .. y0 + R - 1 (sums: [position r * Wp + x][32])
// into the pooled output y: per window the largest sum, + bias, relu (vmaxps(0, v) keeps a NaN, as
// torch's relu does), rounded to bfloat16.
TL_AMX void finish(const float* sums, const float* bias, const Geometry& g, int64_t n, int64_t y0, int64_t R, int64_t ob, uint16_t* y) {
  const int64_t right = 32, down = g.Wp * 32;
  for (int64_t pr = 0; pr < R / 2; ++pr) {
    uint16_t* dst = y + ((n * g.PH + y0 / 2 + pr) * g.PW) * g.O + ob * 32;
    for (int64_t px = 0; px < g.PW; ++px) {
      const float* s = sums + (2 * pr * g.Wp + 2 * px) * 32;
      __m512 half[2];
      for (int h = 0; h < 2; ++h) {
        const float* t = s + 16 * h;
        const __m512 top = maxPropagatingNan(_mm512_loadu_ps(t), _mm512_loadu_ps(t + right));
        const __m512 bottom = maxPropagatingNan(_mm512_loadu_ps(t + down), _mm512_loadu_ps(t + down + right));
        half[h] = _mm512_max_ps(_mm512_setzero_ps(), _mm512_add_ps(maxPropagatingNan(top, bottom), _mm512_loadu_ps(bias + 16 * h)));
      }
      _mm512_storeu_si512(dst + px * g.O, (__m512i)_mm512_cvtne2ps_pbh(half[1], half[0]));
    }
  }
}

// Of a unit's input rows (buffer rows i = 0 .. count - 1, [Wp][C] each, for input row first + i):
// those outside the input zeroed, and the padding columns of the others; returns the input rows
// [lo, hi) left for the source to fill.
std::pair<int64_t, int64_t> padUnitRows(const Geometry& g, int64_t first, int64_t count, uint16_t* rows) {
  const int64_t rowBytes = g.Wp * g.C * 2, left = g.left * g.C * 2, inner = g.W * g.C * 2;
  const int64_t lo = std::clamp<int64_t>(first, 0, g.H), hi = std::clamp<int64_t>(first + count, lo, g.H);
  for (int64_t i = 0; i < count; ++i) {
    char* dst = reinterpret_cast<char*>(rows + i * g.Wp * g.C);
    if (first + i < lo || first + i >= hi) {
      std::memset(dst, 0, static_cast<size_t>(rowBytes));
      continue;
    }
    std::memset(dst, 0, static_cast<size_t>(left));
    std::memset(dst + left + inner, 0, static_cast<size_t>(rowBytes - left - inner));
  }
  return {lo, hi};
}

// A unit's input rows from the layer's input, stored as bfloat16 NHWC [N][H][W][C]: copied.
struct StoredRows {
  static constexpr bool kBorrowsTiles = false;
  const uint16_t* x;
  void fill(const Geometry& g, int64_t n, int64_t first, int64_t count, uint16_t* rows) const {
    const auto [lo, hi] = padUnitRows(g, first, count, rows);
    for (int64_t iy = lo; iy < hi; ++iy) {
      std::memcpy(rows + ((iy - first) * g.Wp + g.left) * g.C, x + (n * g.H + iy) * g.W * g.C, static_cast<size_t>(g.W * g.C * 2));
    }
  }
};

// ... computed there by the few-channel convolution before the pair (VGG16's block1_conv1), whose
// output is then never stored: the rows two units share are computed twice.
struct ComputedRows {
  static constexpr bool kBorrowsTiles = true;  // the convolution loads its own tiles
  const FewChannelConvRows& conv;
  void fill(const Geometry& g, int64_t n, int64_t first, int64_t count, uint16_t* rows) const {
    const auto [lo, hi] = padUnitRows(g, first, count, rows);
    if (lo == hi) return;
    amx::loadTiles(conv.tiles());
    conv.rows(n, lo, hi, rows + ((lo - first) * g.Wp + g.left) * g.C, g.Wp * g.C);
  }
};

// Work units [begin, end) (unit = image n, output rows y0 .. y0 + R - 1). Per unit, its padded input
// rows ([R + KH - 1][Wp][C], zero padding) are filled from `source`, and read there as one flattened
// sequence of positions: output position q = r * Wp + x takes tap (kh, kw) from position
// q + kh * Wp + kw, so an A tile (16 positions x 32 channels) is a plain strided load. Columns
// x > Wp - KW (no full window) are computed from whatever lies there and never pooled. Per 32 filters and 32 positions,
// tiles 0..3 sum [2 position blocks] x [2 filter blocks] over the taps and channels: A in tiles
// 4, 5, B (the packed kernel) in 6, 7, each loaded once per two products.
template <class Rows>
TL_AMX void runUnits(const Rows& source, const uint16_t* kernel, const float* bias, uint16_t* y, const Geometry& g, int64_t begin, int64_t end) {
  const int64_t P = simd::roundUp(g.R * g.Wp, 32);
  const int64_t rowsSize = (P + (g.KH - 1) * g.Wp + g.KW + 32) * g.C;
  const amx::Buffer<uint16_t> rows(rowsSize);  // aligned: every A tile row starts on a cache line
  const amx::Buffer<float> sums(P * 32);
  // per step k of the sum (tap kh, kw and 32 channels cb): where its A tiles start (from a block's
  // first position) and its B tiles (from the filter block's kernel)
  std::vector<int64_t> aStep, bStep;
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      for (int64_t cb = 0; cb < g.C / 32; ++cb) {
        aStep.push_back((kh * g.Wp + kw) * g.C + cb * 32);
        bStep.push_back(((kh * g.KW + kw) * g.C / 32 + cb) * 1024);
      }
    }
  }
  const int64_t steps = static_cast<int64_t>(aStep.size()), stride = g.C * 2, a1 = 16 * g.C;
  const amx::TileConfig config = amx::TileConfig::full();
  const amx::TileScope tiles(config);
  const int64_t unitsPerImage = (g.rows + g.R - 1) / g.R;
  for (int64_t u = begin; u < end; ++u) {
    const int64_t n = u / unitsPerImage, y0 = (u % unitsPerImage) * g.R, R = std::min(g.R, g.rows - y0);
    source.fill(g, n, y0 - g.top, R + g.KH - 1, rows.data);
    if constexpr (Rows::kBorrowsTiles) amx::loadTiles(config);
    const int64_t positions = simd::roundUp(R * g.Wp, 32);
    for (int64_t ob = 0; ob < g.O / 32; ++ob) {
      const uint16_t* kob = kernel + ob * g.KH * g.KW * g.C * 32;
      for (int64_t q0 = 0; q0 < positions; q0 += 32) {
        const uint16_t* a = rows.data + q0 * g.C;
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        _tile_loadd(4, a + aStep[0], stride);
        _tile_loadd(6, kob + bStep[0], 64);
        _tile_loadd(7, kob + bStep[0] + 512, 64);
        _tile_loadd(5, a + aStep[0] + a1, stride);
        // each operand tile is reloaded for the next step as soon as its last product of this step
        // is issued, so the loads overlap the products
        for (int64_t k = 1; k <= steps; ++k) {
          const bool more = k < steps;
          const uint16_t* an = a + aStep[more ? k : 0];
          const uint16_t* bn = kob + bStep[more ? k : 0];
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
          if (more) _tile_loadd(4, an, stride);
          _tile_dpbf16ps(2, 5, 6);
          if (more) _tile_loadd(6, bn, 64);
          _tile_dpbf16ps(3, 5, 7);
          if (more) {
            _tile_loadd(5, an + a1, stride);
            _tile_loadd(7, bn + 512, 64);
          }
        }
        float* s = sums.data + q0 * 32;
        _tile_stored(0, s, 128);
        _tile_stored(1, s + 16, 128);
        _tile_stored(2, s + 16 * 32, 128);
        _tile_stored(3, s + 16 * 32 + 16, 128);
      }
      finish(sums.data, bias + ob * 32, g, n, y0, R, ob, y);
    }
  }
}

TL_AMX_END

// The pair's conditions on the layers and on its input's channels C, height H and width W.
bool pairFits(const Layer& conv, const Layer& pool, bool poolIsOutput, int64_t C, int64_t H, int64_t W) {
  if (!amx::enabled() || poolIsOutput || !plainConv(conv) || !halvingPool(pool) || !conv.mixedBf16 || !pool.mixedBf16) return false;
  if (conv.activation != Act::Relu) return false;
  const torch::Tensor& w = conv.params[0];
  if (w.scalar_type() != at::kFloat || w.size(1) != C || w.size(0) % 32 != 0 || C % 32 != 0) return false;
  if (C > kMaxPairChannels) return false;
  const auto [OH, OW] = plainConvOutput(conv, H, W);
  return OH >= 2 && OW >= 2;  // at least one pooled output
}

// Rows per work unit: about kUnitPositions positions (fewer above 256 channels), even (whole pool windows).
Geometry geometry(const Layer& conv, int64_t C, int64_t H, int64_t W) {
  Geometry g{};
  g.C = C;
  g.H = H;
  g.W = W;
  g.O = conv.params[0].size(0);
  g.KH = conv.params[0].size(2);
  g.KW = conv.params[0].size(3);
  g.top = conv.pad[0];
  g.left = conv.pad[2];
  g.Wp = g.W + conv.pad[2] + conv.pad[3];
  const auto [OH, OW] = plainConvOutput(conv, H, W);
  g.PH = OH / 2;
  g.PW = OW / 2;
  g.rows = 2 * g.PH;
  const int64_t positions = std::min(kUnitPositions, kUnitBytes / (2 * C));
  g.R = std::min(g.rows, simd::roundUp((positions + g.Wp - 1) / g.Wp, 2));
  return g;
}

// The pooled output [N][O][PH][PW] (channels-last bfloat16), the units spread over the threads.
template <class Rows>
torch::Tensor runPair(const Layer& conv, const Rows& source, const Geometry& g, int64_t N, const torch::TensorOptions& options) {
  const auto [kernel, bias] = packedFor(conv);
  torch::Tensor y = torch::empty({N, g.O, g.PH, g.PW}, options.dtype(at::kBFloat16).memory_format(at::MemoryFormat::ChannelsLast));
  const uint16_t* kp = simd::bits(kernel);
  const float* bp = bias.data_ptr<float>();
  uint16_t* yp = simd::bits(y);
  const int64_t units = N * ((g.rows + g.R - 1) / g.R);
  at::parallel_for(0, units, 1, [&](int64_t begin, int64_t end) { runUnits(source, kp, bp, yp, g, begin, end); });
  return y;
}

}  // namespace

bool convPoolAmxApplies(const Layer& conv, const Layer& pool, const torch::Tensor& input, bool poolIsOutput) {
  if (!kernelInput4d(input) || input.size(0) == 0 || needsGradient(conv, input)) return false;
  return pairFits(conv, pool, poolIsOutput, input.size(1), input.size(2), input.size(3));
}

torch::Tensor convPoolAmx(const Layer& conv, const torch::Tensor& input) {
  const torch::Tensor x = input.to(at::kBFloat16).contiguous(at::MemoryFormat::ChannelsLast);
  torch::Tensor y = runPair(conv, StoredRows{simd::bits(x)}, geometry(conv, x.size(1), x.size(2), x.size(3)), x.size(0), x.options());
  gCalls.fetch_add(1);
  return y;
}

bool fewChannelConvIntoPairAmxApplies(const Layer& first, const Layer& conv, const Layer& pool, const torch::Tensor& input, bool poolIsOutput) {
  if (first.activation != Act::Relu && first.activation != Act::Linear) return false;
  if (!fewChannelConvAmxApplies(first, input) || needsGradient(conv, input)) return false;
  const auto [H, W] = plainConvOutput(first, input.size(2), input.size(3));
  return pairFits(conv, pool, poolIsOutput, first.params[0].size(0), H, W);
}

torch::Tensor fewChannelConvIntoPairAmx(const Layer& first, const Layer& conv, const torch::Tensor& input) {
  const FewChannelConvRows source(first, input, first.activation == Act::Relu);
  const Geometry g = geometry(conv, first.params[0].size(0), source.height(), source.width());
  torch::Tensor y = runPair(conv, ComputedRows{source}, g, input.size(0), input.options());
  gIntoPairCalls.fetch_add(1);
  return y;
}

void addConvPoolAmxInfo(Napi::Object& out) {
  out.Set("amxConvPoolCalls", static_cast<double>(gCalls.load()));
  out.Set("amxConvIntoPairCalls", static_cast<double>(gIntoPairCalls.load()));
}

}  // namespace tl
