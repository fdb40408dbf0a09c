#include "model.h"

#include <cmath>
#include <functional>
#include <stdexcept>

#include "blocked-stretch.h"
#include "conv-pool-amx.h"
#include "few-channel-block.h"
#include "layer-timing.h"
#include "max-pool-relu.h"
#include "precision.h"
#include "device.h"
#include "distributed.h"
#include "tensors.h"
#include "threads.h"

namespace tl {

namespace {

std::string describe(const std::exception& e) {
  if (auto* c10error = dynamic_cast<const c10::Error*>(&e)) return c10error->what_without_backtrace();
  return e.what();
}

// Runs `work` on libuv's threadpool and settles a promise with `done(result)` on the JS thread.
template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using Done = std::function<Napi::Value(Napi::Env, Result&)>;

  PromiseWorker(Napi::Env env, Model* model, Napi::Value keepAlive, Work work, Done done)
      : Napi::AsyncWorker(env, "transferlab"), deferred_(Napi::Promise::Deferred::New(env)), model_(model),
        work_(std::move(work)), done_(std::move(done)) {
    keepAlive_ = Napi::Persistent(keepAlive.As<Napi::Object>());
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      configureWorkerThreads();
      result_ = work_();
    } catch (const std::exception& e) {
      SetError(describe(e));
    }
  }
  void OnOK() override {
    model_->release();
    Napi::HandleScope scope(Env());
    try {
      deferred_.Resolve(done_(Env(), result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    model_->release();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Model* model_;
  Napi::ObjectReference keepAlive_;  // the input arrays (and the model) outlive the work
  Work work_;
  Done done_;
  Result result_;
};

Loss parseLoss(const std::string& name) {
  if (name == "binary_crossentropy") return Loss::BinaryCrossentropy;
  if (name == "categorical_crossentropy") return Loss::CategoricalCrossentropy;
  if (name == "sparse_categorical_crossentropy") return Loss::SparseCategoricalCrossentropy;
  throw std::invalid_argument("unsupported loss '" + name + "' (use binary_crossentropy, categorical_crossentropy or sparse_categorical_crossentropy)");
}

const char* optimizerName(Optimizer kind) {
  switch (kind) {
    case Optimizer::Adam: return "adam";
    case Optimizer::SGD: return "sgd";
    case Optimizer::RMSprop: return "rmsprop";
  }
  return "?";
}

Optimizer parseOptimizer(const std::string& name) {
  for (Optimizer kind : {Optimizer::Adam, Optimizer::SGD, Optimizer::RMSprop}) {
    if (name == optimizerName(kind)) return kind;
  }
  throw std::invalid_argument("unsupported optimizer '" + name + "' (use adam, sgd or rmsprop)");
}

}  // namespace

Napi::Function Model::Init(Napi::Env env) {
  return DefineClass(env, "NativeModel",
                     {InstanceMethod("getWeights", &Model::GetWeights), InstanceMethod("setWeights", &Model::SetWeights),
                      InstanceMethod("setTrainable", &Model::SetTrainable),
                      InstanceMethod("setDtypePolicy", &Model::SetDtypePolicy), InstanceMethod("compile", &Model::Compile),
                      InstanceMethod("trainStep", &Model::TrainStep), InstanceMethod("evaluate", &Model::Evaluate),
                      InstanceMethod("predict", &Model::Predict),
                      InstanceMethod("getOptimizerState", &Model::GetOptimizerState),
                      InstanceMethod("setOptimizerState", &Model::SetOptimizerState),
                      InstanceMethod("gradCam", &Model::GradCam),  // gradcam.cc

                      // learning-rate hook (src/learning-rate.cc)
                      InstanceMethod("setLearningRate", &Model::SetLearningRate), InstanceMethod("iterations", &Model::GetIterations)});
}

Model::Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "NativeModel(layers, options): layers must be an array");
  Napi::Array specs = info[0].As<Napi::Array>();
  if (info[1].IsObject()) {
    Napi::Object options = info[1].As<Napi::Object>();
    if (options.Has("seed") && options.Get("seed").IsNumber()) {
      torch::manual_seed(static_cast<uint64_t>(options.Get("seed").As<Napi::Number>().Int64Value()));
    }
  }
  try {
    for (uint32_t i = 0; i < specs.Length(); ++i) {
      layers_.push_back(parseLayer(specs.Get(i).As<Napi::Object>()));
      initParams(layers_.back());
    }
    // device: weights are initialised on the CPU (same values on every device), then moved
    if (info[1].IsObject() && info[1].As<Napi::Object>().Get("device").IsString()) {
      device_ = resolveDevice(info[1].As<Napi::Object>().Get("device").ToString().Utf8Value());
      moveLayers(layers_, device_);
    }
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, describe(e));
  }
}

