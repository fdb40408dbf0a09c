#include "layers.h"
#include "precision.h"
#include "few-channel-conv.h"
#include "dnnl-conv.h"
#include "few-channel-block.h"
#include "dnnl-conv-train.h"
#include "conv-weight-gradient-amx.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace tl {

namespace {

std::vector<int64_t> intList(const Napi::Object& spec, const char* key, std::vector<int64_t> fallback) {
  if (!spec.Has(key) || spec.Get(key).IsUndefined() || spec.Get(key).IsNull()) return fallback;
  Napi::Array arr = spec.Get(key).As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(arr.Get(i).As<Napi::Number>().Int64Value());
  return out;
}

double number(const Napi::Object& spec, const char* key, double fallback) {
  if (!spec.Has(key) || !spec.Get(key).IsNumber()) return fallback;
  return spec.Get(key).As<Napi::Number>().DoubleValue();
}

bool boolean(const Napi::Object& spec, const char* key, bool fallback) {
  if (!spec.Has(key) || !spec.Get(key).IsBoolean()) return fallback;
  return spec.Get(key).As<Napi::Boolean>().Value();
}

std::string string(const Napi::Object& spec, const char* key, const std::string& fallback) {
  if (!spec.Has(key) || !spec.Get(key).IsString()) return fallback;
  return spec.Get(key).As<Napi::String>().Utf8Value();
}

Act parseActivation(const std::string& name, const std::string& layer) {
  if (name == "linear" || name.empty()) return Act::Linear;
  if (name == "relu") return Act::Relu;
  if (name == "relu6") return Act::Relu6;
  if (name == "sigmoid") return Act::Sigmoid;
  if (name == "softmax") return Act::Softmax;
  if (name == "tanh") return Act::Tanh;
  if (name == "leaky_relu") return Act::LeakyRelu;
  if (name == "elu") return Act::Elu;
  throw std::invalid_argument("layer '" + layer + "': unsupported activation '" + name + "'");
}

Kind parseKind(const std::string& kind, const std::string& layer) {
  if (kind == "conv2d") return Kind::Conv2D;
  if (kind == "maxpool") return Kind::MaxPool;
  if (kind == "avgpool") return Kind::AvgPool;
  if (kind == "flatten") return Kind::Flatten;
  if (kind == "dense") return Kind::Dense;
  if (kind == "dropout") return Kind::Dropout;
  if (kind == "activation") return Kind::Activation;
  if (kind == "batchnorm") return Kind::BatchNorm;
  if (kind == "zeropad") return Kind::ZeroPad;
  if (kind == "gap") return Kind::GlobalAvgPool;
  if (kind == "reshape") return Kind::Reshape;
  if (kind == "rescale") return Kind::Rescale;
  if (kind == "augment") return Kind::Augment;
  throw std::invalid_argument("layer '" + layer + "': unknown engine layer kind '" + kind + "'");
}

}  // namespace

torch::Tensor activate(const torch::Tensor& x, Act act, double alpha) {
  // ReLU in place: its input is a fresh conv/addmm output, and its backward needs only its own
  // result. Saves an allocation and a memory pass per layer.
  switch (act) {
    case Act::Linear: return x;
    case Act::Relu: return x.relu_();
    case Act::Relu6: return kerasRelu6(x);
    case Act::Sigmoid: return torch::sigmoid(x);
    case Act::Softmax: return torch::softmax(x, x.dim() == 4 ? 1 : -1);  // Keras: the channel (last) axis
    case Act::Tanh: return torch::tanh(x);
    case Act::LeakyRelu: return torch::leaky_relu(x, alpha);
    case Act::Elu: return torch::elu(x, alpha);
  }
  return x;
}

namespace {

torch::Tensor padIfNeeded(const torch::Tensor& x, const std::vector<int64_t>& pad, double value) {
  if (pad[0] == 0 && pad[1] == 0 && pad[2] == 0 && pad[3] == 0) return x;
  return torch::constant_pad_nd(x, {pad[2], pad[3], pad[0], pad[1]}, value);
}

bool symmetric(const std::vector<int64_t>& pad) { return pad[0] == pad[1] && pad[2] == pad[3]; }

torch::Tensor glorotUniform(std::vector<int64_t> shape, double fanIn, double fanOut) {
  double limit = std::sqrt(6.0 / (fanIn + fanOut));
  return torch::empty(shape, torch::kFloat32).uniform_(-limit, limit);
}

}  // namespace

bool plainConv(const Layer& conv) {
  return conv.kind == Kind::Conv2D && !conv.depthwise && conv.groups == 1 && conv.strides == std::vector<int64_t>{1, 1} &&
         conv.dilation == std::vector<int64_t>{1, 1};
}

