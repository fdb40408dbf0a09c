// Model: a linear chain of layers with Keras-compatible training (Adam, SGD, RMSprop; crossentropy, accuracy).
// JS owns the description and the loop; this class owns the tensors and runs the math off the
// JS thread. One call at a time: a second call while one runs is an error, not a race.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <atomic>
#include <map>
#include <utility>
#include <vector>

#include "layers.h"

namespace tl {

enum class Loss { None, BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy };

enum class Optimizer { Adam, SGD, RMSprop };

// Keras's settings; JS passes every value, these are Keras's defaults for Adam.
struct OptimizerConfig {
  Optimizer kind = Optimizer::Adam;
  double learningRate = 1e-3, epsilon = 1e-7;
  double beta1 = 0.9, beta2 = 0.999;  // Adam
  double momentum = 0.0;              // SGD, RMSprop
  bool nesterov = false;              // SGD
  double rho = 0.9;                   // RMSprop
  bool centered = false;              // RMSprop
};

struct StepResult {
  double loss = 0.0;
  int64_t correct = 0;
  torch::Tensor output;  // probabilities (evaluate) or outputs (predict), Keras layout
};

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Model(const Napi::CallbackInfo& info);

  // Called from worker threads while busy_ is held.
  // dataParallel: average the step over the process group (distributed.cc) before the update.
  StepResult trainStep(const torch::Tensor& x, const torch::Tensor& y, size_t from, bool dataParallel = false);
  StepResult evaluate(const torch::Tensor& x, const torch::Tensor& y, size_t from);
  torch::Tensor predict(const torch::Tensor& x, size_t from, size_t to, bool augment = false);

  void release() { busy_.store(false); }
  // distributed.cc: the weights to broadcast from rank 0
  std::vector<Layer>& layers() { return layers_; }

 private:
  Napi::Value GetWeights(const Napi::CallbackInfo& info);
  void SetWeights(const Napi::CallbackInfo& info);
  void SetTrainable(const Napi::CallbackInfo& info);
  void SetDtypePolicy(const Napi::CallbackInfo& info);
  void Compile(const Napi::CallbackInfo& info);
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value Predict(const Napi::CallbackInfo& info);
  Napi::Value StartTrainStep(const Napi::CallbackInfo& info);
  Napi::Value StartEvaluate(const Napi::CallbackInfo& info);
  Napi::Value StartPredict(const Napi::CallbackInfo& info);
  Napi::Value orReject(const Napi::CallbackInfo& info, Napi::Value (Model::*start)(const Napi::CallbackInfo&));
  Napi::Value GetOptimizerState(const Napi::CallbackInfo& info);
  void SetOptimizerState(const Napi::CallbackInfo& info);
  Napi::Value GradCam(const Napi::CallbackInfo& info);  // gradcam.cc
  // learning-rate hook (src/learning-rate.cc)
  void SetLearningRate(const Napi::CallbackInfo& info);
  Napi::Value GetIterations(const Napi::CallbackInfo& info);

  void acquire(Napi::Env env);
  void ensureIdle(Napi::Env env, const char* what) const;
  size_t layerIndex(const Napi::CallbackInfo& info, size_t arg) const;
  // `augment`: random preprocessing layers draw as in training while everything else infers.
  // Layers no gradient flows through run a chunk of rows at a time (src/chunked-forward.cc).
  torch::Tensor forward(const torch::Tensor& x, size_t from, size_t to, bool training, bool logits, bool augment = false);
  // layers [from, to) on the whole batch; the output in the last layer's compute dtype
  torch::Tensor forwardLayers(const torch::Tensor& x, size_t from, size_t to, bool training, bool logits, bool augment);
  bool outputIsLogitsFor(Loss loss) const;
  std::pair<torch::Tensor, int64_t> lossAndCorrect(const torch::Tensor& out, const torch::Tensor& y, bool logits) const;
  void applyGradients();
  size_t slotCount() const;

  std::vector<Layer> layers_;
  Loss loss_ = Loss::None;
  OptimizerConfig optimizer_;
  int64_t iterations_ = 0;
  // (layer, param) -> the optimizer's slots: Adam (m, v); SGD (velocity) with momentum;
  // RMSprop (mean square[, mean gradient if centered][, momentum if momentum > 0]).
  std::map<std::pair<size_t, size_t>, std::vector<torch::Tensor>> slots_;
  std::atomic<bool> busy_{false};
  // device: where the tensors live (src/device.cc); inputs move here, results back to the CPU
  torch::Device device_ = torch::kCPU;
};

}  // namespace tl