// Calls that read or change the model's tensors must not overlap a step running on another thread.
void Model::ensureIdle(Napi::Env env, const char* what) const {
  if (busy_.load()) throw Napi::Error::New(env, std::string("the model is busy: await the running trainStep/evaluate/predict before ") + what);
}

void Model::acquire(Napi::Env env) {
  bool expected = false;
  if (!busy_.compare_exchange_strong(expected, true)) {
    throw Napi::Error::New(env, "the model is busy: await the previous trainStep/evaluate/predict call first");
  }
}

size_t Model::layerIndex(const Napi::CallbackInfo& info, size_t arg) const {
  if (!info[arg].IsNumber()) throw Napi::TypeError::New(info.Env(), "layer index must be a number");
  int64_t i = info[arg].As<Napi::Number>().Int64Value();
  if (i < 0 || i > static_cast<int64_t>(layers_.size())) {
    throw Napi::RangeError::New(info.Env(), "layer index " + std::to_string(i) + " is outside 0.." + std::to_string(layers_.size()));
  }
  return static_cast<size_t>(i);
}

Napi::Value Model::GetWeights(const Napi::CallbackInfo& info) {
  ensureIdle(info.Env(), "getWeights");
  size_t i = layerIndex(info, 0);
  if (i == layers_.size()) throw Napi::RangeError::New(info.Env(), "no layer at index " + std::to_string(i));
  const Layer& layer = layers_[i];
  Napi::Array out = Napi::Array::New(info.Env(), layer.params.size());
  torch::NoGradGuard noGrad;
  for (size_t k = 0; k < layer.params.size(); ++k) out.Set(k, toFloat32Array(info.Env(), toKeras(layer, k, layer.params[k])));
  return out;
}

void Model::SetWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t i = layerIndex(info, 0);
  if (i == layers_.size()) throw Napi::RangeError::New(env, "no layer at index " + std::to_string(i));
  ensureIdle(env, "setWeights");
  Layer& layer = layers_[i];
  Napi::Array values = info[1].As<Napi::Array>();
  if (values.Length() != layer.params.size()) {
    throw Napi::Error::New(env, "layer '" + layer.name + "' has " + std::to_string(layer.params.size()) + " weights, got " +
                                    std::to_string(values.Length()));
  }
  try {
    torch::NoGradGuard noGrad;
    for (size_t k = 0; k < layer.params.size(); ++k) {
      auto shape = layer.kerasShape(k);
      torch::Tensor keras = fromFloat32Array(values.Get(k), shape, "layer '" + layer.name + "' weight " + std::to_string(k));
      layer.params[k].copy_(fromKeras(layer, k, keras));
    }
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, describe(e));
  }
}

void Model::SetTrainable(const Napi::CallbackInfo& info) {
  ensureIdle(info.Env(), "setTrainable");
  size_t i = layerIndex(info, 0);
  if (i == layers_.size()) throw Napi::RangeError::New(info.Env(), "no layer at index " + std::to_string(i));
  layers_[i].trainable = info[1].ToBoolean().Value();
  applyTrainable(layers_[i]);
}

