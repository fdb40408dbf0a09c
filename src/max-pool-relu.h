// relu(max_pool2d(y)) as one autograd function, for a Conv2D(relu) + MaxPooling2D pair: a byte per
// output for each window's winner instead of an int64 index, the input not kept for backward, no
// zero-filled gradient, relu's backward folded in. Falls back to libtorch's max_pool2d + relu_ where unsupported.
#pragma once
#include <torch/torch.h>

#include "layers.h"

namespace tl {

// The pooling layer `pool` (under its dtype policy) followed by a ReLU, on the conv output `x`.
torch::Tensor maxPoolRelu(const Layer& pool, const torch::Tensor& x, bool training, bool isOutput);

// The kernels behind it, for pools on other layouts (blocked-stretch.cc's nChw16c).
namespace pooling {

// A k x k max pool of stride k, 'valid' (k 2 or 3), over channels in G groups of C: the input
// [N][G][H][W][C] (channels-last NHWC when G = 1, oneDNN's blocked nChw16c when C = 16), the winners
// [N][G][OH][OW][C], the output likewise or, with `channelsLastOut`, [N][OH][OW][G * C].
struct Shape {
  int64_t N, G, H, W, C, k;
  bool channelsLastOut;
  int64_t OH() const { return H / k; }
  int64_t OW() const { return W / k; }
};

// out = max_pool(x), then relu when `relu`, for dense float32 or bfloat16 x and out; `arg` (uint8)
// receives each window's winner (or that the relu blocked it) when defined. Tensors that do not
// match `s` are a c10::Error, not a wild read.
void forward(const Shape& s, const torch::Tensor& x, const torch::Tensor& out, const torch::Tensor& arg, bool relu);

// dx (x's shape and dtype) from the output gradient `grad` (out's): each output's gradient at its
// window's winner, 0 elsewhere; every element written once, those no window covers as 0.
void backward(const Shape& s, const torch::Tensor& arg, const torch::Tensor& grad, const torch::Tensor& dx);

}  // namespace pooling

}  // namespace tl
