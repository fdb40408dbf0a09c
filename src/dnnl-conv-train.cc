#include "dnnl-conv-train.h"

#include <ATen/Parallel.h>

#include "dnnl-conv.h"

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

// The three Winograd primitives of one convolution geometry and batch shape. oneDNN picks their
// blocked layouts; tensors are reordered from and to the engine's NHWC / OHWI around each call.
struct Primitives {
  std::vector<int64_t> key;
  dnnl::convolution_forward forward;
  dnnl::convolution_backward_data backwardData;
  dnnl::convolution_backward_weights backwardWeights;
  memory::desc src, weights, dst;                       // forward
  memory::desc dataDiffDst, dataWeights, dataDiffSrc;   // backward data
  memory::desc weightsSrc, weightsDiffDst, diffWeights, diffBias;  // backward weights
  memory::desc userSrc, userDst, userWeights;           // NHWC activations, OHWI weights (float32)
  size_t scratchForward = 0, scratchData = 0, scratchWeights = 0;
};

std::mutex gMutex;
std::list<std::shared_ptr<Primitives>> gPrimitives;  // most recently used first
constexpr size_t kKept = 16;                          // a few layers x a few batch sizes

// key: N, C, H, W, filters, pad top, bottom, left, right, bias, threads
std::shared_ptr<Primitives> create(const std::vector<int64_t>& key) {
  const int64_t N = key[0], C = key[1], H = key[2], W = key[3], O = key[4];
  const int64_t OH = H + key[5] + key[6] - 2, OW = W + key[7] + key[8] - 2;
  const memory::dims srcDims = dims({N, C, H, W}), weiDims = dims({O, C, 3, 3}), dstDims = dims({N, O, OH, OW});
  const memory::dims strides = dims({1, 1}), padL = dims({key[5], key[7]}), padR = dims({key[6], key[8]});
  auto any = [](const memory::dims& d) { return memory::desc(d, DT::f32, Tag::any); };
  const memory::desc bias = key[9] ? memory::desc(dims({O}), DT::f32, Tag::a) : memory::desc();
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // see dnnl-conv.cc: passed per call
  const auto wino = dnnl::algorithm::convolution_winograd;
  dnnl::convolution_forward::primitive_desc f(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, wino, any(srcDims), any(weiDims), bias, any(dstDims), strides, padL, padR),
      attr, cpu());
  dnnl::convolution_backward_data::primitive_desc d(
      dnnl::convolution_backward_data::desc(wino, any(srcDims), any(weiDims), any(dstDims), strides, padL, padR), attr, cpu(), f);
  dnnl::convolution_backward_weights::primitive_desc w(
      dnnl::convolution_backward_weights::desc(wino, any(srcDims), any(weiDims), bias, any(dstDims), strides, padL, padR), attr, cpu(), f);
  auto p = std::make_shared<Primitives>();
  p->key = key;
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
  p->userSrc = memory::desc(srcDims, DT::f32, Tag::nhwc);
  p->userDst = memory::desc(dstDims, DT::f32, Tag::nhwc);
  p->userWeights = memory::desc(weiDims, DT::f32, Tag::ohwi);
  p->scratchForward = f.scratchpad_desc().get_size();
  p->scratchData = d.scratchpad_desc().get_size();
  p->scratchWeights = w.scratchpad_desc().get_size();
  return p;
}

// nullptr when oneDNN has no Winograd for this convolution (remembered, so it is asked once).
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

// An activation as oneDNN memory of `user`'s dims, in its own layout (dnnl-engine.h).
memory::desc layoutOf(const torch::Tensor& t, const memory::desc& user) { return memory::desc(user.dims(), DT::f32, tagOf(t)); }