void Model::SetDtypePolicy(const Napi::CallbackInfo& info) {
  ensureIdle(info.Env(), "setDtypePolicy");
  size_t i = layerIndex(info, 0);
  if (i == layers_.size()) throw Napi::RangeError::New(info.Env(), "no layer at index " + std::to_string(i));
  try {
    layers_[i].mixedBf16 = parseDtypePolicy(info[1].ToString().Utf8Value(), layers_[i].name);
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), describe(e));
  }
}

void Model::Compile(const Napi::CallbackInfo& info) {
  ensureIdle(info.Env(), "compile");
  Napi::Object options = info[0].As<Napi::Object>();
  OptimizerConfig config;
  try {
    loss_ = parseLoss(options.Get("loss").ToString().Utf8Value());
    if (options.Has("optimizer")) config.kind = parseOptimizer(options.Get("optimizer").ToString().Utf8Value());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), describe(e));
  }
  auto num = [&](const char* key, double fallback) {
    return options.Has(key) && options.Get(key).IsNumber() ? options.Get(key).As<Napi::Number>().DoubleValue() : fallback;
  };
  auto flag = [&](const char* key) { return options.Has(key) && options.Get(key).ToBoolean().Value(); };
  config.learningRate = num("learningRate", config.kind == Optimizer::SGD ? 0.01 : 1e-3);
  config.epsilon = num("epsilon", 1e-7);
  config.beta1 = num("beta1", 0.9);
  config.beta2 = num("beta2", 0.999);
  config.momentum = num("momentum", 0.0);
  config.nesterov = flag("nesterov");
  config.rho = num("rho", 0.9);
  config.centered = flag("centered");
  optimizer_ = config;
  iterations_ = 0;
  slots_.clear();
}

// bounded memory hook: Model::forward (src/chunked-forward.cc) runs stretches of this in row chunks
torch::Tensor Model::forwardLayers(const torch::Tensor& input, size_t from, size_t to, bool training, bool logits, bool augment) {
  torch::Tensor x = input;
  AutocastScope autocast;  // each layer runs under its own dtype policy (src/precision.cc)
  const size_t output = layers_.size() - 1;
  for (size_t i = from; i < to; ++i) {
    const Layer& layer = layers_[i];
    try {
      // relu(maxpool(x)) == maxpool(relu(x)), and after the pool the ReLU and its backward touch a
      // quarter of the memory: a Conv2D(relu) + MaxPooling2D pair applies its ReLU after the pool.
      // layer timing hook (bench only; layer-timing.cc): start time, and each output marked below
      const bool timed = timing::enabled();
      double start = timed ? timing::now() : 0;
      // mixed_bfloat16 inference: VGG16's block 1 whole on AMX tiles (conv-pool-amx.cc), timed as the
      // second conv's forward; the first conv's row gets no time of its own, the pool's ~0
      if (i + 2 < to && fewChannelConvIntoPairAmxApplies(layer, layers_[i + 1], layers_[i + 2], x, i + 2 == output)) {
        x = fewChannelConvIntoPairAmx(layer, layers_[i + 1], x);
        if (timed) {
          timing::fusedForward(layer.name);
          timing::forward(layers_[i + 1].name, start);
          timing::forward(layers_[i + 2].name, timing::now());
        }
        i += 2;
        continue;
      }
      // float32, inference or training: consecutive Winograd convolutions (and the pools between
      // them) with the activations kept in oneDNN's blocked layout (blocked-stretch.cc), each layer
      // timed there; never the last layer when its activation must be skipped (logits)
      const size_t stretchEnd = logits ? to - 1 : to;
      if (blockedStretchApplies(layers_, i, stretchEnd, x)) {
        if (torch::Tensor y = blockedStretch(layers_, i, stretchEnd, x); y.defined()) {
          x = y;
          continue;
        }
      }
      if (layer.kind == Kind::Conv2D && layer.activation == Act::Relu && i + 1 < to && layers_[i + 1].kind == Kind::MaxPool) {
        // the pair as one kernel, timed as the conv's forward and backward; the pool's row gets ~0:
        // the model's first block (few-channel-block.cc), or mixed_bfloat16 inference on AMX tiles
        // with the pool fused (conv-pool-amx.cc)
        const Layer& pool = layers_[i + 1];
        const bool poolIsOutput = i + 1 == output;
        torch::Tensor fused = fewChannelBlockApplies(layer, pool, x, poolIsOutput) ? fewChannelBlock(layer, x)
                              : convPoolAmxApplies(layer, pool, x, poolIsOutput)   ? convPoolAmx(layer, x)
                                                                                   : torch::Tensor();
        if (fused.defined()) {
          x = fused;
          ++i;
          if (timed) {
            timing::forward(layer.name, start);
            timing::forward(layers_[i].name, timing::now());
            timing::markOutput(x, layers_[i].name);  // hooks run in order: the pool's, then at once the conv's
            timing::markOutput(x, layer.name);
          }
          continue;
        }
        x = forwardWithPolicy(layer, x, training, /*skipActivation=*/true, false);
        if (timed) {
          timing::forward(layer.name, start);
          timing::markOutput(x, layer.name);
          start = timing::now();
        }
        ++i;
        x = maxPoolRelu(layers_[i], x, training, i == output);  // max-pool-relu.cc
        if (timed) {
          timing::forward(layers_[i].name, start);
          timing::markOutput(x, layers_[i].name);
        }
        continue;
      }
      x = forwardWithPolicy(layer, x, training || (augment && layer.kind == Kind::Augment), logits && i + 1 == to, i == output);
      if (timed) {
        timing::forward(layer.name, start);
        timing::markOutput(x, layer.name);
      }
    } catch (const std::exception& e) {
      throw std::runtime_error("layer '" + layer.name + "' (" + layer.className + ") on input " + shapeString(x.sizes()) + ": " +
                               describe(e));
    }
  }
  return x;  // in the last layer's compute dtype: forward() hands float32 on
}

