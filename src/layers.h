// The layer interpreter: a model is a linear chain of Keras layers, already resolved by the
// TypeScript side (explicit paddings, input channel counts). Tensors are NCHW-logical with
// channels-last memory, so Keras's NHWC order is a free view wherever it matters (Flatten, I/O).
#pragma once
#include <napi.h>
#include <torch/torch.h>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "augment.h"

namespace tl {

enum class Kind { Conv2D, MaxPool, AvgPool, Flatten, Dense, Dropout, Activation, BatchNorm, ZeroPad, GlobalAvgPool, Reshape, Rescale, Augment };
enum class Act { Linear, Relu, Relu6, Sigmoid, Softmax, Tanh, LeakyRelu, Elu };

struct Layer {
  std::string name;
  std::string className;
  Kind kind = Kind::Activation;
  Act activation = Act::Linear;
  double alpha = 0.0;  // LeakyReLU slope / ELU alpha

  // Conv2D / DepthwiseConv2D
  int64_t inChannels = 0, filters = 0, groups = 1, depthMultiplier = 1;
  bool depthwise = false, useBias = true;
  std::vector<int64_t> kernel{1, 1}, strides{1, 1}, dilation{1, 1};
  std::vector<int64_t> pad{0, 0, 0, 0};  // top, bottom, left, right (TensorFlow pads more after)
  // pooling
  std::vector<int64_t> pool{2, 2};
  // Dense
  int64_t inFeatures = 0, units = 0;
  // Dropout
  double rate = 0.0;
  // BatchNormalization
  double epsilon = 1e-3;
  double momentum = 0.99;  // Keras: moving = moving * momentum + batch * (1 - momentum)
  bool center = true, scale = true;
  // Reshape (Keras shape without the batch axis, NHWC)
  std::vector<int64_t> targetShape;
  // Rescale (preprocessing): optional RGB->BGR flip, then x * scale + offset[c]
  double rescale = 1.0;
  std::vector<double> offset;
  bool flipChannels = false;

  bool trainable = true;
  bool mixedBf16 = false;                // Keras dtype policy 'mixed_bfloat16' (src/precision.cc)
  std::vector<int64_t> inputShape;       // Keras shape (no batch axis) this layer accepts, when known
  std::vector<torch::Tensor> params;     // engine layout (conv OIHW; dense [in, out])
  std::vector<bool> paramIsVariable;     // false for BatchNorm moving statistics
  torch::Tensor offsetTensor;            // Rescale offsets as [1, C, 1, 1]
  std::shared_ptr<AugmentSpec> augment;  // Augment: the random preprocessing layer (augment.cc)
  mutable std::shared_ptr<void> dnnlCache;  // Conv2D: oneDNN primitives and packed weights (dnnl-conv.cc)
  mutable std::shared_ptr<void> amxConvCache;  // Conv2D: the kernel packed for AMX tiles (conv-pool-amx.cc)

  std::vector<int64_t> kerasShape(size_t i) const;  // shape of params[i] in Keras layout
};

Layer parseLayer(const Napi::Object& spec);
void initParams(Layer& layer);  // Keras initialisers: glorot_uniform kernels, zero biases
void applyTrainable(Layer& layer);
torch::Tensor forwardLayer(const Layer& layer, const torch::Tensor& x, bool training, bool skipActivation);
bool endsWith(const Layer& layer, Act act);
torch::Tensor activate(const torch::Tensor& x, Act act, double alpha);  // the layer's output goes through `act` last

torch::Tensor toKeras(const Layer& layer, size_t i, const torch::Tensor& engineParam);
torch::Tensor fromKeras(const Layer& layer, size_t i, const torch::Tensor& kerasParam);

std::string shapeString(c10::IntArrayRef sizes);
// Whether running `layer` on `x` must record a gradient (grad mode on, and x or a weight wants one):
// the engine's own forward-only kernels decline then, its training ones decline otherwise.
bool needsGradient(const Layer& layer, const torch::Tensor& x);
// What the hand-written convolution kernels take: a Conv2D (not depthwise) with groups, strides and
// dilation 1; a MaxPooling2D 2x2 of stride 2, 'valid'; a 4-D CPU float32 or bfloat16 input.
bool plainConv(const Layer& conv);
// A plainConv's output height and width on an input of height H and width W.
std::pair<int64_t, int64_t> plainConvOutput(const Layer& conv, int64_t H, int64_t W);
bool halvingPool(const Layer& pool);
bool kernelInput4d(const torch::Tensor& x);

// A layer's bias as the input of a custom autograd Function: libtorch 1.13's Function::apply throws
// on an undefined tensor ("tensor does not have a device"), so a layer without one passes an empty
// tensor, and the Function's forward takes it back as none (biasOrNone).
torch::Tensor functionBias(const Layer& layer);
inline torch::Tensor biasOrNone(const torch::Tensor& bias) { return bias.numel() > 0 ? bias : torch::Tensor(); }

}  // namespace tl
