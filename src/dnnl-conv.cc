#include "dnnl-conv.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <list>
#include <optional>
#include <string>
#include <mutex>
#include <set>
#include <stdexcept>
#include <unordered_map>

#ifdef TL_WITH_DNNL
#include "dnnl-engine.h"
#include "parameter-cache.h"
#endif

namespace tl {
namespace dnnlconv {

namespace {

std::atomic<bool> gEnabled{true};
std::atomic<Algorithm> gAlgorithm{Algorithm::Auto};
std::atomic<uint64_t> gCalls{0};  // forward convolutions run through oneDNN (info().dnnlCalls: tests, diagnostics)
constexpr size_t kDefaultBlockedCallBytes = size_t{256} << 20;  // setWinogradCallBytes' default (forward below)

const char* algorithmName(Algorithm a) { return a == Algorithm::Direct ? "direct" : a == Algorithm::Winograd ? "winograd" : "auto"; }

}  // namespace

Algorithm algorithm() { return gAlgorithm.load(); }
bool enabled() { return gEnabled.load(); }
void countCall() { gCalls.fetch_add(1); }

#ifdef TL_WITH_DNNL

namespace {

// An input's logical N, C, H, W, whatever its layout.
using Shape = std::array<int64_t, 4>;

// One prepared convolution: the primitive for one input shape, dtype and fused activation, and the
// weights already in its layout. src/dst are NHWC unless the primitive wants its own (Winograd's
// blocked layout): then run() converts them around each call.
struct Prepared {
  std::vector<int64_t> key;
  dnnl::convolution_forward primitive;
  memory weights;
  memory::desc src, dst, bias;
  size_t scratchpadBytes = 0;
};

// Per layer: the weight tensor the packed weights came from (held, so its identity cannot be
// reused) and its version, a few prepared shapes, most recently used first, and the shapes oneDNN
// has no primitive for (asked once).
struct Cache {
  std::mutex mutex;
  DerivedFrom weight;  // what `prepared` packed
  // the bias as a bfloat16 convolution adds it (autocast's, the AMX kernels'): rounded to bfloat16,
  // kept float32 for oneDNN
  DerivedFrom bias;
  torch::Tensor roundedBias;
  std::list<Prepared> prepared;
  std::set<std::vector<int64_t>> unsupported;
};
constexpr size_t kShapesPerLayer = 8;  // a batch of another size (a dataset's last), and a call's slices, need their own
std::atomic<size_t> gBlockedCallBytes{kDefaultBlockedCallBytes};  // Winograd's copies and scratchpad per call

// Float32 only (oneDNN has no bfloat16 Winograd). 'auto' asks for it with at least 16 channels in
// and out: with fewer (an image's RGB) oneDNN still offers it, several times slower than direct.
// Its rounding is measured in docs/benchmarks.md.
bool wantWinograd(DT dt, int64_t channels, int64_t filters) {
  const Algorithm a = gAlgorithm.load();
  if (dt != DT::f32 || a == Algorithm::Direct) return false;
  return a == Algorithm::Winograd || (channels >= 16 && filters >= 16);
}

// nullopt when oneDNN has no primitive for this convolution.
std::optional<Prepared> prepare(const Layer& L, const Shape& x, DT dt, bool relu, Tag in, Tag out, const torch::Tensor& weight,
                            const std::vector<int64_t>& key, const std::list<Prepared>& others) {
  const auto [N, C, H, W] = x;
  const int64_t O = L.filters, KH = L.kernel[0], KW = L.kernel[1];
  const int64_t OH = (H + L.pad[0] + L.pad[1] - L.dilation[0] * (KH - 1) - 1) / L.strides[0] + 1;
  const int64_t OW = (W + L.pad[2] + L.pad[3] - L.dilation[1] * (KW - 1) - 1) / L.strides[1] + 1;
  const memory::dims srcDims = dims({N, C, H, W}), weiDims = dims({O, C, KH, KW}), dstDims = dims({N, O, OH, OW});
  const memory::dims strides = dims({L.strides[0], L.strides[1]}), dilates = dims({L.dilation[0] - 1, L.dilation[1] - 1});
  const memory::dims padL = dims({L.pad[0], L.pad[2]}), padR = dims({L.pad[1], L.pad[3]});
  const memory::desc biasDesc = L.useBias ? memory::desc(dims({O}), DT::f32, Tag::a) : memory::desc();
  dnnl::primitive_attr attr;
  // oneDNN's own scratchpad is a per-thread global sized when a primitive is created: these run on
  // whichever libuv worker predicts, so each call passes a buffer of its own instead
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  auto describe = [&](dnnl::algorithm algorithm, Tag srcTag, Tag dstTag) {
    const memory::desc src(srcDims, dt, srcTag), dst(dstDims, dt, dstTag), wei(weiDims, dt, Tag::any);
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, algorithm, src, wei, biasDesc, dst, strides, dilates, padL,
                                      padR);
    return dnnl::convolution_forward::primitive_desc(d, attr, cpu());
  };
  dnnl::convolution_forward::primitive_desc pd;
  bool winograd = false;
  if (wantWinograd(dt, C, O)) {
    try {
      pd = describe(dnnl::algorithm::convolution_winograd, Tag::any, Tag::any);  // its own blocked src/dst
      winograd = true;
    } catch (const dnnl::error&) {
      // no Winograd for this shape (kernel, stride, channels, CPU): direct below
    }
  }
  if (!winograd) {
    try {
      // the caller's layouts, so nothing is converted; where they differ (a stretch's first
      // convolution, nhwc in and blocked out) oneDNN picks the input layout it has a kernel for (for
      // an image's 3 channels, planar): asked for nhwc in, it offers only its reference code, 300x
      // slower
      pd = describe(dnnl::algorithm::convolution_direct, in == out ? in : Tag::any, out);
      // a blocked layout only where oneDNN has a kernel for it (none without AVX-512): the stretch
      // then stops and the layer runs channels-last
      if ((in != Tag::nhwc || out != Tag::nhwc) && std::string(pd.impl_info_str()).rfind("ref", 0) == 0) return std::nullopt;
    } catch (const dnnl::error&) {
      return std::nullopt;
    }
  }
  Prepared p;
  p.key = key;
  p.primitive = dnnl::convolution_forward(pd);
  p.src = pd.src_desc();
  p.dst = pd.dst_desc();
  p.bias = pd.bias_desc();
  p.scratchpadBytes = pd.scratchpad_desc().get_size();
  // another batch size usually wants the same packed layout: one copy then (Winograd's is 4x the weights)
  for (const Prepared& other : others) {
    if (other.weights.get_desc() == pd.weights_desc()) {
      p.weights = other.weights;
      return p;
    }
  }
  // the engine keeps conv weights OIHW-logical, channels-last (OHWI) in memory, float32; oneDNN's
  // reorder into Winograd's weight layout reads only plain OIHW
  const torch::Tensor w = winograd ? weight.contiguous() : weight.contiguous(at::MemoryFormat::ChannelsLast);
  memory user(memory::desc(weiDims, DT::f32, winograd ? Tag::oihw : Tag::ohwi), cpu(), w.data_ptr());
  p.weights = memory(pd.weights_desc(), cpu());
  dnnl::stream stream(cpu());
  dnnl::reorder(user, p.weights).execute(stream, user, p.weights);
  stream.wait();
  return p;
}

// The prepared convolution for `src`'s shape (made and kept on first use; most recently used first),
// or nullptr when oneDNN has none. `cache.mutex` is held.
const Prepared* preparedFor(Cache& cache, const Layer& L, const Shape& src, DT dt, bool relu, Tag in, Tag out, const torch::Tensor& weight) {
  // a primitive splits its work for the thread count it was created under (native().setThreads)
  const std::vector<int64_t> key{src[0], src[1], src[2], src[3], dt == DT::bf16, relu, static_cast<int64_t>(gAlgorithm.load()),
                                 at::get_num_threads(), static_cast<int64_t>(in), static_cast<int64_t>(out)};
  auto hit = std::find_if(cache.prepared.begin(), cache.prepared.end(), [&](const Prepared& p) { return p.key == key; });
  if (hit == cache.prepared.end()) {
    if (cache.unsupported.count(key)) return nullptr;
    std::optional<Prepared> made = prepare(L, src, dt, relu, in, out, weight, key, cache.prepared);
    if (!made) {
      cache.unsupported.insert(key);
      return nullptr;
    }
    cache.prepared.push_front(std::move(*made));
    if (cache.prepared.size() > kShapesPerLayer) cache.prepared.pop_back();
  } else if (hit != cache.prepared.begin()) {
    cache.prepared.splice(cache.prepared.begin(), cache.prepared, hit);
  }
  return &cache.prepared.front();
}

// Runs `p` on `src` (in layout `in`) into `y` (layout `out`, src's rows), converting either where `p`
// wants another layout (Winograd's blocked one, unless the tensors are in it already), adding `bias`
// (undefined: none).
void run(const Prepared& p, const torch::Tensor& bias, const torch::Tensor& src, const torch::Tensor& y, DT dt, Tag in, Tag out) {
  Runner r;
  const memory convSrc = r.convert(r.wrap(memory::desc(p.src.dims(), dt, in), src.data_ptr()), p.src);
  r.into(r.wrap(memory::desc(p.dst.dims(), dt, out), y.data_ptr()), p.dst, [&](memory dst) {
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, convSrc}, {DNNL_ARG_WEIGHTS, p.weights}, {DNNL_ARG_DST, dst}};
    if (bias.defined()) args.emplace(DNNL_ARG_BIAS, r.wrap(p.bias, bias.data_ptr()));
    r.run(p.primitive, args, p.scratchpadBytes);
  });
  r.stream.wait();
  countCall();
}

