#include "max-pool-relu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "precision.h"
#include "simd.h"

namespace tl {

namespace {

struct Geometry {
  int64_t H, W, C, OH, OW;
};

// Element access in float; selections copy the raw element, so the max is exact in both dtypes.
using simd::value;
// libtorch's backward adds the gradient to a zero-filled tensor: 0 + g turns -0 into +0
inline float plusZero(float g) { return g + 0.f; }
inline uint16_t plusZero(uint16_t g) { return g == 0x8000 ? 0 : g; }

using simd::kBlocked;

// One output row (n, oh) per task. Windows scan row-major and take a value if `v > max || isnan(v)`:
// libtorch's CPU rule, so the same element wins ties and NaNs. With `arg`, each output also records
// its window's winner (0..K*K-1) or kBlocked: one byte instead of libtorch's int64 index.
template <typename T, int K, bool Arg>
__attribute__((always_inline)) inline void forwardRows(const T* __restrict__ y, T* __restrict__ out, uint8_t* __restrict__ arg,
                                                       const Geometry& g, int64_t begin, int64_t end) {
  const int64_t C = g.C;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / g.OH, oh = row % g.OH;
    const T* in = y + ((n * g.H + oh * K) * g.W) * C;
    T* o = out + row * g.OW * C;
    uint8_t* a = Arg ? arg + row * g.OW * C : nullptr;
    for (int64_t ow = 0; ow < g.OW; ++ow, o += C) {
      const T* p[K * K];
      for (int dh = 0; dh < K; ++dh)
        for (int dw = 0; dw < K; ++dw) p[dh * K + dw] = in + ((dh * g.W) + ow * K + dw) * C;
#pragma GCC ivdep
      for (int64_t c = 0; c < C; ++c) {
        T best = p[0][c];
        float m = value(best);
        uint8_t at = 0;
        for (int k = 1; k < K * K; ++k) {
          const T raw = p[k][c];
          const float v = value(raw);
          const bool take = simd::wins(v, m);
          m = take ? v : m;
          best = take ? raw : best;
          at = take ? static_cast<uint8_t>(k) : at;
        }
        const bool pass = simd::reluPasses(m);
        o[c] = pass ? best : T(0);
        if (Arg) a[c] = pass ? at : kBlocked;
      }
      if (Arg) a += C;
    }
  }
}

// dy for the input rows under output row (n, oh): each window's gradient at its recorded winner, 0
// elsewhere (and 0 for the whole window where relu blocked it); every element written once.
template <typename T, int K>
__attribute__((always_inline)) inline void backwardRows(const uint8_t* __restrict__ arg, const T* __restrict__ grad, T* __restrict__ dy,
                                                        const Geometry& g, int64_t begin, int64_t end) {
  const int64_t C = g.C, W = g.W;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / g.OH, oh = row % g.OH;
    T* d = dy + (n * g.H + oh * K) * W * C;
    const T* go = grad + row * g.OW * C;
    const uint8_t* a = arg + row * g.OW * C;
    for (int64_t ow = 0; ow < g.OW; ++ow, go += C, a += C) {
      T* q[K * K];
      for (int dh = 0; dh < K; ++dh)
        for (int dw = 0; dw < K; ++dw) q[dh * K + dw] = d + ((dh * W) + ow * K + dw) * C;
#pragma GCC ivdep
      for (int64_t c = 0; c < C; ++c) {
        const T gv = plusZero(go[c]);
        for (int k = 0; k < K * K; ++k) q[k][c] = a[c] == k ? gv : T(0);
      }
    }
    // columns right of the last window, and (after the last output row) rows below it
    for (int dh = 0; dh < K; ++dh) std::memset(d + (dh * W + g.OW * K) * C, 0, (W - g.OW * K) * C * sizeof(T));
    if (oh == g.OH - 1) std::memset(d + K * W * C, 0, (g.H - g.OH * K) * W * C * sizeof(T));
  }
}

#define TL_POOL_KERNELS(T, K, SUFFIX)                                                                                        \
  TL_CLONES void forward##SUFFIX(const T* y, T* out, uint8_t* arg, const Geometry& g, int64_t begin, int64_t end) {         \
    if (arg)                                                                                                                 \
      forwardRows<T, K, true>(y, out, arg, g, begin, end);                                                                   \
    else                                                                                                                     \
      forwardRows<T, K, false>(y, out, nullptr, g, begin, end);                                                              \
  }                                                                                                                          \
  TL_CLONES void backward##SUFFIX(const uint8_t* arg, const T* grad, T* dy, const Geometry& g, int64_t begin, int64_t end) { \
    backwardRows<T, K>(arg, grad, dy, g, begin, end);                                                                        \
  }

TL_POOL_KERNELS(float, 2, F32K2)
TL_POOL_KERNELS(float, 3, F32K3)
TL_POOL_KERNELS(uint16_t, 2, BF16K2)
TL_POOL_KERNELS(uint16_t, 3, BF16K3)
#undef TL_POOL_KERNELS

Geometry geometry(const torch::Tensor& y, int64_t k) {
  return {y.size(2), y.size(3), y.size(1), y.size(2) / k, y.size(3) / k};
}

// rows of work per task: at least ~16k elements, so small layers are not split into slivers
int64_t grain(const Geometry& g, int64_t k) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, k * g.W * g.C)); }

