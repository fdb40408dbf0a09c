#include "max-pool-relu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "precision.h"

namespace tl {

namespace {

struct Geometry {
  int64_t H, W, C, OH, OW;
};

// Element access in float; selections copy the raw element, so the max is exact in both dtypes.
inline float value(float v) { return v; }
inline float value(uint16_t b) { return __builtin_bit_cast(float, static_cast<uint32_t>(b) << 16); }
// libtorch's backward adds the gradient to a zero-filled tensor: 0 + g turns -0 into +0
inline float plusZero(float g) { return g + 0.f; }
inline uint16_t plusZero(uint16_t g) { return g == 0x8000 ? 0 : g; }

// One output row (n, oh) per task. Windows scan row-major and take a value if `v > max || isnan(v)`:
// libtorch's CPU rule, so the same element wins ties and NaNs.
template <typename T, int K>
__attribute__((always_inline)) inline void forwardRows(const T* __restrict__ y, T* __restrict__ out, const Geometry& g, int64_t begin,
                                                       int64_t end) {
  const int64_t C = g.C;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / g.OH, oh = row % g.OH;
    const T* in = y + ((n * g.H + oh * K) * g.W) * C;
    T* o = out + row * g.OW * C;
    for (int64_t ow = 0; ow < g.OW; ++ow, o += C) {
      const T* p[K * K];
      for (int dh = 0; dh < K; ++dh)
        for (int dw = 0; dw < K; ++dw) p[dh * K + dw] = in + ((dh * g.W) + ow * K + dw) * C;
#pragma GCC ivdep
      for (int64_t c = 0; c < C; ++c) {
        T best = p[0][c];
        float m = value(best);
        for (int k = 1; k < K * K; ++k) {
          const T raw = p[k][c];
          const float v = value(raw);
          const bool take = v > m || v != v;
          m = take ? v : m;
          best = take ? raw : best;
        }
        o[c] = (m > 0.f || m != m) ? best : T(0);  // relu; NaN passes, as in clamp_min
      }
    }
  }
}

// dy for the input rows under output row (n, oh): the window's gradient at its argmax where relu
// let it through (its output not <= 0), 0 elsewhere; every element written once.
template <typename T, int K>
__attribute__((always_inline)) inline void backwardRows(const T* __restrict__ y, const T* __restrict__ grad, T* __restrict__ dy, const Geometry& g,
                                                        int64_t begin, int64_t end) {
  const int64_t C = g.C, W = g.W;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / g.OH, oh = row % g.OH;
    const int64_t first = (n * g.H + oh * K) * W * C;
    const T* in = y + first;
    T* d = dy + first;
    const T* go = grad + row * g.OW * C;
    for (int64_t ow = 0; ow < g.OW; ++ow, go += C) {
      const T* p[K * K];
      T* q[K * K];
      for (int dh = 0; dh < K; ++dh)
        for (int dw = 0; dw < K; ++dw) {
          const int64_t at = ((dh * W) + ow * K + dw) * C;
          p[dh * K + dw] = in + at;
          q[dh * K + dw] = d + at;
        }
#pragma GCC ivdep
      for (int64_t c = 0; c < C; ++c) {
        float m = value(p[0][c]);
        int arg = 0;
        for (int k = 1; k < K * K; ++k) {
          const float v = value(p[k][c]);
          const bool take = v > m || v != v;
          m = take ? v : m;
          arg = take ? k : arg;
        }
        const T gv = (m <= 0.f) ? T(0) : plusZero(go[c]);
        for (int k = 0; k < K * K; ++k) q[k][c] = arg == k ? gv : T(0);
      }
    }
    // columns right of the last window, and (after the last output row) rows below it
    for (int dh = 0; dh < K; ++dh) std::memset(d + (dh * W + g.OW * K) * C, 0, (W - g.OW * K) * C * sizeof(T));
    if (oh == g.OH - 1) std::memset(d + K * W * C, 0, (g.H - g.OH * K) * W * C * sizeof(T));
  }
}

// One compiled copy per instruction set: the engine is built without -march.
#define TL_POOL_KERNELS(T, K, SUFFIX)                                                                                           \
  __attribute__((target_clones("arch=x86-64-v4", "avx2", "default"))) void forward##SUFFIX(const T* y, T* out, const Geometry& g,      \
                                                                                      int64_t begin, int64_t end) {             \
    forwardRows<T, K>(y, out, g, begin, end);                                                                                   \
  }                                                                                                                             \
  __attribute__((target_clones("arch=x86-64-v4", "avx2", "default"))) void backward##SUFFIX(const T* y, const T* grad, T* dy,         \
                                                                                       const Geometry& g, int64_t begin,        \
                                                                                       int64_t end) {                           \
    backwardRows<T, K>(y, grad, dy, g, begin, end);                                                                             \
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

torch::Tensor poolForward(const torch::Tensor& y, int64_t k) {
  const Geometry g = geometry(y, k);
  torch::Tensor out = torch::empty({y.size(0), g.C, g.OH, g.OW}, y.options().memory_format(at::MemoryFormat::ChannelsLast));
  const bool f32 = y.scalar_type() == at::kFloat;
  at::parallel_for(0, y.size(0) * g.OH, grain(g, k), [&](int64_t begin, int64_t end) {
    if (f32) {
      auto run = k == 2 ? forwardF32K2 : forwardF32K3;
      run(y.data_ptr<float>(), out.data_ptr<float>(), g, begin, end);
    } else {
      auto run = k == 2 ? forwardBF16K2 : forwardBF16K3;
      run(reinterpret_cast<const uint16_t*>(y.data_ptr<at::BFloat16>()), reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>()), g, begin,
          end);
    }
  });
  return out;
}

torch::Tensor poolBackward(const torch::Tensor& y, const torch::Tensor& gradOut, int64_t k) {
  const Geometry g = geometry(y, k);
  torch::Tensor grad = gradOut.to(y.scalar_type()).contiguous(at::MemoryFormat::ChannelsLast);
  torch::Tensor dy = torch::empty_like(y, at::MemoryFormat::ChannelsLast);
  const bool f32 = y.scalar_type() == at::kFloat;
  at::parallel_for(0, y.size(0) * g.OH, grain(g, k), [&](int64_t begin, int64_t end) {
    if (f32) {
      auto run = k == 2 ? backwardF32K2 : backwardF32K3;
      run(y.data_ptr<float>(), grad.data_ptr<float>(), dy.data_ptr<float>(), g, begin, end);
    } else {
      auto run = k == 2 ? backwardBF16K2 : backwardBF16K3;
      auto raw = [](const torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); };
      run(raw(y), raw(grad), raw(dy), g, begin, end);
    }
  });
  return dy;
}

struct MaxPoolReluFunction : public torch::autograd::Function<MaxPoolReluFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& y, int64_t k) {
    ctx->save_for_backward({y});
    ctx->saved_data["k"] = k;
    return poolForward(y, k);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const torch::Tensor y = ctx->get_saved_variables()[0];
    return {poolBackward(y, grads[0], ctx->saved_data["k"].toInt()), torch::Tensor()};
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
  torch::Tensor out = MaxPoolReluFunction::apply(y, pool.pool[0]);
  return isOutput && out.scalar_type() == at::kBFloat16 ? out.to(at::kFloat) : out;
}

}  // namespace tl