// The convolution with its input in layout `in` and its output in `out`: Tag::nhwc (4-D
// channels-last tensors) or Tag::nChw16c (5-D [N][C/16][H][W][16], float32 only).
torch::Tensor convolve(const Layer& L, const torch::Tensor& x, bool relu, Tag in, Tag out) {
  if (!gEnabled.load() || L.kind != Kind::Conv2D || L.depthwise || L.groups != 1) return {};
  if (x.dim() != (in == Tag::nhwc ? 4 : 5) || !x.device().is_cpu() || x.size(0) == 0 || needsGradient(L, x)) return {};
  const torch::Tensor& weight = L.params[0];
  if (weight.scalar_type() != at::kFloat || (L.useBias && L.params[1].scalar_type() != at::kFloat)) return {};
  DT dt;
  if (L.mixedBf16 && at::autocast::is_cpu_enabled() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16)) {
    dt = DT::bf16;  // what autocast computes the convolution in
  } else if (!L.mixedBf16 && x.scalar_type() == at::kFloat) {
    dt = DT::f32;
  } else {
    return {};
  }
  if ((in != Tag::nhwc || out != Tag::nhwc) && dt != DT::f32) return {};
  Cache& cache = layerCache<Cache>(L.dnnlCache);
  std::unique_lock<std::mutex> lock(cache.mutex);
  // new weights (set_weights, an optimizer step): every packed copy is stale
  if (!cache.weight.current(weight)) {
    cache.prepared.clear();
    cache.weight.remember(weight);
  }
  torch::Tensor bias;
  if (L.useBias && dt == DT::f32) bias = L.params[1].contiguous();
  if (L.useBias && dt == DT::bf16) {
    const torch::Tensor& b = L.params[1];
    if (!cache.bias.current(b)) {
      cache.roundedBias = bf16RoundedBias(b);
      cache.bias.remember(b);
    }
    bias = cache.roundedBias;
  }
  try {
    const at::ScalarType type = dt == DT::bf16 ? at::kBFloat16 : at::kFloat;
    const torch::Tensor src = dense(x.to(type));
    const int64_t n = src.size(0);
    auto shapeOf = [](const torch::Tensor& t) -> Shape { return {t.size(0), channelsOf(t), t.size(2), t.size(3)}; };
    const Prepared* whole = preparedFor(cache, L, shapeOf(src), dt, relu, in, out, weight);
    if (!whole) return {};  // oneDNN has no primitive for it: libtorch's conv2d
    const memory::dims& d = whole->dst.dims();
    // allocated by torch, so the engine's caching allocator serves it
    torch::Tensor y = emptyActivation(d, src.options(), out == Tag::nChw16c);
    // Winograd's blocked copies of src and dst and its scratchpad are whole-batch sized: VGG16's
    // 300x300x64 layers in 22-row chunks added 2.7 GB to the feature pass. Rows are independent, so
    // such a call runs on slices of rows whose copies and scratchpad stay under gBlockedCallBytes.
    auto copyBytes = [&](const memory::desc& d, Tag user) { return d != memory::desc(d.dims(), dt, user) ? d.get_size() : 0; };
    const size_t extra = copyBytes(whole->src, in) + copyBytes(whole->dst, out) + whole->scratchpadBytes;
    const size_t budget = gBlockedCallBytes.load();
    const int64_t slices = std::min<int64_t>(n, static_cast<int64_t>((extra + budget - 1) / budget));
    const int64_t rows = slices > 1 ? (n + slices - 1) / slices : n;
    for (int64_t r = 0; r < n; r += rows) {
      const int64_t k = std::min(rows, n - r);
      const torch::Tensor part = k == n ? src : src.narrow(0, r, k);
      const Prepared* p = k == n ? whole : preparedFor(cache, L, shapeOf(part), dt, relu, in, out, weight);
      if (!p) throw std::runtime_error("no oneDNN primitive for a slice of " + std::to_string(k) + " rows");
      run(*p, bias, part, k == n ? y : y.narrow(0, r, k), dt, in, out);
    }
    return y;
  } catch (const dnnl::error& e) {
    rethrow("convolution", x.sizes(), weight.sizes(),
            std::string(" (") + (dt == DT::bf16 ? "bfloat16" : "float32") + ", strides " + shapeString(L.strides) + ", algorithm " +
                algorithmName(gAlgorithm.load()) + ")",
            e);
  }
}

}  // namespace