// out = relu(max_pool(y)); `arg` (uint8, out's NHWC layout) receives each window's winner when defined.
torch::Tensor poolForward(const torch::Tensor& y, int64_t k, const torch::Tensor& arg) {
  const Geometry g = geometry(y, k);
  torch::Tensor out = torch::empty({y.size(0), g.C, g.OH, g.OW}, y.options().memory_format(at::MemoryFormat::ChannelsLast));
  uint8_t* a = arg.defined() ? arg.data_ptr<uint8_t>() : nullptr;
  const bool f32 = y.scalar_type() == at::kFloat;
  at::parallel_for(0, y.size(0) * g.OH, grain(g, k), [&](int64_t begin, int64_t end) {
    if (f32) {
      auto run = k == 2 ? forwardF32K2 : forwardF32K3;
      run(y.data_ptr<float>(), out.data_ptr<float>(), a, g, begin, end);
    } else {
      auto run = k == 2 ? forwardBF16K2 : forwardBF16K3;
      run(simd::bits(y), simd::bits(out), a, g, begin, end);
    }
  });
  return out;
}

torch::Tensor poolBackward(const torch::Tensor& arg, const torch::Tensor& gradOut, const Geometry& g, int64_t k, at::IntArrayRef inputSizes,
                           at::ScalarType dtype) {
  torch::Tensor grad = gradOut.to(dtype).contiguous(at::MemoryFormat::ChannelsLast);
  torch::Tensor dy = torch::empty(inputSizes, grad.options().memory_format(at::MemoryFormat::ChannelsLast));
  const bool f32 = dtype == at::kFloat;
  at::parallel_for(0, inputSizes[0] * g.OH, grain(g, k), [&](int64_t begin, int64_t end) {
    if (f32) {
      auto run = k == 2 ? backwardF32K2 : backwardF32K3;
      run(arg.data_ptr<uint8_t>(), grad.data_ptr<float>(), dy.data_ptr<float>(), g, begin, end);
    } else {
      auto run = k == 2 ? backwardBF16K2 : backwardBF16K3;
      run(arg.data_ptr<uint8_t>(), simd::bits(grad), simd::bits(dy), g, begin, end);
    }
  });
  return dy;
}

// Saves each window's winner (a byte per output) rather than the input: the conv output it pools
// can be freed once the forward has passed.
struct MaxPoolReluFunction : public torch::autograd::Function<MaxPoolReluFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& y, int64_t k) {
    const Geometry g = geometry(y, k);
    torch::Tensor arg = torch::empty({y.size(0), g.OH, g.OW, g.C}, y.options().dtype(at::kByte).memory_format(at::MemoryFormat::Contiguous));
    torch::Tensor out = poolForward(y, k, arg);
    ctx->save_for_backward({arg});
    ctx->saved_data["k"] = k;
    ctx->saved_data["sizes"] = y.sizes().vec();
    ctx->saved_data["dtype"] = static_cast<int64_t>(y.scalar_type());
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const torch::Tensor arg = ctx->get_saved_variables()[0];
    const int64_t k = ctx->saved_data["k"].toInt();
    const std::vector<int64_t> sizes = ctx->saved_data["sizes"].toIntVector();
    const Geometry g{sizes[2], sizes[3], sizes[1], sizes[2] / k, sizes[3] / k};
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    return {poolBackward(arg, grads[0], g, k, sizes, dtype), torch::Tensor()};
  }
};

// NHWC-dense (strides of size-1 axes do not matter)
bool channelsLastDense(const torch::Tensor& y) {
  const int64_t C = y.size(1), H = y.size(2), W = y.size(3);
  const int64_t expected[4] = {H * W * C, 1, W * C, C};
  for (int d = 0; d < 4; ++d) {
    if (y.size(d) > 1 && y.stride(d) != expected[d]) return false;
  }
  return true;
}

// Square 2x2 or 3x3 windows with strides equal to the window, no padding (Keras 'valid'), float
// or bfloat16 channels-last CPU tensors with at least one window.
bool fusable(const Layer& pool, const torch::Tensor& y) {
  const int64_t k = pool.pool[0];
  if (pool.pool[1] != k || (k != 2 && k != 3) || pool.strides[0] != k || pool.strides[1] != k) return false;
  for (int64_t p : pool.pad) {
    if (p != 0) return false;
  }
  if (y.dim() != 4 || !y.device().is_cpu() || (y.scalar_type() != at::kFloat && y.scalar_type() != at::kBFloat16)) return false;
  return y.size(2) >= k && y.size(3) >= k && y.numel() > 0 && channelsLastDense(y);
}

}  // namespace

torch::Tensor maxPoolRelu(const Layer& pool, const torch::Tensor& x, bool training, bool isOutput) {
  // the pooling layer's dtype policy, as forwardWithPolicy applies it: a float32 layer casts bfloat16 up
  const torch::Tensor y = !pool.mixedBf16 && x.scalar_type() == at::kBFloat16 ? x.to(at::kFloat) : x;
  if (!fusable(pool, y)) return forwardWithPolicy(pool, x, training, false, isOutput).relu_();
  // without a gradient to compute, no winners to record
  torch::Tensor out = y.requires_grad() && torch::GradMode::is_enabled() ? MaxPoolReluFunction::apply(y, pool.pool[0])
                                                                         : poolForward(y, pool.pool[0], torch::Tensor());
  return isOutput && out.scalar_type() == at::kBFloat16 ? out.to(at::kFloat) : out;
}

}  // namespace tl
