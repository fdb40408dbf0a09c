#include "dnnl-conv-train.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include "dnnl-conv.h"
#include "precision.h"

#ifdef TL_WITH_DNNL
#include "dnnl-engine.h"

#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>
#endif

namespace tl {
namespace dnnlconv {

#ifdef TL_WITH_DNNL

namespace {

// The three training primitives of one convolution geometry, batch shape and data type: float32
// Winograd, or bfloat16 direct (mixed_bfloat16) with float32 bias, weight gradient and bias
// gradient. oneDNN picks their layouts; tensors are reordered from and to the engine's NHWC / OHWI
// around each call (for bfloat16 the reorder of the float32 weights also rounds them).
struct Primitives {
  std::vector<int64_t> key;
  DT type = DT::f32;  // src, dst and their gradients; the weights in the forward and backward data
  dnnl::convolution_forward forward;
  dnnl::convolution_backward_data backwardData;
  dnnl::convolution_backward_weights backwardWeights;
  memory::desc src, weights, dst;                       // forward
  memory::desc dataDiffDst, dataWeights, dataDiffSrc;   // backward data
  memory::desc weightsSrc, weightsDiffDst, diffWeights, diffBias;  // backward weights
  memory::desc userSrc, userDst, userWeights;           // NHWC activations (`type`), OHWI weights (float32)
  size_t scratchForward = 0, scratchData = 0, scratchWeights = 0;
};

// "bfloat16 forward", "Winograd backward": the pass in oneDNN's error messages
std::string pass(const Primitives& p, const char* direction) {
  return std::string(p.type == DT::bf16 ? "bfloat16 " : "Winograd ") + direction;
}

std::mutex gMutex;
std::list<std::shared_ptr<Primitives>> gPrimitives;  // most recently used first
constexpr size_t kKept = 16;                          // a few layers x a few batch sizes

// key: N, C, H, W, filters, kernel h, w, strides h, w, dilation h, w, pad top, bottom, left, right,
// bias, threads, bfloat16
enum Key { kN, kC, kH, kW, kFilters, kKh, kKw, kSh, kSw, kDh, kDw, kTop, kBottom, kLeft, kRight, kBias, kThreads, kBf16 };

std::shared_ptr<Primitives> create(const std::vector<int64_t>& key) {
  const int64_t N = key[kN], C = key[kC], H = key[kH], W = key[kW], O = key[kFilters];
  const int64_t OH = (H + key[kTop] + key[kBottom] - (key[kKh] - 1) * key[kDh] - 1) / key[kSh] + 1;
  const int64_t OW = (W + key[kLeft] + key[kRight] - (key[kKw] - 1) * key[kDw] - 1) / key[kSw] + 1;
  const memory::dims srcDims = dims({N, C, H, W}), weiDims = dims({O, C, key[kKh], key[kKw]}), dstDims = dims({N, O, OH, OW});
  const memory::dims strides = dims({key[kSh], key[kSw]}), dilates = dims({key[kDh] - 1, key[kDw] - 1});
  const memory::dims padL = dims({key[kTop], key[kLeft]}), padR = dims({key[kBottom], key[kRight]});
  const DT type = key[kBf16] ? DT::bf16 : DT::f32;
  auto any = [](const memory::dims& d, DT t) { return memory::desc(d, t, Tag::any); };
  const memory::desc bias = key[kBias] ? memory::desc(dims({O}), DT::f32, Tag::a) : memory::desc();
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // see dnnl-conv.cc: passed per call
  const auto alg = key[kBf16] ? dnnl::algorithm::convolution_direct : dnnl::algorithm::convolution_winograd;
  // bfloat16: oneDNN 2.6 picks NHWC itself (AMX brgemm forward, AMX jit backward); forcing a
  // blocked layout (nChw16c) gets its AVX-512 kernels, 2-7x slower
  const memory::desc src = any(srcDims, type), wei = any(weiDims, type), dst = any(dstDims, type);
  dnnl::convolution_forward::primitive_desc f(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, src, wei, bias, dst, strides, dilates, padL, padR), attr, cpu());
  dnnl::convolution_backward_data::primitive_desc d(
      dnnl::convolution_backward_data::desc(alg, src, wei, dst, strides, dilates, padL, padR), attr, cpu(), f);
  // the weight and bias gradients in float32 whatever `type`: summed in float32, kept in float32
  dnnl::convolution_backward_weights::primitive_desc w(
      dnnl::convolution_backward_weights::desc(alg, src, any(weiDims, DT::f32), bias, dst, strides, dilates, padL, padR), attr, cpu(), f);
  auto p = std::make_shared<Primitives>();
  p->key = key;
  p->type = type;
  p->forward = dnnl::convolution_forward(f);
  p->backwardData = dnnl::convolution_backward_data(d);
  p->backwardWeights = dnnl::convolution_backward_weights(w);
  p->src = f.src_desc();
  p->weights = f.weights_desc();
  p->dst = f.dst_desc();
  p->dataDiffDst = d.diff_dst_desc();
  p->dataWeights = d.weights_desc();
  p->dataDiffSrc = d.diff_src_desc();
  p->weightsSrc = w.src_desc();
  p->weightsDiffDst = w.diff_dst_desc();
  p->diffWeights = w.diff_weights_desc();
  p->diffBias = w.diff_bias_desc();
  p->userSrc = memory::desc(srcDims, type, Tag::nhwc);
  p->userDst = memory::desc(dstDims, type, Tag::nhwc);
  p->userWeights = memory::desc(weiDims, DT::f32, Tag::ohwi);
  p->scratchForward = f.scratchpad_desc().get_size();
  p->scratchData = d.scratchpad_desc().get_size();
  p->scratchWeights = w.scratchpad_desc().get_size();
  return p;
}

// nullptr when oneDNN has no primitive for this convolution (remembered, so it is asked once).
std::shared_ptr<Primitives> primitivesFor(const std::vector<int64_t>& key) {
  static std::set<std::vector<int64_t>> unsupported;
  std::lock_guard<std::mutex> lock(gMutex);
  for (auto it = gPrimitives.begin(); it != gPrimitives.end(); ++it) {
    if ((*it)->key != key) continue;
    gPrimitives.splice(gPrimitives.begin(), gPrimitives, it);
    return gPrimitives.front();
  }
  if (unsupported.count(key)) return nullptr;
  try {
    gPrimitives.push_front(create(key));
  } catch (const dnnl::error&) {
    unsupported.insert(key);
    return nullptr;
  }
  if (gPrimitives.size() > kKept) gPrimitives.pop_back();
  return gPrimitives.front();
}

// A convolution forward and backward through `Primitives`: the input in its type, the weight and
// bias float32 (the weight's gradient float32 too).
struct TrainingConvFunction : public torch::autograd::Function<TrainingConvFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& weight,
                               const torch::Tensor& bias, const std::shared_ptr<Primitives>& p) {
    const torch::Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
    const torch::Tensor w = weight.contiguous(at::MemoryFormat::ChannelsLast);
    const memory::dims& d = p->userDst.dims();
    torch::Tensor y = torch::empty({d[0], d[1], d[2], d[3]}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
    const torch::Tensor b = bias.defined() ? bias.contiguous() : bias;
    Runner r;
    torch::Tensor blockedX;
    try {
      const memory src = r.convert(r.wrap(p->userSrc, x.data_ptr()), p->src, &blockedX);
      memory wei = r.convert(r.wrap(p->userWeights, w.data_ptr()), p->weights);
      r.into(r.wrap(p->userDst, y.data_ptr()), p->dst, [&](memory dst) {
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}};
        if (b.defined()) args.emplace(DNNL_ARG_BIAS, r.wrap(memory::desc(dims({b.size(0)}), DT::f32, Tag::a), b.data_ptr()));
        r.run(p->forward, args, p->scratchForward);
      });
      r.stream.wait();
    } catch (const dnnl::error& e) {
      rethrow(pass(*p, "forward"), x.sizes(), weight.sizes(), "", e);
    }
    countCall();
    // the weight gradient reads the input in its own layout: keep the forward's blocked copy instead
    // of the NHWC input when that is the layout (no more memory held, one reorder less per step)
    const bool keepBlocked = blockedX.defined() && p->weightsSrc == p->src;
    ctx->saved_data["x"] = keepBlocked ? blockedX : x;
    ctx->saved_data["blocked"] = keepBlocked;
    ctx->saved_data["w"] = w;
    ctx->saved_data["key"] = p->key;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const torch::Tensor x = ctx->saved_data["x"].toTensor();  // NHWC, or already in weightsSrc's layout
    const bool blocked = ctx->saved_data["blocked"].toBool();
    const torch::Tensor w = ctx->saved_data["w"].toTensor();
    const std::vector<int64_t> key = ctx->saved_data["key"].toIntVector();
    const std::shared_ptr<Primitives> p = primitivesFor(key);  // the forward's, unless evicted since
    if (!p) throw std::logic_error("oneDNN training primitives for " + shapeString(key) + " vanished between forward and backward");
    const torch::Tensor g = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    torch::Tensor dx, dw = torch::empty_like(w, at::MemoryFormat::ChannelsLast), db;
    Runner r;
    try {
      memory userDiffDst = r.wrap(p->userDst, g.data_ptr());
      std::optional<memory> dataDiffDst;  // the output gradient in backward data's layout, reused when the same
      if (ctx->needs_input_grad(0)) {
        dx = torch::empty({key[kN], key[kC], key[kH], key[kW]}, g.options().memory_format(at::MemoryFormat::ChannelsLast));
        dataDiffDst = r.convert(userDiffDst, p->dataDiffDst);
        memory diffDst = *dataDiffDst;
        memory wei = r.convert(r.wrap(p->userWeights, w.data_ptr()), p->dataWeights);
        r.into(r.wrap(p->userSrc, dx.data_ptr()), p->dataDiffSrc, [&](memory diffSrc) {
          r.run(p->backwardData, {{DNNL_ARG_DIFF_DST, diffDst}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DIFF_SRC, diffSrc}}, p->scratchData);
        });
      }
      memory src = blocked ? r.wrap(p->weightsSrc, x.data_ptr()) : r.convert(r.wrap(p->userSrc, x.data_ptr()), p->weightsSrc);
      memory diffDst = dataDiffDst && p->dataDiffDst == p->weightsDiffDst ? *dataDiffDst : r.convert(userDiffDst, p->weightsDiffDst);
      std::optional<memory> diffBias;
      if (key[kBias]) {
        db = torch::empty({w.size(0)}, w.options());
        diffBias = r.wrap(memory::desc(dims({w.size(0)}), DT::f32, Tag::a), db.data_ptr());
        if (!(diffBias->get_desc() == p->diffBias)) throw std::logic_error("oneDNN wants the bias gradient in a layout of its own");
      }
      r.into(r.wrap(p->userWeights, dw.data_ptr()), p->diffWeights, [&](memory diffWeights) {
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diffDst}, {DNNL_ARG_DIFF_WEIGHTS, diffWeights}};
        if (diffBias) args.emplace(DNNL_ARG_DIFF_BIAS, *diffBias);
        r.run(p->backwardWeights, args, p->scratchWeights);
      });
      r.stream.wait();
    } catch (const dnnl::error& e) {
      rethrow(pass(*p, "backward"), {key[kN], key[kC], key[kH], key[kW]}, w.sizes(), "", e);
    }
    return {dx, dw, db, torch::Tensor()};
  }

};

