#include "max-pool-relu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "precision.h"
#include "simd.h"

namespace tl {

namespace {

using pooling::Shape;
// Element access in float; selections copy the raw element, so the max is exact in both dtypes.
using simd::value;
// libtorch's backward adds the gradient to a zero-filled tensor: 0 + g turns -0 into +0
inline float plusZero(float g) { return g + 0.f; }
inline uint16_t plusZero(uint16_t g) { return g == 0x8000 ? 0 : g; }

using simd::kBlocked;

// Where output row `row` = (n * G + group) * OH + oh starts in the output.
inline int64_t outputRow(const Shape& s, int64_t row) {
  if (!s.channelsLastOut) return row * s.OW() * s.C;
  const int64_t oh = row % s.OH(), group = (row / s.OH()) % s.G, n = row / (s.OH() * s.G);
  return ((n * s.OH() + oh) * s.OW() * s.G + group) * s.C;
}
// The step from one output pixel of a row to the next.
inline int64_t outputStep(const Shape& s) { return s.channelsLastOut ? s.G * s.C : s.C; }

// Output rows [begin, end), each over one group's C channels. Windows scan row-major and take a
// value if `v > max || isnan(v)`: libtorch's CPU rule, so the same element wins ties and NaNs. With
// `arg`, each output also records its window's winner (0..K*K-1) or kBlocked: one byte instead of
// libtorch's int64 index. CC: the channels per group when known at compile time (16: oneDNN's
// blocks, a vector's width), else 0.
template <typename T, int K, bool Arg, int CC>
__attribute__((always_inline)) inline void forwardRows(const T* __restrict__ y, T* __restrict__ out, uint8_t* __restrict__ arg, const Shape& s,
                                                       bool relu, int64_t begin, int64_t end) {
  const int64_t C = CC ? CC : s.C, OH = s.OH(), OW = s.OW(), step = outputStep(s);
  for (int64_t row = begin; row < end; ++row) {
    const T* in = y + ((row / OH * s.H + row % OH * K) * s.W) * C;
    T* o = out + outputRow(s, row);
    uint8_t* a = Arg ? arg + row * OW * C : nullptr;
    for (int64_t ow = 0; ow < OW; ++ow, o += step) {
      const T* p[K * K];
      for (int dh = 0; dh < K; ++dh)
        for (int dw = 0; dw < K; ++dw) p[dh * K + dw] = in + ((dh * s.W) + ow * K + dw) * C;
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
        const bool pass = !relu || simd::reluPasses(m);
        o[c] = pass ? best : T(0);
        if (Arg) a[c] = pass ? at : kBlocked;
      }
      if (Arg) a += C;
    }
  }
}

// dy for the input rows under output rows [begin, end): each window's gradient at its recorded
// winner, 0 elsewhere (and 0 for the whole window where relu blocked it); every element written once.
template <typename T, int K, int CC>
__attribute__((always_inline)) inline void backwardRows(const uint8_t* __restrict__ arg, const T* __restrict__ grad, T* __restrict__ dy,
                                                        const Shape& s, int64_t begin, int64_t end) {
  const int64_t C = CC ? CC : s.C, W = s.W, OH = s.OH(), OW = s.OW(), step = outputStep(s);
  for (int64_t row = begin; row < end; ++row) {
    const int64_t oh = row % OH;
    T* d = dy + (row / OH * s.H + oh * K) * W * C;
    const T* go = grad + outputRow(s, row);
    const uint8_t* a = arg + row * OW * C;
    for (int64_t ow = 0; ow < OW; ++ow, go += step, a += C) {
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
    for (int dh = 0; dh < K; ++dh) std::memset(d + (dh * W + OW * K) * C, 0, (W - OW * K) * C * sizeof(T));
    if (oh == OH - 1) std::memset(d + K * W * C, 0, (s.H - OH * K) * W * C * sizeof(T));
  }
}

// Per dtype, window and channel count (CC 16 or any): a forward and a backward, each cloned per
// instruction set.
#define TL_POOL_KERNELS(T, K, CC, SUFFIX)                                                                                          \
  TL_CLONES void forward##SUFFIX(const T* y, T* out, uint8_t* arg, const Shape& s, bool relu, int64_t begin, int64_t end) {      \
    if (arg)                                                                                                                       \
      forwardRows<T, K, true, CC>(y, out, arg, s, relu, begin, end);                                                               \
    else                                                                                                                           \
      forwardRows<T, K, false, CC>(y, out, nullptr, s, relu, begin, end);                                                          \
  }                                                                                                                                \
  TL_CLONES void backward##SUFFIX(const uint8_t* arg, const T* grad, T* dy, const Shape& s, int64_t begin, int64_t end) {       \
    backwardRows<T, K, CC>(arg, grad, dy, s, begin, end);                                                                          \
  }

TL_POOL_KERNELS(float, 2, 0, F32K2)
TL_POOL_KERNELS(float, 3, 0, F32K3)
TL_POOL_KERNELS(uint16_t, 2, 0, BF16K2)
TL_POOL_KERNELS(uint16_t, 3, 0, BF16K3)
TL_POOL_KERNELS(float, 2, 16, F32K2C16)
#undef TL_POOL_KERNELS

// output rows per task: at least ~16k input elements, so small layers are not split into slivers
int64_t grain(const Shape& s) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, s.k * s.W * s.C)); }

int64_t outputRows(const Shape& s) { return s.N * s.G * s.OH(); }

}  // namespace