std::pair<int64_t, int64_t> plainConvOutput(const Layer& conv, int64_t H, int64_t W) {
  const torch::Tensor& w = conv.params[0];
  return {H + conv.pad[0] + conv.pad[1] - w.size(2) + 1, W + conv.pad[2] + conv.pad[3] - w.size(3) + 1};
}

bool halvingPool(const Layer& pool) {
  return pool.kind == Kind::MaxPool && pool.pool == std::vector<int64_t>{2, 2} && pool.strides == std::vector<int64_t>{2, 2} &&
         std::all_of(pool.pad.begin(), pool.pad.end(), [](int64_t p) { return p == 0; });
}

torch::Tensor functionBias(const Layer& layer) { return layer.useBias ? layer.params[1] : torch::empty({0}); }

bool kernelInput4d(const torch::Tensor& x) {
  return x.dim() == 4 && x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16);
}

bool needsGradient(const Layer& layer, const torch::Tensor& x) {
  if (!torch::GradMode::is_enabled()) return false;
  if (x.requires_grad() || layer.params[0].requires_grad()) return true;
  return layer.useBias && layer.params[1].requires_grad();
}

std::string shapeString(c10::IntArrayRef sizes) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < sizes.size(); ++i) out << (i ? ", " : "") << sizes[i];
  out << "]";
  return out.str();
}

Layer parseLayer(const Napi::Object& spec) {
  Layer layer;
  layer.name = string(spec, "name", "?");
  layer.className = string(spec, "className", "?");
  layer.kind = parseKind(string(spec, "kind", ""), layer.name);
  layer.activation = parseActivation(string(spec, "activation", "linear"), layer.name);
  layer.alpha = number(spec, "alpha", layer.activation == Act::Elu ? 1.0 : 0.0);  // Keras elu: alpha 1
  layer.inChannels = static_cast<int64_t>(number(spec, "inChannels", 0));
  layer.filters = static_cast<int64_t>(number(spec, "filters", 0));
  layer.depthwise = boolean(spec, "depthwise", false);
  layer.depthMultiplier = static_cast<int64_t>(number(spec, "depthMultiplier", 1));
  layer.useBias = boolean(spec, "useBias", true);
  layer.kernel = intList(spec, "kernel", {1, 1});
  layer.strides = intList(spec, "strides", {1, 1});
  layer.dilation = intList(spec, "dilation", {1, 1});
  layer.pad = intList(spec, "pad", {0, 0, 0, 0});
  layer.pool = intList(spec, "pool", {2, 2});
  layer.inFeatures = static_cast<int64_t>(number(spec, "inFeatures", 0));
  layer.units = static_cast<int64_t>(number(spec, "units", 0));
  layer.rate = number(spec, "rate", 0.0);
  layer.epsilon = number(spec, "epsilon", 1e-3);
  layer.momentum = number(spec, "momentum", 0.99);
  layer.center = boolean(spec, "center", true);
  layer.scale = boolean(spec, "scale", true);
  layer.targetShape = intList(spec, "targetShape", {});
  layer.inputShape = intList(spec, "inputShape", {});
  layer.rescale = number(spec, "scale", 1.0);
  layer.flipChannels = boolean(spec, "flipChannels", false);
  layer.trainable = boolean(spec, "trainable", true);
  layer.mixedBf16 = parseDtypePolicy(string(spec, "dtype", "float32"), layer.name);
  if (spec.Has("offset") && spec.Get("offset").IsArray()) {
    Napi::Array arr = spec.Get("offset").As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) layer.offset.push_back(arr.Get(i).As<Napi::Number>().DoubleValue());
  }
  if (layer.pad.size() != 4) throw std::invalid_argument("layer '" + layer.name + "': pad must have 4 entries");
  if (layer.depthwise) layer.filters = layer.inChannels * layer.depthMultiplier;
  layer.groups = layer.depthwise ? layer.inChannels : 1;
  if (layer.kind == Kind::Rescale && !layer.offset.empty()) {
    layer.offsetTensor = torch::tensor(std::vector<float>(layer.offset.begin(), layer.offset.end())).view({1, -1, 1, 1});
  }
  if (layer.kind == Kind::Augment) layer.augment = parseAugment(spec, layer.name);
  return layer;
}

std::vector<int64_t> Layer::kerasShape(size_t i) const {
  switch (kind) {
    case Kind::Conv2D:
      if (i == 0) {
        return depthwise ? std::vector<int64_t>{kernel[0], kernel[1], inChannels, depthMultiplier}
                         : std::vector<int64_t>{kernel[0], kernel[1], inChannels, filters};
      }
      return {filters};
    case Kind::Dense:
      if (i == 0) return {inFeatures, units};
      return {units};
    case Kind::BatchNorm:
      return {inChannels};
    default:
      return {};
  }
}