bool Model::outputIsLogitsFor(Loss loss) const {
  // Keras computes crossentropy from the logits when the output comes straight from a sigmoid or
  // softmax: numerically stable, and what makes results match Keras's.
  if (layers_.empty()) return false;
  const Layer& last = layers_.back();
  if (loss == Loss::BinaryCrossentropy) return endsWith(last, Act::Sigmoid);
  if (loss == Loss::CategoricalCrossentropy || loss == Loss::SparseCategoricalCrossentropy) return endsWith(last, Act::Softmax);
  return false;
}

std::pair<torch::Tensor, int64_t> Model::lossAndCorrect(const torch::Tensor& out, const torch::Tensor& y, bool logits) const {
  const int64_t n = out.size(0);
  if (loss_ == Loss::BinaryCrossentropy) {
    if (out.dim() != 2 || out.size(1) != 1) {
      throw std::invalid_argument("binary_crossentropy needs an output of shape [batch, 1], got " + shapeString(out.sizes()));
    }
    if (y.numel() != n) throw std::invalid_argument("binary_crossentropy needs one label per example, got " + std::to_string(y.numel()) + " for " + std::to_string(n));
    torch::Tensor target = y.view({n, 1});
    torch::Tensor loss;
    torch::Tensor predicted;
    if (logits) {
      loss = torch::binary_cross_entropy_with_logits(out, target);
      predicted = out > 0;
    } else {
      const double eps = 1e-7;
      torch::Tensor p = out.clamp(eps, 1 - eps);
      loss = -(target * torch::log(p) + (1 - target) * torch::log(1 - p)).mean();
      predicted = out > 0.5;
    }
    int64_t correct = (predicted == (target > 0.5)).sum().item<int64_t>();
    return {loss, correct};
  }
  if (loss_ == Loss::CategoricalCrossentropy || loss_ == Loss::SparseCategoricalCrossentropy) {
    const bool sparse = loss_ == Loss::SparseCategoricalCrossentropy;
    const char* name = sparse ? "sparse_categorical_crossentropy" : "categorical_crossentropy";
    if (out.dim() != 2) throw std::invalid_argument(std::string(name) + " needs [batch, classes], got " + shapeString(out.sizes()));
    // Keras: from the logits, or from probabilities renormalised and clipped to [eps, 1 - eps]
    torch::Tensor logProbs = logits ? torch::log_softmax(out, 1) : torch::log((out / out.sum(1, true)).clamp(1e-7, 1 - 1e-7));
    if (sparse) {
      if (y.numel() != n) throw std::invalid_argument("sparse_categorical_crossentropy needs one class index per example, got " + std::to_string(y.numel()) + " labels for " + std::to_string(n));
      torch::Tensor target = y.to(torch::kLong);
      int64_t correct = (out.argmax(1) == target).sum().item<int64_t>();
      return {torch::nll_loss(logProbs, target), correct};
    }
    if (y.numel() != out.numel()) {
      throw std::invalid_argument("categorical_crossentropy needs one-hot labels of shape " + shapeString(out.sizes()) + ", got " + std::to_string(y.numel()) + " values");
    }
    torch::Tensor target = y.view(out.sizes());
    torch::Tensor loss = -(target * logProbs).sum(1).mean();
    int64_t correct = (out.argmax(1) == target.argmax(1)).sum().item<int64_t>();
    return {loss, correct};
  }
  throw std::logic_error("compile() the model before training or evaluating");
}

