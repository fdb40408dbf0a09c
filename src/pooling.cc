// libtorch's max_pool2d backward zero-fills the whole input gradient and then scatters into it:
// on the experiment's first layer that is two passes over 727 MB per step. With windows that do
// not overlap (the 2x2/stride-2 pools of the CNN and VGG16), every input position belongs to at
// most one window, so the backward can write each gradient value exactly once.
#include "pooling.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>

namespace tl {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct Geometry {
  int64_t n, c, h, w, oh, ow, ph, pw, sh, sw;
};

Geometry geometry(const torch::Tensor& x, const std::vector<int64_t>& pool, const std::vector<int64_t>& strides) {
  Geometry g{x.size(0), x.size(1), x.size(2), x.size(3), 0, 0, pool[0], pool[1], strides[0], strides[1]};
  g.oh = (g.h - g.ph) / g.sh + 1;
  g.ow = (g.w - g.pw) / g.sw + 1;
  return g;
}

class MaxPoolNonOverlapping : public torch::autograd::Function<MaxPoolNonOverlapping> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, std::vector<int64_t> pool, std::vector<int64_t> strides) {
    torch::Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
    const Geometry g = geometry(x, pool, strides);
    auto out = torch::empty({g.n, g.c, g.oh, g.ow}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
    auto idx = torch::empty({g.n, g.oh, g.ow, g.c}, x.options().dtype(torch::kUInt8));
    const float* src = x.data_ptr<float>();
    float* dst = out.data_ptr<float>();
    uint8_t* arg = idx.data_ptr<uint8_t>();
    at::parallel_for(0, g.n * g.oh, 1, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t b = row / g.oh, oy = row % g.oh;
        for (int64_t ox = 0; ox < g.ow; ++ox) {
          float* o = dst + ((row * g.ow) + ox) * g.c;
          uint8_t* a = arg + ((row * g.ow) + ox) * g.c;
          for (int64_t i = 0; i < g.ph; ++i) {
            for (int64_t j = 0; j < g.pw; ++j) {
              const float* in = src + ((b * g.h + oy * g.sh + i) * g.w + ox * g.sw + j) * g.c;
              const uint8_t k = static_cast<uint8_t>(i * g.pw + j);
              if (k == 0) {
                std::memcpy(o, in, sizeof(float) * g.c);
                std::memset(a, 0, g.c);
                continue;
              }
              for (int64_t ch = 0; ch < g.c; ++ch) {
                const float v = in[ch];
                if (v > o[ch] || std::isnan(v)) {
                  o[ch] = v;
                  a[ch] = k;
                }
              }
            }
          }
        }
      }
    });
    ctx->save_for_backward({idx});
    ctx->saved_data["shape"] = std::vector<int64_t>{g.n, g.c, g.h, g.w};
    ctx->saved_data["pool"] = pool;
    ctx->saved_data["strides"] = strides;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    torch::Tensor idx = ctx->get_saved_variables()[0];
    auto shape = ctx->saved_data["shape"].toIntVector();
    auto pool = ctx->saved_data["pool"].toIntVector();
    auto strides = ctx->saved_data["strides"].toIntVector();
    torch::Tensor go = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    Geometry g{shape[0], shape[1], shape[2], shape[3], idx.size(1), idx.size(2), pool[0], pool[1], strides[0], strides[1]};
    auto gi = torch::empty({g.n, g.c, g.h, g.w}, go.options().memory_format(at::MemoryFormat::ChannelsLast));
    const float* gsrc = go.data_ptr<float>();
    const uint8_t* arg = idx.data_ptr<uint8_t>();
    float* gdst = gi.data_ptr<float>();
    const bool exact = g.sh == g.ph && g.sw == g.pw && g.oh * g.sh == g.h && g.ow * g.sw == g.w;
    if (!exact) gi.zero_();  // rows/columns outside every window, or gaps between windows
    at::parallel_for(0, g.n * g.oh, 1, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t b = row / g.oh, oy = row % g.oh;
        for (int64_t ox = 0; ox < g.ow; ++ox) {
          const float* gr = gsrc + ((row * g.ow) + ox) * g.c;
          const uint8_t* a = arg + ((row * g.ow) + ox) * g.c;
          for (int64_t i = 0; i < g.ph; ++i) {
            for (int64_t j = 0; j < g.pw; ++j) {
              float* out = gdst + ((b * g.h + oy * g.sh + i) * g.w + ox * g.sw + j) * g.c;
              const uint8_t k = static_cast<uint8_t>(i * g.pw + j);
              for (int64_t ch = 0; ch < g.c; ++ch) out[ch] = a[ch] == k ? gr[ch] : 0.0f;
            }
          }
        }
      }
    });
    return {gi, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor maxPool2d(const torch::Tensor& x, const std::vector<int64_t>& pool, const std::vector<int64_t>& strides) {
  const bool nonOverlapping = strides[0] >= pool[0] && strides[1] >= pool[1] && pool[0] * pool[1] <= 255;
  const bool direct = nonOverlapping && x.dim() == 4 && x.scalar_type() == torch::kFloat32 && x.device().is_cpu() &&
                      x.is_contiguous(at::MemoryFormat::ChannelsLast) && x.size(2) >= pool[0] && x.size(3) >= pool[1];
  if (!direct) return torch::max_pool2d(x, pool, strides);
  return MaxPoolNonOverlapping::apply(x, pool, strides);
}

}  // namespace tl