namespace pooling {

namespace {

// What the kernels index as raw memory: every tensor dense in the shape's layout (4-D ones
// channels-last, the others contiguous), of the elements the shape says, in one dtype.
void checkLayout(const Shape& s, const torch::Tensor& in, const torch::Tensor& out, const torch::Tensor& arg) {
  TORCH_CHECK(s.k == 2 || s.k == 3, "pooling: a ", s.k, "x", s.k, " window (2 or 3 only)");
  TORCH_CHECK(in.scalar_type() == at::kFloat || in.scalar_type() == at::kBFloat16, "pooling: float32 or bfloat16, not ", in.scalar_type());
  TORCH_CHECK(out.scalar_type() == in.scalar_type(), "pooling: input ", in.scalar_type(), " but output ", out.scalar_type());
  auto dense = [](const torch::Tensor& t) { return t.dim() == 4 ? t.is_contiguous(at::MemoryFormat::ChannelsLast) : t.is_contiguous(); };
  const int64_t pooled = s.N * s.G * s.OH() * s.OW() * s.C;
  TORCH_CHECK(dense(in) && in.numel() == s.N * s.G * s.H * s.W * s.C, "pooling: input ", in.sizes(), " is not a dense ", s.N, "x", s.G, "x", s.H,
              "x", s.W, "x", s.C);
  TORCH_CHECK(dense(out) && out.numel() == pooled, "pooling: output ", out.sizes(), " is not dense with ", pooled, " elements");
  TORCH_CHECK(!arg.defined() || (arg.scalar_type() == at::kByte && arg.is_contiguous() && arg.numel() == pooled), "pooling: winners ",
              arg.sizes(), " are not ", pooled, " contiguous bytes");
}

}  // namespace

void forward(const Shape& s, const torch::Tensor& x, const torch::Tensor& out, const torch::Tensor& arg, bool relu) {
  checkLayout(s, x, out, arg);
  uint8_t* a = arg.defined() ? arg.data_ptr<uint8_t>() : nullptr;
  if (x.scalar_type() == at::kFloat) {
    const float* in = x.data_ptr<float>();
    float* o = out.data_ptr<float>();
    auto run = s.k == 3 ? forwardF32K3 : s.C == 16 ? forwardF32K2C16 : forwardF32K2;
    at::parallel_for(0, outputRows(s), grain(s), [&](int64_t begin, int64_t end) { run(in, o, a, s, relu, begin, end); });
  } else {
    const uint16_t* in = simd::bits(x);
    uint16_t* o = simd::bits(out);
    auto run = s.k == 3 ? forwardBF16K3 : forwardBF16K2;
    at::parallel_for(0, outputRows(s), grain(s), [&](int64_t begin, int64_t end) { run(in, o, a, s, relu, begin, end); });
  }
}

void backward(const Shape& s, const torch::Tensor& arg, const torch::Tensor& grad, const torch::Tensor& dx) {
  checkLayout(s, dx, grad, arg);
  TORCH_CHECK(arg.defined(), "pooling: the backward needs the forward's winners");
  const uint8_t* a = arg.data_ptr<uint8_t>();
  if (grad.scalar_type() == at::kFloat) {
    const float* g = grad.data_ptr<float>();
    float* d = dx.data_ptr<float>();
    auto run = s.k == 3 ? backwardF32K3 : s.C == 16 ? backwardF32K2C16 : backwardF32K2;
    at::parallel_for(0, outputRows(s), grain(s), [&](int64_t begin, int64_t end) { run(a, g, d, s, begin, end); });
  } else {
    const uint16_t* g = simd::bits(grad);
    uint16_t* d = simd::bits(dx);
    auto run = s.k == 3 ? backwardBF16K3 : backwardBF16K2;
    at::parallel_for(0, outputRows(s), grain(s), [&](int64_t begin, int64_t end) { run(a, g, d, s, begin, end); });
  }
}

}  // namespace pooling

namespace {

// An NCHW-logical channels-last tensor as one group of all its channels.
Shape shapeOf(c10::IntArrayRef sizes, int64_t k) { return {sizes[0], 1, sizes[2], sizes[3], sizes[1], k, false}; }

// out = relu(max_pool(y)); `arg` (uint8, out's NHWC layout) receives each window's winner when defined.
torch::Tensor poolForward(const torch::Tensor& y, int64_t k, const torch::Tensor& arg) {
  const Shape s = shapeOf(y.sizes(), k);
  torch::Tensor out = torch::empty({s.N, s.C, s.OH(), s.OW()}, y.options().memory_format(at::MemoryFormat::ChannelsLast));
  pooling::forward(s, y, out, arg, true);
  return out;
}

// Saves each window's winner (a byte per output) rather than the input: the conv output it pools
// can be freed once the forward has passed.
struct MaxPoolReluFunction : public torch::autograd::Function<MaxPoolReluFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& y, int64_t k) {
    const Shape s = shapeOf(y.sizes(), k);
    torch::Tensor arg = torch::empty({s.N, s.OH(), s.OW(), s.C}, y.options().dtype(at::kByte));
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
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    const torch::Tensor grad = grads[0].to(dtype).contiguous(at::MemoryFormat::ChannelsLast);
    torch::Tensor dy = torch::empty(sizes, grad.options().memory_format(at::MemoryFormat::ChannelsLast));
    pooling::backward(shapeOf(sizes, k), arg, grad, dy);
    return {dy, torch::Tensor()};
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