void addInfo(Napi::Object& out) {
  const dnnl_version_t* v = dnnl::version();
  out.Set("dnnl", true);
  out.Set("dnnlVersion", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
  out.Set("dnnlCalls", static_cast<double>(gCalls.load()));
}

torch::Tensor forward(const Layer& L, const torch::Tensor& x, bool relu) { return convolve(L, x, relu, Tag::nhwc, Tag::nhwc); }

bool blockedOutputApplies(const Layer& L) {
  if (!gEnabled.load() || L.kind != Kind::Conv2D || L.depthwise || L.groups != 1 || L.mixedBf16) return false;
  return L.params[0].scalar_type() == at::kFloat && L.filters % 16 == 0;
}

bool blockedApplies(const Layer& L, int64_t channels) {
  const bool threeByThree = L.kernel[0] == 3 && L.kernel[1] == 3;  // oneDNN's Winograd
  return blockedOutputApplies(L) && threeByThree && channels % 16 == 0 && wantWinograd(DT::f32, channels, L.filters);
}

torch::Tensor forwardBlocked(const Layer& L, const torch::Tensor& x, bool relu, bool blockedOut) {
  return convolve(L, x, relu, tagOf(x), blockedOut ? Tag::nChw16c : Tag::nhwc);
}

#else  // !TL_WITH_DNNL

torch::Tensor forward(const Layer&, const torch::Tensor&, bool) { return {}; }
bool blockedOutputApplies(const Layer&) { return false; }
bool blockedApplies(const Layer&, int64_t) { return false; }
torch::Tensor forwardBlocked(const Layer&, const torch::Tensor&, bool, bool) { return {}; }

void addInfo(Napi::Object& out) {
  out.Set("dnnl", false);
  out.Set("dnnlVersion", "");
  out.Set("dnnlCalls", 0);
}

#endif

namespace {

Napi::Value SetConvAlgorithm(const Napi::CallbackInfo& info) {
  const std::string name = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  Algorithm next;
  if (name == "auto") next = Algorithm::Auto;
  else if (name == "direct") next = Algorithm::Direct;
  else if (name == "winograd") next = Algorithm::Winograd;
  else throw Napi::TypeError::New(info.Env(), "convolution algorithm must be 'auto', 'direct' or 'winograd' (got '" + name + "')");
  return Napi::String::New(info.Env(), algorithmName(gAlgorithm.exchange(next)));
}

Napi::Value SetWinogradCallBytes(const Napi::CallbackInfo& info) {
  const double bytes = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  if (!(bytes >= 1 && bytes <= 1e15)) throw Napi::RangeError::New(info.Env(), "setWinogradCallBytes: bytes must be a number from 1 to 1e15");
#ifdef TL_WITH_DNNL
  return Napi::Number::New(info.Env(), static_cast<double>(gBlockedCallBytes.exchange(static_cast<size_t>(bytes))));
#else
  return Napi::Number::New(info.Env(), static_cast<double>(kDefaultBlockedCallBytes));
#endif
}

Napi::Value SetDnnlConv(const Napi::CallbackInfo& info) {
  if (!info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "setDnnlConv takes true or false");
  return Napi::Boolean::New(info.Env(), gEnabled.exchange(info[0].As<Napi::Boolean>().Value()));
}

}  // namespace

void addExports(Napi::Env env, Napi::Object exports) {
  exports.Set("setConvAlgorithm", Napi::Function::New(env, SetConvAlgorithm));
  exports.Set("setDnnlConv", Napi::Function::New(env, SetDnnlConv));
  exports.Set("setWinogradCallBytes", Napi::Function::New(env, SetWinogradCallBytes));
}

}  // namespace dnnlconv
}  // namespace tl