size_t Model::slotCount() const {
  const OptimizerConfig& o = optimizer_;
  switch (o.kind) {
    case Optimizer::Adam: return 2;
    case Optimizer::SGD: return o.momentum > 0 ? 1 : 0;
    case Optimizer::RMSprop: return 1 + (o.centered ? 1 : 0) + (o.momentum > 0 ? 1 : 0);
  }
  return 0;
}

void Model::applyGradients() {
  // Keras's update rules, slot for slot, so results and saved states match Keras's.
  torch::NoGradGuard noGrad;
  ++iterations_;
  const OptimizerConfig& o = optimizer_;
  const double t = static_cast<double>(iterations_);
  // Keras's Adam: epsilon is "epsilon hat", added to sqrt(v) with the bias correction folded into
  // the step size (libtorch's Adam adds eps after bias correction, a different update).
  const double alpha = o.learningRate * std::sqrt(1 - std::pow(o.beta2, t)) / (1 - std::pow(o.beta1, t));
  const size_t slots = slotCount();
  for (size_t li = 0; li < layers_.size(); ++li) {
    Layer& layer = layers_[li];
    for (size_t k = 0; k < layer.params.size(); ++k) {
      torch::Tensor& p = layer.params[k];
      if (!p.requires_grad() || !p.grad().defined()) continue;
      torch::Tensor g = p.grad();
      auto it = slots_.find({li, k});
      if (it == slots_.end()) {
        std::vector<torch::Tensor> zeros;
        for (size_t s = 0; s < slots; ++s) zeros.push_back(torch::zeros_like(p));
        it = slots_.emplace(std::make_pair(li, k), std::move(zeros)).first;
      }
      std::vector<torch::Tensor>& s = it->second;
      switch (o.kind) {
        case Optimizer::Adam:
          s[0].mul_(o.beta1).add_(g, 1 - o.beta1);
          s[1].mul_(o.beta2).addcmul_(g, g, 1 - o.beta2);
          p.addcdiv_(s[0], s[1].sqrt().add_(o.epsilon), -alpha);
          break;
        case Optimizer::SGD:
          if (slots == 0) {
            p.add_(g, -o.learningRate);
          } else {
            s[0].mul_(o.momentum).add_(g, -o.learningRate);  // velocity = momentum * velocity - lr * g
            if (o.nesterov) p.add_(s[0], o.momentum).add_(g, -o.learningRate);
            else p.add_(s[0]);
          }
          break;
        case Optimizer::RMSprop: {
          s[0].mul_(o.rho).addcmul_(g, g, 1 - o.rho);
          torch::Tensor denom;
          if (o.centered) {
            s[1].mul_(o.rho).add_(g, 1 - o.rho);
            // ms >= mg^2 holds exactly; the clamp only absorbs float rounding below zero
            denom = (s[0] - s[1] * s[1]).clamp_min_(0).sqrt_().add_(o.epsilon);
          } else {
            denom = s[0].sqrt().add_(o.epsilon);
          }
          if (o.momentum > 0) {
            torch::Tensor& v = s.back();
            v.mul_(o.momentum).addcdiv_(g, denom, o.learningRate);
            p.sub_(v);
          } else {
            p.addcdiv_(g, denom, -o.learningRate);
          }
          break;
        }
      }
      p.mutable_grad().reset();
    }
  }
}

