#include "few-channel-block.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#include "simd.h"
#include "weight-gradient.h"

namespace tl {

namespace {

using simd::kBlocked;
using simd::kMaxChannels;
using simd::v16;

std::atomic<bool> gEnabled{true};

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
    const int64_t o = (row * g.PW + pw) * g.O + ob;
    float sums[4][16 * NB], best[16 * NB];
    int32_t winner[16 * NB];
    for (int k = 0; k < 4; ++k)
      for (int b = 0; b < NB; ++b) simd::store(sums[k] + 16 * b, a[k][b]);
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
  return {C, x.size(2), x.size(3), O, (O + 15) / 16 * 16, KH, KW * C, OH / 2, OW / 2};
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
  const Geometry g{x.size(1), x.size(2), x.size(3), O, (O + 15) / 16 * 16, KH, KW * x.size(1), go.size(2), go.size(3)};
  return simd::weightGradients(go.size(0) * g.PH, KH, KW, g.C, O, g.OP, [&](float* acc, float* bias, int64_t begin, int64_t end) {
    std::vector<float> gRow(static_cast<size_t>(2 * g.PW * g.OP)), rowBias(static_cast<size_t>(g.O));
    if (bf16)
      accumulateRowsBf16(x.data_ptr<float>(), arg.data_ptr<uint8_t>(), simd::bits(go), acc, bias, g, begin, end, gRow.data(), rowBias.data());
    else
      accumulateRowsF32(x.data_ptr<float>(), arg.data_ptr<uint8_t>(), go.data_ptr<float>(), acc, bias, g, begin, end, gRow.data(), rowBias.data());
  });
}

// Saves the (padded) input and a byte per pooled output, not the conv output.
struct FewChannelBlockFunction : public torch::autograd::Function<FewChannelBlockFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                               bool bf16) {
    const Geometry g = geometry(x, weight);
    torch::Tensor arg = torch::empty({x.size(0), g.PH, g.PW, g.O}, x.options().dtype(at::kByte));
    torch::Tensor out = blockForward(x, weight, bias, bf16, arg);
    ctx->saved_data["x"] = x;
    ctx->saved_data["arg"] = arg;
    ctx->saved_data["kernel"] = std::vector<int64_t>{weight.size(2), weight.size(3)};
    ctx->saved_data["bias"] = bias.defined();
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const auto kernel = ctx->saved_data["kernel"].toIntVector();
    auto [dW, db] = blockBackward(ctx->saved_data["x"].toTensor(), ctx->saved_data["arg"].toTensor(), grads[0], kernel[0], kernel[1]);
    return {torch::Tensor(), dW, ctx->saved_data["bias"].toBool() ? db : torch::Tensor(), torch::Tensor()};
  }
};

Napi::Value SetFirstBlockFusion(const Napi::CallbackInfo& info) {
  if (!info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "setFirstBlockFusion: pass true (fused first block) or false (today's path)");
  return Napi::Boolean::New(info.Env(), gEnabled.exchange(info[0].As<Napi::Boolean>().Value()));
}

}  // namespace

bool fewChannelBlockApplies(const Layer& conv, const Layer& pool, const torch::Tensor& input, bool poolIsOutput) {
  if (!gEnabled.load() || poolIsOutput || conv.kind != Kind::Conv2D || pool.kind != Kind::MaxPool) return false;
  if (conv.depthwise || conv.groups != 1 || conv.activation != Act::Relu || conv.mixedBf16 != pool.mixedBf16) return false;
  if (conv.strides != std::vector<int64_t>{1, 1} || conv.dilation != std::vector<int64_t>{1, 1}) return false;
  if (pool.pool != std::vector<int64_t>{2, 2} || pool.strides != std::vector<int64_t>{2, 2}) return false;
  for (int64_t p : pool.pad) {
    if (p != 0) return false;
  }
  if (input.dim() != 4 || !input.device().is_cpu() || input.requires_grad()) return false;
  if (input.scalar_type() != at::kFloat && input.scalar_type() != at::kBFloat16) return false;
  const torch::Tensor& w = conv.params[0];
  const int64_t C = input.size(1);
  if (C < 1 || C > kMaxChannels || w.size(1) != C || w.size(3) * C > simd::kMaxRowTaps) return false;
  // at least one pooled output
  const int64_t OH = input.size(2) + conv.pad[0] + conv.pad[1] - w.size(2) + 1, OW = input.size(3) + conv.pad[2] + conv.pad[3] - w.size(3) + 1;
  return input.size(0) > 0 && OH >= 2 && OW >= 2;
}

torch::Tensor fewChannelBlock(const Layer& conv, const torch::Tensor& input) {
  const torch::Tensor x = kernelInput(conv, input);
  const torch::Tensor& weight = conv.params[0];
  const torch::Tensor bias = conv.useBias ? conv.params[1] : torch::Tensor();
  if (needsGradient(conv, input)) return FewChannelBlockFunction::apply(x, weight, bias, conv.mixedBf16);
  torch::NoGradGuard noGrad;  // no winners to record
  return blockForward(x, weight, bias, conv.mixedBf16, torch::Tensor());
}

namespace firstBlock {

void addExports(Napi::Env env, Napi::Object exports) {
  exports.Set("setFirstBlockFusion", Napi::Function::New(env, SetFirstBlockFusion));
}

}  // namespace firstBlock

}  // namespace tl
