#include "few-channel-conv.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "simd.h"
#include "weight-gradient.h"

namespace tl {

namespace {

using simd::kMaxChannels;
constexpr int64_t kMaxTaps = simd::kMaxRowTaps;  // kernel width x input channels

using simd::value;

struct Geometry {
  int64_t C, H, W, O, OP /* O rounded up to 16 */, KH, KW, SH, SW, DH, DW, OH, OW;
};

// Adds output rows [begin, end) (row = n * OH + oh) to acc [KH][KW * C][OP] and bias [OP]; x is the
// NHWC input, g the NHWC output gradient, both bfloat16; xRow [W * C], gRow [OW * OP] and rowBias [O]
// are scratch.
TL_CLONES void accumulateRows(const uint16_t* x, const uint16_t* g, float* acc, float* bias, const Geometry& geo, int64_t begin, int64_t end,
                              float* xRow, float* gRow, float* rowBias) {
  const int64_t T = geo.KW * geo.C;
  int64_t off[kMaxTaps];
  for (int64_t kw = 0; kw < geo.KW; ++kw)
    for (int64_t c = 0; c < geo.C; ++c) off[kw * geo.C + c] = kw * geo.DW * geo.C + c;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / geo.OH, oh = row % geo.OH;
    const uint16_t* gr = g + row * geo.OW * geo.O;
    // the row's gradient in float32, zero-padded to OP filters, and its sum per filter (the bias
    // gradient): loops over filters, so both vectorize
    std::fill(rowBias, rowBias + geo.O, 0.f);
    for (int64_t ow = 0; ow < geo.OW; ++ow) {
      float* dst = gRow + ow * geo.OP;
      for (int64_t o = 0; o < geo.O; ++o) {
        dst[o] = value(gr[ow * geo.O + o]);
        rowBias[o] += dst[o];
      }
      for (int64_t o = geo.O; o < geo.OP; ++o) dst[o] = 0.f;
    }
    for (int64_t o = 0; o < geo.O; ++o) bias[o] += rowBias[o];
    for (int64_t kh = 0; kh < geo.KH; ++kh) {
      const uint16_t* xr = x + ((n * geo.H + oh * geo.SH + kh * geo.DH) * geo.W) * geo.C;
      for (int64_t i = 0; i < geo.W * geo.C; ++i) xRow[i] = value(xr[i]);
      float* a = acc + kh * T * geo.OP;
      simd::rowTapsAny(T, xRow, gRow, a, off, geo.SW * geo.C, geo.OW, geo.OP);
    }
  }
}

// Weight [O, C, KH, KW] (channels-last, like the layer's kernel) and bias [O] gradients, float32.
std::pair<torch::Tensor, torch::Tensor> weightGradients(const torch::Tensor& xPadded, const torch::Tensor& gradOut, int64_t KH, int64_t KW,
                                                        const std::vector<int64_t>& stride, const std::vector<int64_t>& dilation) {
  const torch::Tensor x = xPadded.contiguous(at::MemoryFormat::ChannelsLast);
  const torch::Tensor g = gradOut.to(at::kBFloat16).contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t O = g.size(1);
  const Geometry geo{x.size(1), x.size(2),   x.size(3),   O,           simd::roundUp(O, 16), KH,       KW,
                     stride[0], stride[1], dilation[0], dilation[1], g.size(2),            g.size(3)};
  return simd::weightGradients(g.size(0) * geo.OH, KH, KW, geo.C, O, geo.OP, [&](float* acc, float* bias, int64_t begin, int64_t end) {
    std::vector<float> xRow(static_cast<size_t>(geo.W * geo.C)), gRow(static_cast<size_t>(geo.OW * geo.OP)), rowBias(static_cast<size_t>(geo.O));
    accumulateRows(simd::bits(x), simd::bits(g), acc, bias, geo, begin, end, xRow.data(), gRow.data(), rowBias.data());
  });
}

struct FewChannelConvFunction : public torch::autograd::Function<FewChannelConvFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& biasInput, std::vector<int64_t> stride, std::vector<int64_t> padding,
                               std::vector<int64_t> dilation) {
    const torch::Tensor bias = biasOrNone(biasInput);
    // autocast's own casts and call, so the output is bitwise the same as without this path
    const torch::Tensor xb = x.to(at::kBFloat16);
    torch::Tensor y = torch::conv2d(xb, weight.to(at::kBFloat16), bias.defined() ? bias.to(at::kBFloat16) : bias, stride, padding, dilation);
    ctx->saved_data["x"] = padding[0] || padding[1] ? torch::constant_pad_nd(xb, {padding[1], padding[1], padding[0], padding[0]}) : xb;
    ctx->saved_data["kernel"] = std::vector<int64_t>{weight.size(2), weight.size(3)};
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["dilation"] = dilation;
    ctx->saved_data["bias"] = bias.defined();
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const auto kernel = ctx->saved_data["kernel"].toIntVector();
    auto [dW, db] = weightGradients(ctx->saved_data["x"].toTensor(), grads[0], kernel[0], kernel[1], ctx->saved_data["stride"].toIntVector(),
                                    ctx->saved_data["dilation"].toIntVector());
    return {torch::Tensor(), dW, ctx->saved_data["bias"].toBool() ? db : torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool fewChannelConvApplies(const Layer& conv, const torch::Tensor& input) {
  if (!conv.mixedBf16 || conv.depthwise || conv.groups != 1 || !at::autocast::is_cpu_enabled()) return false;
  if (input.dim() != 4 || !input.device().is_cpu() || input.size(1) > kMaxChannels || input.requires_grad()) return false;
  if (!torch::GradMode::is_enabled() || !conv.params[0].requires_grad()) return false;
  return conv.kernel[1] * input.size(1) <= kMaxTaps;
}

torch::Tensor fewChannelConv(const Layer& conv, const torch::Tensor& input, const std::vector<int64_t>& padding) {
  return FewChannelConvFunction::apply(input, conv.params[0], functionBias(conv), conv.strides, padding, conv.dilation);
}

}  // namespace tl