StepResult Model::trainStep(const torch::Tensor& x, const torch::Tensor& y, size_t from, bool dataParallel) {
  if (loss_ == Loss::None) throw std::logic_error("compile() the model before fit/trainStep");
  StepResult result;
  torch::Tensor loss;
  // --- data parallel hook: a rank's shard of a small last batch may be empty; it still takes part
  if (!(dataParallel && x.size(0) == 0)) {
    bool logits = outputIsLogitsFor(loss_);
    torch::Tensor out = forward(x, from, layers_.size(), true, logits);
    auto [batchLoss, correct] = lossAndCorrect(out, y, logits);
    if (!batchLoss.requires_grad()) throw std::logic_error("no trainable weights after layer " + std::to_string(from) + ": nothing to train");
    loss = batchLoss;
    result.loss = loss.item<double>();
    result.correct = correct;
  }
  if (dataParallel) {
    // result becomes the global batch's; gradients are summed over the ranks while backward runs
    dist::StepReducer reducer(layers_, from, x.size(0), result.loss, result.correct);
    if (timing::enabled()) timing::backwardBegin();
    if (loss.defined() && std::isfinite(result.loss)) loss.backward();
    if (timing::enabled()) timing::backwardEnd();
    reducer.finish();
  } else {
    if (timing::enabled()) timing::backwardBegin();
    loss.backward();
    if (timing::enabled()) timing::backwardEnd();
  }
  // --- end of the data parallel hook
  // A NaN loss must not poison the weights: the caller stops and keeps the last good checkpoint.
  if (std::isfinite(result.loss)) {
    const double start = timing::now();
    applyGradients();
    if (timing::enabled()) timing::optimizer(start);
  }
  else {
    for (auto& layer : layers_) for (auto& p : layer.params) if (p.grad().defined()) p.mutable_grad().reset();
  }
  return result;
}

StepResult Model::evaluate(const torch::Tensor& x, const torch::Tensor& y, size_t from) {
  if (loss_ == Loss::None) throw std::logic_error("compile() the model before evaluate");
  c10::InferenceMode guard;
  bool logits = outputIsLogitsFor(loss_);
  torch::Tensor out = forward(x, from, layers_.size(), false, logits);
  auto [loss, correct] = lossAndCorrect(out, y, logits);
  StepResult result;
  result.loss = loss.item<double>();
  result.correct = correct;
  if (logits) out = loss_ == Loss::BinaryCrossentropy ? torch::sigmoid(out) : torch::softmax(out, 1);
  result.output = toKerasOutput(out);
  return result;
}

torch::Tensor Model::predict(const torch::Tensor& x, size_t from, size_t to, bool augment) {
  c10::InferenceMode guard;
  return toKerasOutput(forward(x, from, to, false, false, augment));
}

namespace {

struct CallArgs {
  torch::Tensor x;
  torch::Tensor y;
  Napi::Object keepAlive;
};

CallArgs readCall(const Napi::CallbackInfo& info, bool withLabels, bool allowEmpty = false) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "x must be a Uint8Array or Float32Array");
  CallArgs args;
  args.keepAlive = Napi::Object::New(env);
  args.keepAlive.Set("x", info[0]);
  args.keepAlive.Set("self", info.This());
  try {
    args.x = viewInput(info[0].As<Napi::TypedArray>(), shapeArg(info[1], "shape"));
    if (withLabels) {
      if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
        throw std::invalid_argument("y must be a Float32Array of labels (class indices, or one-hot rows)");
      }
      auto y = info[2].As<Napi::Float32Array>();
      // one label per example, or one row per example (one-hot): the loss checks which it needs
      const int64_t count = static_cast<int64_t>(y.ElementLength());
      const int64_t n = args.x.size(0);
      const bool empty = allowEmpty && n == 0 && count == 0;  // a data-parallel rank's empty shard
      if (!empty && (count == 0 || count % n != 0)) {
        throw std::invalid_argument("x has " + std::to_string(args.x.size(0)) + " examples but y has " + std::to_string(count) + " values");
      }
      args.y = torch::from_blob(y.Data(), {static_cast<int64_t>(y.ElementLength())}, torch::kFloat32);
      args.keepAlive.Set("y", info[2]);
    }
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, describe(e));
  }
  return args;
}