void initParams(Layer& layer) {
  layer.params.clear();
  layer.paramIsVariable.clear();
  auto add = [&](torch::Tensor t, bool variable) {
    layer.params.push_back(t);
    layer.paramIsVariable.push_back(variable);
  };
  if (layer.kind == Kind::Conv2D) {
    double receptive = static_cast<double>(layer.kernel[0] * layer.kernel[1]);
    auto keras = layer.kerasShape(0);
    double fanIn = receptive * static_cast<double>(keras[2]);
    double fanOut = receptive * static_cast<double>(keras[3]);
    add(fromKeras(layer, 0, glorotUniform(keras, fanIn, fanOut)), true);
    if (layer.useBias) add(torch::zeros({layer.filters}), true);
  } else if (layer.kind == Kind::Dense) {
    add(glorotUniform({layer.inFeatures, layer.units}, layer.inFeatures, layer.units), true);
    if (layer.useBias) add(torch::zeros({layer.units}), true);
  } else if (layer.kind == Kind::BatchNorm) {
    // Keras weight order: gamma (if scale), beta (if center), moving_mean, moving_variance.
    if (layer.scale) add(torch::ones({layer.inChannels}), true);
    if (layer.center) add(torch::zeros({layer.inChannels}), true);
    add(torch::zeros({layer.inChannels}), false);
    add(torch::ones({layer.inChannels}), false);
  }
  applyTrainable(layer);
}

void applyTrainable(Layer& layer) {
  for (size_t i = 0; i < layer.params.size(); ++i) {
    layer.params[i].set_requires_grad(layer.trainable && layer.paramIsVariable[i]);
  }
}

torch::Tensor toKeras(const Layer& layer, size_t i, const torch::Tensor& p) {
  if (layer.kind == Kind::Conv2D && i == 0) {
    if (layer.depthwise) {
      // engine [in*mult, 1, kh, kw] -> Keras [kh, kw, in, mult]
      return p.reshape({layer.inChannels, layer.depthMultiplier, layer.kernel[0], layer.kernel[1]}).permute({2, 3, 0, 1}).contiguous();
    }
    return p.permute({2, 3, 1, 0}).contiguous();  // OIHW -> HWIO
  }
  return p.contiguous();
}

torch::Tensor fromKeras(const Layer& layer, size_t i, const torch::Tensor& k) {
  if (layer.kind == Kind::Conv2D && i == 0) {
    if (layer.depthwise) {
      return k.permute({2, 3, 0, 1}).reshape({layer.filters, 1, layer.kernel[0], layer.kernel[1]}).contiguous(at::MemoryFormat::ChannelsLast);
    }
    // HWIO -> OIHW, stored channels-last like the activations, so convolutions need no reorder copy
    return k.permute({3, 2, 0, 1}).contiguous(at::MemoryFormat::ChannelsLast);
  }
  return k.contiguous();
}

bool endsWith(const Layer& layer, Act act) {
  bool applies = layer.kind == Kind::Conv2D || layer.kind == Kind::Dense || layer.kind == Kind::Activation;
  return applies && layer.activation == act;
}