bool cpuHasBf16Once() {
  static const bool has = [] {
    std::string reason;
    return cpuHasBf16(reason);
  }();
  return has;
}

}  // namespace

torch::Tensor trainingForward(const Layer& L, const torch::Tensor& x) {
  if (!enabled() || L.kind != Kind::Conv2D || L.depthwise || L.groups != 1) return {};
  if (x.dim() != 4 || !x.device().is_cpu() || x.size(0) == 0 || x.size(1) < 16 || L.filters < 16) return {};
  if (L.params[0].scalar_type() != at::kFloat || !needsGradient(L, x)) return {};
  bool bf16;
  if (L.mixedBf16) {
    // what autocast would compute in; without native bfloat16 libtorch's emulation is left to it
    if (!at::autocast::is_cpu_enabled() || !cpuHasBf16Once() || (x.scalar_type() != at::kFloat && x.scalar_type() != at::kBFloat16)) return {};
    bf16 = true;
  } else {
    if (algorithm() == Algorithm::Direct || x.scalar_type() != at::kFloat) return {};
    if (L.kernel[0] != 3 || L.kernel[1] != 3 || L.strides[0] != 1 || L.strides[1] != 1 || L.dilation[0] != 1 || L.dilation[1] != 1) return {};
    bf16 = false;
  }
  const std::vector<int64_t> key{x.size(0),     x.size(1),     x.size(2),   x.size(3),   L.filters,
                                 L.kernel[0],   L.kernel[1],   L.strides[0], L.strides[1], L.dilation[0],
                                 L.dilation[1], L.pad[0],      L.pad[1],    L.pad[2],    L.pad[3],
                                 L.useBias,     at::get_num_threads(), bf16};
  const std::shared_ptr<Primitives> p = primitivesFor(key);
  if (!p) return {};
  // a float32 input (the model's first layer) is rounded outside the function, so its gradient
  // flows back through the cast in float32
  const torch::Tensor input = bf16 ? x.to(at::kBFloat16) : x;
  return TrainingConvFunction::apply(input, L.params[0], L.useBias ? L.params[1] : torch::Tensor(), p);
}

#else  // !TL_WITH_DNNL

torch::Tensor trainingForward(const Layer&, const torch::Tensor&) { return {}; }

#endif

}  // namespace dnnlconv
}  // namespace tl