void checkInputShape(Napi::Env env, const std::vector<Layer>& layers, size_t from, const torch::Tensor& x) {
  if (from >= layers.size() || layers[from].inputShape.empty()) return;
  const auto& expected = layers[from].inputShape;
  std::vector<int64_t> got(x.sizes().begin() + 1, x.sizes().end());
  if (got != expected) {
    throw Napi::Error::New(env, "layer '" + layers[from].name + "' expects inputs of shape [batch, " + shapeString(expected).substr(1) +
                                    " but got " + shapeString(x.sizes()));
  }
}

Napi::Object stepToJs(Napi::Env env, const StepResult& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("loss", r.loss);
  out.Set("correct", static_cast<double>(r.correct));
  if (r.output.defined()) {
    out.Set("output", toFloat32Array(env, r.output));
    out.Set("shape", shapeToJs(env, r.output.sizes()));
  }
  return out;
}

// Argument and busy errors reject the returned promise, like every other failure of these calls.
Napi::Value rejected(const Napi::Error& error) {
  auto deferred = Napi::Promise::Deferred::New(error.Env());
  deferred.Reject(error.Value());
  return deferred.Promise();
}

}  // namespace

Napi::Value Model::TrainStep(const Napi::CallbackInfo& info) { return orReject(info, &Model::StartTrainStep); }
Napi::Value Model::Evaluate(const Napi::CallbackInfo& info) { return orReject(info, &Model::StartEvaluate); }
Napi::Value Model::Predict(const Napi::CallbackInfo& info) { return orReject(info, &Model::StartPredict); }

Napi::Value Model::orReject(const Napi::CallbackInfo& info, Napi::Value (Model::*start)(const Napi::CallbackInfo&)) {
  try {
    return (this->*start)(info);
  } catch (const Napi::Error& e) {
    return rejected(e);
  }
}

Napi::Value Model::StartTrainStep(const Napi::CallbackInfo& info) {
  const bool dataParallel = info[4].IsBoolean() && info[4].As<Napi::Boolean>().Value();
  CallArgs args = readCall(info, true, dataParallel);
  size_t from = layerIndex(info, 3);
  checkInputShape(info.Env(), layers_, from, args.x);
  acquire(info.Env());
  auto* worker = new PromiseWorker<StepResult>(
      info.Env(), this, args.keepAlive,
      [this, x = args.x, y = args.y, from, dataParallel]() { return trainStep(toModelInput(x.to(device_)), y.to(device_), from, dataParallel); },
      [](Napi::Env env, StepResult& r) -> Napi::Value { return stepToJs(env, r); });
  worker->Queue();
  return worker->promise();
}

Napi::Value Model::StartEvaluate(const Napi::CallbackInfo& info) {
  CallArgs args = readCall(info, true);
  size_t from = layerIndex(info, 3);
  checkInputShape(info.Env(), layers_, from, args.x);
  acquire(info.Env());
  auto* worker = new PromiseWorker<StepResult>(
      info.Env(), this, args.keepAlive,
      [this, x = args.x, y = args.y, from]() { return evaluate(toModelInput(x.to(device_)), y.to(device_), from); },
      [](Napi::Env env, StepResult& r) -> Napi::Value { return stepToJs(env, r); });
  worker->Queue();
  return worker->promise();
}