torch::Tensor forwardLayer(const Layer& L, const torch::Tensor& x, bool training, bool skipActivation) {
  const Act act = skipActivation ? Act::Linear : L.activation;
  switch (L.kind) {
    case Kind::Conv2D: {
      // mixed_bfloat16 inference on an image's few channels: AMX tiles (few-channel-block.cc)
      if ((act == Act::Relu || act == Act::Linear) && fewChannelConvAmxApplies(L, x)) return fewChannelConvAmx(L, x, act == Act::Relu);
      // inference: oneDNN directly, weights pre-packed, ReLU fused (dnnl-conv.cc)
      if (torch::Tensor y = dnnlconv::forward(L, x, act == Act::Relu); y.defined()) return act == Act::Relu ? y : activate(y, act, L.alpha);
      // training, float32: Winograd forward and backward (dnnl-conv-train.cc)
      if (torch::Tensor y = dnnlconv::trainingForward(L, x); y.defined()) return activate(y, act, L.alpha);
      torch::Tensor input = x;
      std::vector<int64_t> padding{0, 0};
      if (symmetric(L.pad)) padding = {L.pad[0], L.pad[2]};
      else input = padIfNeeded(x, L.pad, 0.0);
      // mixed_bfloat16 training on AMX: weight gradient on tiles (conv-weight-gradient-amx.cc)
      if (convWeightGradientAmxApplies(L, input)) return activate(convWeightGradientAmx(L, input, padding), act, L.alpha);
      torch::Tensor bias = L.useBias ? L.params[1] : torch::Tensor();
      torch::Tensor y = fewChannelConvApplies(L, input) ? fewChannelConv(L, input, padding)  // few-channel-conv.cc
                                                        : torch::conv2d(input, L.params[0], bias, L.strides, padding, L.dilation, L.groups);
      return activate(y, act, L.alpha);
    }
    case Kind::MaxPool: {
      torch::Tensor input = padIfNeeded(x, L.pad, -std::numeric_limits<double>::infinity());
      return torch::max_pool2d(input, L.pool, L.strides);
    }
    case Kind::AvgPool: {
      // Keras averages over valid pixels only at the border ('same'): count_include_pad = false.
      if (symmetric(L.pad) && L.pad[0] * 2 <= L.pool[0] && L.pad[2] * 2 <= L.pool[1]) {
        return torch::avg_pool2d(x, L.pool, L.strides, {L.pad[0], L.pad[2]}, false, false);
      }
      torch::Tensor ones = torch::ones({1, 1, x.size(2), x.size(3)}, x.options());
      torch::Tensor sum = torch::avg_pool2d(padIfNeeded(x, L.pad, 0.0), L.pool, L.strides, {0, 0}, false, true);
      torch::Tensor count = torch::avg_pool2d(padIfNeeded(ones, L.pad, 0.0), L.pool, L.strides, {0, 0}, false, true);
      return sum / count;
    }
    case Kind::Flatten:
      // Keras flattens NHWC: height, width, channel order keeps Dense weights portable.
      if (x.dim() == 4) return x.permute({0, 2, 3, 1}).reshape({x.size(0), -1});
      return x.reshape({x.size(0), -1});
    case Kind::Dense: {
      torch::Tensor y = L.useBias ? torch::addmm(L.params[1], x, L.params[0]) : torch::mm(x, L.params[0]);
      return activate(y, act, L.alpha);
    }
    case Kind::Dropout:
      return torch::dropout(x, L.rate, training);
    case Kind::Activation:
      if (act == Act::Relu || act == Act::Relu6) {
        // the input may be needed by an earlier layer's backward (e.g. batch norm): not in place
        return act == Act::Relu ? torch::relu(x) : kerasRelu6(x);
      }
      return activate(x, act, L.alpha);
    case Kind::BatchNorm: {
      // Keras: a trainable layer normalises with the batch's statistics while training and moves
      // its moving averages (torch's momentum is Keras's 1 - momentum); a frozen layer, and every
      // layer outside training, uses the moving averages (inference mode).
      const bool batchStats = training && L.trainable;
      const double momentum = 1.0 - L.momentum;
      size_t k = 0;
      torch::Tensor gamma = L.scale ? L.params[k++] : torch::Tensor();
      torch::Tensor beta = L.center ? L.params[k++] : torch::Tensor();
      torch::Tensor mean = L.params[k++];
      torch::Tensor var = L.params[k++];
      if (x.dim() == 3) {  // [N, L, C]: channels are the last axis, batch_norm wants them at 1
        return torch::batch_norm(x.transpose(1, 2), gamma, beta, mean, var, batchStats, momentum, L.epsilon, false).transpose(1, 2);
      }
      return torch::batch_norm(x, gamma, beta, mean, var, batchStats, momentum, L.epsilon, false);
    }
    case Kind::ZeroPad:
      return padIfNeeded(x, L.pad, 0.0);
    case Kind::GlobalAvgPool:
      // the mean's gradient reaches x as a broadcast view; handed on dense in x's own layout, the
      // layers before it take their fast backward (a batch_norm's: about 90 -> 10 ms, float32 or bf16)
      if (x.requires_grad() && x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast))
        x.register_hook([](const torch::Tensor& g) { return g.contiguous(at::MemoryFormat::ChannelsLast); });
      return x.mean({2, 3});
    case Kind::Reshape: {
      torch::Tensor nhwc = x.dim() == 4 ? x.permute({0, 2, 3, 1}) : x;
      std::vector<int64_t> shape{x.size(0)};
      shape.insert(shape.end(), L.targetShape.begin(), L.targetShape.end());
      torch::Tensor y = nhwc.reshape(shape);
      return y.dim() == 4 ? y.permute({0, 3, 1, 2}) : y;
    }
    case Kind::Rescale: {
      // Preprocessing is only ever the first step, applied to the fresh float copy that
      // toModelInput makes of the caller's pixels: scaling it in place saves a full-size pass.
      torch::Tensor y = L.flipChannels ? x.flip({1}) : x;
      y.mul_(L.rescale);
      if (L.offsetTensor.defined()) y.add_(L.offsetTensor);
      return y;
    }
    case Kind::Augment:
      return augment(*L.augment, x, training);
  }
  throw std::logic_error("unreachable layer kind");
}

}  // namespace tl