// Input and output channels-last (4-D) or blocked (5-D): the gradients come and go in the same
// layouts as the tensors they belong to.
struct WinogradConvFunction : public torch::autograd::Function<WinogradConvFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& weight,
                               const torch::Tensor& biasInput, const std::shared_ptr<Primitives>& p, bool blockedOut) {
    const torch::Tensor bias = biasOrNone(biasInput);
    const torch::Tensor x = dense(input);
    const torch::Tensor w = weight.contiguous(at::MemoryFormat::ChannelsLast);
    torch::Tensor y = emptyActivation(p->userDst.dims(), x.options(), blockedOut);
    const torch::Tensor b = bias.defined() ? bias.contiguous() : bias;
    Runner r;
    torch::Tensor blockedX;
    try {
      const memory src = r.convert(r.wrap(layoutOf(x, p->userSrc), x.data_ptr()), p->src, &blockedX);
      memory wei = r.convert(r.wrap(p->userWeights, w.data_ptr()), p->weights);
      r.into(r.wrap(layoutOf(y, p->userDst), y.data_ptr()), p->dst, [&](memory dst) {
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}};
        if (b.defined()) args.emplace(DNNL_ARG_BIAS, r.wrap(memory::desc(dims({b.size(0)}), DT::f32, Tag::a), b.data_ptr()));
        r.run(p->forward, args, p->scratchForward);
      });
      r.stream.wait();
    } catch (const dnnl::error& e) {
      rethrow("Winograd forward", x.sizes(), weight.sizes(), "", e);
    }
    countCall();
    // the weight gradient reads the input in its own layout: keep the forward's blocked copy instead
    // of the NHWC input when that is the layout (no more memory held, one reorder less per step)
    const bool keepBlocked = blockedX.defined() && p->weightsSrc == p->src;
    ctx->saved_data["x"] = keepBlocked ? blockedX : x;
    ctx->saved_data["blocked"] = keepBlocked;
    ctx->saved_data["inputBlocked"] = x.dim() == 5;
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
    if (!p) throw std::logic_error("oneDNN Winograd primitives for " + shapeString(key) + " vanished between forward and backward");
    const bool inputBlocked = ctx->saved_data["inputBlocked"].toBool();
    const torch::Tensor g = dense(grads[0]);
    torch::Tensor dx, dw = torch::empty_like(w, at::MemoryFormat::ChannelsLast), db;
    Runner r;
    try {
      memory userDiffDst = r.wrap(layoutOf(g, p->userDst), g.data_ptr());
      std::optional<memory> dataDiffDst;  // the output gradient in backward data's layout, reused when the same
      if (ctx->needs_input_grad(0)) {
        dx = emptyActivation(p->userSrc.dims(), g.options(), inputBlocked);
        dataDiffDst = r.convert(userDiffDst, p->dataDiffDst);
        memory diffDst = *dataDiffDst;
        memory wei = r.convert(r.wrap(p->userWeights, w.data_ptr()), p->dataWeights);
        r.into(r.wrap(layoutOf(dx, p->userSrc), dx.data_ptr()), p->dataDiffSrc, [&](memory diffSrc) {
          r.run(p->backwardData, {{DNNL_ARG_DIFF_DST, diffDst}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DIFF_SRC, diffSrc}}, p->scratchData);
        });
      }
      memory src = blocked ? r.wrap(p->weightsSrc, x.data_ptr()) : r.convert(r.wrap(layoutOf(x, p->userSrc), x.data_ptr()), p->weightsSrc);
      memory diffDst = dataDiffDst && p->dataDiffDst == p->weightsDiffDst ? *dataDiffDst : r.convert(userDiffDst, p->weightsDiffDst);
      std::optional<memory> diffBias;
      if (key[9]) {
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
      rethrow("Winograd backward", {key[0], key[1], key[2], key[3]}, w.sizes(), "", e);
    }
    return {dx, dw, db, torch::Tensor(), torch::Tensor()};
  }

};

bool trainingApplies(const Layer& L, int64_t channels) {
  if (!enabled() || algorithm() == Algorithm::Direct || L.kind != Kind::Conv2D || L.depthwise || L.groups != 1 || L.mixedBf16) return false;
  if (L.kernel[0] != 3 || L.kernel[1] != 3 || L.strides[0] != 1 || L.strides[1] != 1 || L.dilation[0] != 1 || L.dilation[1] != 1) return false;
  return channels >= 16 && L.filters >= 16 && L.params[0].scalar_type() == at::kFloat;
}

}  // namespace

torch::Tensor trainingForwardBlocked(const Layer& L, const torch::Tensor& x, bool blockedOut) {
  if (!x.device().is_cpu() || x.scalar_type() != at::kFloat || x.size(0) == 0) return {};
  const int64_t C = channelsOf(x);
  const bool applies = x.dim() == 5 || blockedOut ? trainingBlockedApplies(L, C) : trainingApplies(L, C);
  if (!applies || !needsGradient(L, x)) return {};
  const std::vector<int64_t> key{x.size(0), C, x.size(2), x.size(3), L.filters, L.pad[0], L.pad[1], L.pad[2], L.pad[3],
                                 L.useBias, at::get_num_threads()};
  const std::shared_ptr<Primitives> p = primitivesFor(key);
  if (!p) return {};
  return WinogradConvFunction::apply(x, L.params[0], functionBias(L), p, blockedOut);
}

bool trainingBlockedApplies(const Layer& L, int64_t channels) { return trainingApplies(L, channels) && channels % 16 == 0 && L.filters % 16 == 0; }

torch::Tensor trainingForward(const Layer& L, const torch::Tensor& x) { return x.dim() == 4 ? trainingForwardBlocked(L, x, false) : torch::Tensor(); }

#else  // !TL_WITH_DNNL

torch::Tensor trainingForward(const Layer&, const torch::Tensor&) { return {}; }
torch::Tensor trainingForwardBlocked(const Layer&, const torch::Tensor&, bool) { return {}; }
bool trainingBlockedApplies(const Layer&, int64_t) { return false; }

#endif

}  // namespace dnnlconv
}  // namespace tl