Napi::Value Model::StartPredict(const Napi::CallbackInfo& info) {
  CallArgs args = readCall(info, false);
  size_t from = layerIndex(info, 2);
  size_t to = layerIndex(info, 3);
  checkInputShape(info.Env(), layers_, from, args.x);
  bool augment = info[4].IsBoolean() && info[4].As<Napi::Boolean>().Value();  // augmentation layers draw (feature caches of augmented passes)
  if (to < from) throw Napi::RangeError::New(info.Env(), "predict: `to` layer comes before `from`");
  acquire(info.Env());
  auto* worker = new PromiseWorker<torch::Tensor>(
      info.Env(), this, args.keepAlive,
      [this, x = args.x, from, to, augment]() { return predict(toModelInput(x.to(device_)), from, to, augment); },
      [](Napi::Env env, torch::Tensor& out) -> Napi::Value {
        Napi::Object result = Napi::Object::New(env);
        result.Set("output", toFloat32Array(env, out));
        result.Set("shape", shapeToJs(env, out.sizes()));
        return result;
      });
  worker->Queue();
  return worker->promise();
}

Napi::Value Model::GetOptimizerState(const Napi::CallbackInfo& info) {
  ensureIdle(info.Env(), "getOptimizerState");
  Napi::Env env = info.Env();
  Napi::Object state = Napi::Object::New(env);
  state.Set("optimizer", optimizerName(optimizer_.kind));
  state.Set("iterations", static_cast<double>(iterations_));
  Napi::Array entries = Napi::Array::New(env);
  uint32_t n = 0;
  for (const auto& [key, tensors] : slots_) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("layer", static_cast<double>(key.first));
    e.Set("param", static_cast<double>(key.second));
    Napi::Array slots = Napi::Array::New(env, tensors.size());
    for (uint32_t s = 0; s < tensors.size(); ++s) slots.Set(s, toFloat32Array(env, tensors[s]));
    e.Set("slots", slots);
    entries.Set(n++, e);
  }
  state.Set("moments", entries);
  return state;
}

void Model::SetOptimizerState(const Napi::CallbackInfo& info) {
  ensureIdle(info.Env(), "setOptimizerState");
  Napi::Env env = info.Env();
  Napi::Object state = info[0].As<Napi::Object>();
  try {
    std::string saved = state.Get("optimizer").ToString().Utf8Value();
    if (saved != optimizerName(optimizer_.kind)) {
      throw std::invalid_argument(std::string("the optimizer state is ") + saved + "'s but the model is compiled with " + optimizerName(optimizer_.kind) +
                                  ": compile with the same optimizer to restore it");
    }
    std::map<std::pair<size_t, size_t>, std::vector<torch::Tensor>> restored;
    Napi::Array entries = state.Get("moments").As<Napi::Array>();
    for (uint32_t i = 0; i < entries.Length(); ++i) {
      Napi::Object e = entries.Get(i).As<Napi::Object>();
      size_t li = e.Get("layer").As<Napi::Number>().Uint32Value();
      size_t k = e.Get("param").As<Napi::Number>().Uint32Value();
      if (li >= layers_.size() || k >= layers_[li].params.size()) throw std::invalid_argument("optimizer state names a weight the model does not have");
      auto shape = layers_[li].params[k].sizes().vec();
      std::string what = "optimizer state of layer '" + layers_[li].name + "'";
      Napi::Array slots = e.Get("slots").As<Napi::Array>();
      if (slots.Length() != slotCount()) {
        throw std::invalid_argument(what + " has " + std::to_string(slots.Length()) + " slots, the compiled optimizer keeps " + std::to_string(slotCount()) +
                                    ": compile with the settings it was saved with");
      }
      std::vector<torch::Tensor> tensors;
      for (uint32_t s = 0; s < slots.Length(); ++s) tensors.push_back(fromFloat32Array(slots.Get(s), shape, what).to(device_));
      restored[{li, k}] = std::move(tensors);
    }
    iterations_ = state.Get("iterations").As<Napi::Number>().Int64Value();
    slots_ = std::move(restored);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, describe(e));
  }
}

}  // namespace tl
