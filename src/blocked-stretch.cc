#include "blocked-stretch.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <cstdint>

#include "dnnl-conv.h"
#include "layer-timing.h"
#include "simd.h"

namespace tl {

namespace {

std::atomic<uint64_t> gStretches{0};  // stretches run (info().blockedStretches: tests check a case took this path)

bool takesConv(const Layer& L, int64_t channels, const torch::Tensor& x) {
  return plainConv(L) && (L.activation == Act::Relu || L.activation == Act::Linear) && dnnlconv::blockedApplies(L, channels) &&
         !needsGradient(L, x);
}

// The stretch's first layer: any float32 convolution that can write its output blocked.
bool startsStretch(const Layer& L, const torch::Tensor& x) {
  return L.kind == Kind::Conv2D && plainConv(L) && (L.activation == Act::Relu || L.activation == Act::Linear) && dnnlconv::blockedOutputApplies(L) &&
         !needsGradient(L, x);
}

bool takesPool(const Layer& L, int64_t height, int64_t width) { return halvingPool(L) && !L.mixedBf16 && height >= 2 && width >= 2; }

// Whether layers[k] (before `to`) joins a stretch on an input of `channels` x `height` x `width`.
bool joins(const std::vector<Layer>& layers, size_t k, size_t to, int64_t channels, int64_t height, int64_t width, const torch::Tensor& x) {
  if (k >= to) return false;
  const Layer& L = layers[k];
  return (L.kind == Kind::Conv2D && takesConv(L, channels, x)) || (L.kind == Kind::MaxPool && takesPool(L, height, width));
}

// Pooled rows [begin, end) (row = (n * CB + cb) * OH + oh) of the blocked input [N][CB][H][W][16]:
// windows scanned row-major, a value winning if greater or NaN, then the relu when `relu`, into
// the blocked output [N][CB][OH][OW][16] or, when `!blockedOut`, channels-last [N][OH][OW][CB * 16].
TL_CLONES void poolRows(const float* x, float* y, int64_t CB, int64_t H, int64_t W, int64_t OH, int64_t OW, bool relu, bool blockedOut,
                        int64_t begin, int64_t end) {
  for (int64_t row = begin; row < end; ++row) {
    const int64_t oh = row % OH, cb = (row / OH) % CB, n = row / (OH * CB);
    const float* top = x + (((n * CB + cb) * H + 2 * oh) * W) * 16;
    for (int64_t ow = 0; ow < OW; ++ow) {
      const float* p[4] = {top + 2 * ow * 16, top + (2 * ow + 1) * 16, top + (W + 2 * ow) * 16, top + (W + 2 * ow + 1) * 16};
      float* o = blockedOut ? y + (row * OW + ow) * 16 : y + ((n * OH + oh) * OW + ow) * CB * 16 + cb * 16;
#pragma GCC ivdep
      for (int l = 0; l < 16; ++l) {
        float m = p[0][l];
        for (int k = 1; k < 4; ++k) m = simd::wins(p[k][l], m) ? p[k][l] : m;
        o[l] = !relu || simd::reluPasses(m) ? m : 0.f;
      }
    }
  }
}

torch::Tensor pool(const torch::Tensor& x, bool relu, bool blockedOut) {
  const int64_t N = x.size(0), CB = x.size(1), H = x.size(2), W = x.size(3), OH = H / 2, OW = W / 2;
  torch::Tensor y = blockedOut ? torch::empty({N, CB, OH, OW, 16}, x.options())
                               : torch::empty({N, CB * 16, OH, OW}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, N * CB * OH, 1, [&](int64_t begin, int64_t end) { poolRows(xp, yp, CB, H, W, OH, OW, relu, blockedOut, begin, end); });
  return y;
}

}  // namespace

bool blockedStretchApplies(const std::vector<Layer>& layers, size_t i, size_t to, const torch::Tensor& x) {
  if (!kernelInput4d(x) || x.scalar_type() != at::kFloat || x.size(0) == 0) return false;
  const Layer& first = layers[i];
  if (!startsStretch(first, x)) return false;
  const auto [OH, OW] = plainConvOutput(first, x.size(2), x.size(3));
  // a first convolution that does not run Winograd itself (an image's RGB) only into one that does:
  // into a pool, the model's fused first block (few-channel-block.cc) never writes the conv output
  const bool winograd = takesConv(first, x.size(1), x);
  return (winograd || (i + 1 < to && layers[i + 1].kind == Kind::Conv2D)) && joins(layers, i + 1, to, first.filters, OH, OW, x);
}

torch::Tensor blockedStretch(const std::vector<Layer>& layers, size_t& i, size_t to, const torch::Tensor& x) {
  torch::Tensor y = x;  // 4-D channels-last, or 5-D blocked
  int64_t channels = x.size(1), height = x.size(2), width = x.size(3);
  bool pendingRelu = false;  // the last conv's relu, left for the pool after it
  bool ran = false;
  auto continues = [&](size_t k, int64_t c, int64_t h, int64_t w) { return joins(layers, k, to, c, h, w, x); };
  for (size_t k = i; k < to && (k == i || continues(k, channels, height, width)); ++k) {
    const Layer& L = layers[k];
    const double start = timing::enabled() ? timing::now() : 0;
    if (L.kind == Kind::Conv2D) {
      const auto [OH, OW] = plainConvOutput(L, height, width);
      const bool poolNext = k + 1 < to && layers[k + 1].kind == Kind::MaxPool && takesPool(layers[k + 1], OH, OW);
      const bool relu = L.activation == Act::Relu && !poolNext;
      torch::Tensor out = dnnlconv::forwardBlocked(L, y, relu, continues(k + 1, L.filters, OH, OW));
      if (!out.defined()) break;  // no oneDNN primitive after all: the layers from here run one by one
      y = out;
      pendingRelu = L.activation == Act::Relu && poolNext;
      channels = L.filters;
      height = OH;
      width = OW;
    } else {
      y = pool(y, pendingRelu, continues(k + 1, channels, height / 2, width / 2));
      pendingRelu = false;
      height /= 2;
      width /= 2;
    }
    if (timing::enabled()) timing::forward(L.name, start);
    i = k;
    ran = true;
  }
  if (!ran) return {};
  gStretches.fetch_add(1);
  return y.dim() == 5 ? dnnlconv::fromBlocked(y) : y;
}

void addBlockedStretchInfo(Napi::Object& out) { out.Set("blockedStretches", static_cast<double>(gStretches.load())); }

}  // namespace tl
