#include "blocked-stretch.h"

#include <atomic>
#include <cstdint>

#include "dnnl-conv-train.h"
#include "dnnl-conv.h"
#include "layer-timing.h"
#include "max-pool-relu.h"

namespace tl {

namespace {

std::atomic<uint64_t> gStretches{0};  // stretches run (info().blockedStretches: tests check a case took this path)
std::atomic<bool> gEnabled{true};      // setBlockedStretch (tests and bench: off runs the layers one by one)

// A stretch runs in inference (no layer needs a gradient: oneDNN's inference primitives) or in
// training (every convolution on the Winograd training primitives of dnnl-conv-train.cc).
// A convolution a stretch can carry: plain (stride 1, ...), its activation relu or none.
bool stretchConv(const Layer& L) { return plainConv(L) && (L.activation == Act::Relu || L.activation == Act::Linear); }

bool takesConv(const Layer& L, int64_t channels, const torch::Tensor& x, bool train) {
  if (!stretchConv(L)) return false;
  return train ? dnnlconv::trainingBlockedApplies(L, channels) : dnnlconv::blockedApplies(L, channels) && !needsGradient(L, x);
}

bool takesPool(const Layer& L, int64_t height, int64_t width) { return halvingPool(L) && !L.mixedBf16 && height >= 2 && width >= 2; }

// Whether layers[k] (before `to`) joins a stretch on an input of `channels` x `height` x `width`.
// A relu conv before a pool the stretch does not take (3x3, padded...) does not join either: the
// pair path (maxPoolRelu) keeps its relu after the pool.
bool joins(const std::vector<Layer>& layers, size_t k, size_t to, int64_t channels, int64_t height, int64_t width, const torch::Tensor& x,
           bool train) {
  if (k >= to) return false;
  const Layer& L = layers[k];
  if (L.kind == Kind::MaxPool) return takesPool(L, height, width);
  if (L.kind != Kind::Conv2D || !takesConv(L, channels, x, train)) return false;
  const auto [OH, OW] = plainConvOutput(L, height, width);
  return !(L.activation == Act::Relu && k + 1 < to && layers[k + 1].kind == Kind::MaxPool && !takesPool(layers[k + 1], OH, OW));
}

// A 2x2 pool on the blocked input [N][CB][H][W][16]: max-pool-relu.cc's kernels over CB groups of 16
// channels, the output blocked, or channels-last where the stretch ends.
pooling::Shape poolShape(c10::IntArrayRef sizes, bool blockedOut) { return {sizes[0], sizes[1], sizes[2], sizes[3], 16, 2, !blockedOut}; }

torch::Tensor pool(const torch::Tensor& x, bool relu, bool blockedOut, const torch::Tensor& arg = {}) {
  const pooling::Shape s = poolShape(x.sizes(), blockedOut);
  torch::Tensor y = blockedOut ? torch::empty({s.N, s.G, s.OH(), s.OW(), s.C}, x.options())
                               : torch::empty({s.N, s.G * s.C, s.OH(), s.OW()}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  pooling::forward(s, x, y, arg, relu);
  return y;
}

// The pool (and the relu of the conv before it) in training: saves a winner byte per output, as
// max-pool-relu.cc does, not the input.
struct BlockedPoolFunction : public torch::autograd::Function<BlockedPoolFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, bool relu, bool blockedOut) {
    const pooling::Shape s = poolShape(x.sizes(), blockedOut);
    torch::Tensor arg = torch::empty({s.N, s.G, s.OH(), s.OW(), s.C}, x.options().dtype(at::kByte));
    torch::Tensor y = pool(x.contiguous(), relu, blockedOut, arg);
    ctx->save_for_backward({arg});
    ctx->saved_data["sizes"] = x.sizes().vec();
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const torch::Tensor arg = ctx->get_saved_variables()[0];
    const std::vector<int64_t> sizes = ctx->saved_data["sizes"].toIntVector();
    const bool blockedOut = grads[0].dim() == 5;  // the output's layout
    const torch::Tensor grad = blockedOut ? grads[0].contiguous() : grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    torch::Tensor dx = torch::empty(sizes, grad.options());
    pooling::backward(poolShape(sizes, blockedOut), arg, grad, dx);
    return {dx, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool blockedStretchApplies(const std::vector<Layer>& layers, size_t i, size_t to, const torch::Tensor& x) {
  if (!gEnabled.load() || !kernelInput4d(x) || x.scalar_type() != at::kFloat || x.size(0) == 0) return false;
  const Layer& first = layers[i];
  if (first.kind != Kind::Conv2D) return false;
  const bool train = needsGradient(first, x);
  const bool winograd = takesConv(first, x.size(1), x, train);
  // in inference any convolution that can write its output blocked may start one (an image's
  // first too), but only into a Winograd one: into a pool, the model's fused first block
  // (few-channel-block.cc) never writes the conv output
  const bool writesBlocked =
      !train && stretchConv(first) && dnnlconv::blockedOutputApplies(first) && i + 1 < to && layers[i + 1].kind == Kind::Conv2D;
  if (!winograd && !writesBlocked) return false;
  const auto [OH, OW] = plainConvOutput(first, x.size(2), x.size(3));
  return joins(layers, i + 1, to, first.filters, OH, OW, x, train);
}

torch::Tensor blockedStretch(const std::vector<Layer>& layers, size_t& i, size_t to, const torch::Tensor& x) {
  torch::Tensor y = x;  // 4-D channels-last, or 5-D blocked
  const size_t first = i;
  int64_t channels = x.size(1), height = x.size(2), width = x.size(3);
  bool pendingRelu = false;  // the last conv's relu, left for the pool after it
  const bool train = needsGradient(layers[i], x);
  auto continues = [&](size_t k, int64_t c, int64_t h, int64_t w) { return joins(layers, k, to, c, h, w, x, train); };
  bool more = true;  // layers[k] joins: the first by blockedStretchApplies, each next as the last one's output was made
  for (size_t k = i; more; ++k) {
    const Layer& L = layers[k];
    const double start = timing::enabled() ? timing::now() : 0;
    if (L.kind == Kind::Conv2D) {
      const auto [OH, OW] = plainConvOutput(L, height, width);
      const bool poolNext = k + 1 < to && layers[k + 1].kind == Kind::MaxPool && takesPool(layers[k + 1], OH, OW);
      const bool relu = L.activation == Act::Relu && !poolNext;
      const bool blockedOut = continues(k + 1, L.filters, OH, OW);
      torch::Tensor out = train ? dnnlconv::trainingForwardBlocked(L, y, blockedOut) : dnnlconv::forwardBlocked(L, y, relu, blockedOut);
      if (!out.defined()) {  // no oneDNN primitive after all: the layers from here run one by one
        if (k == first) return {};
        break;
      }
      if (train && relu) out.relu_();  // as layers.cc's activate(): the conv saves its input, not its output
      y = out;
      more = blockedOut;
      pendingRelu = L.activation == Act::Relu && poolNext;
      channels = L.filters;
      height = OH;
      width = OW;
    } else {
      const bool blockedOut = continues(k + 1, channels, height / 2, width / 2);
      y = train ? BlockedPoolFunction::apply(y, pendingRelu, blockedOut) : pool(y, pendingRelu, blockedOut);
      more = blockedOut;
      pendingRelu = false;
      height /= 2;
      width /= 2;
    }
    if (timing::enabled()) {
      timing::forward(L.name, start);
      if (train) timing::markOutput(y, L.name);  // its backward timed too
    }
    i = k;
  }
  if (i > first) gStretches.fetch_add(1);  // at least two layers ran blocked
  if (y.dim() == 4) return y;
  // stopped early: back to channels-last (through ops autograd knows, for training)
  const int64_t N = y.size(0), H = y.size(2), W = y.size(3), C = y.size(1) * 16;
  return y.permute({0, 2, 3, 1, 4}).reshape({N, H, W, C}).permute({0, 3, 1, 2});
}

void addBlockedStretchInfo(Napi::Object& out) { out.Set("blockedStretches", static_cast<double>(gStretches.load())); }

namespace {
Napi::Value SetBlockedStretch(const Napi::CallbackInfo& info) {
  if (!info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "setBlockedStretch takes true or false");
  return Napi::Boolean::New(info.Env(), gEnabled.exchange(info[0].As<Napi::Boolean>().Value()));
}
}  // namespace

void addBlockedStretchExports(Napi::Env env, Napi::Object exports) { exports.Set("setBlockedStretch", Napi::Function::New(env, SetBlockedStretch)); }

}  // namespace tl
