// mixed_bfloat16 Conv2D training on AMX: the forward and the input gradient are today's (libtorch's
// bfloat16 convolution), the weight and bias gradients are summed on AMX tiles, because oneDNN's
// bfloat16 backward-weights kernel is the slow part of a mixed_bfloat16 CNN step.
//
// dW[o][c][kh][kw] = sum over n, y, x of X[n][y + kh - top][x + kw - left][c] * G[n][y][x][o] with X
// the bfloat16 input and G the bfloat16 output gradient: each product is exact in float32 and the
// products are summed in float32 (tdpbf16ps; today oneDNN sums into a bfloat16 weight gradient that
// is then cast up, so the two differ by bfloat16 rounding). db[o] = the float32 sum of G. The tiles
// flush bfloat16 denormal inputs and float32 denormal results to zero. Tiles also multiply padding
// columns and a block's leftover rows by a zero gradient: an Inf or NaN input can make more kernel
// taps NaN than the exact sum would (the loss is NaN then anyway).
#pragma once
#include <torch/torch.h>

#include <vector>

#include "layers.h"

namespace tl {

// Whether Conv2D `L` on `input` takes this path: a mixed_bfloat16 layer on the CPU with AMX enabled
// (amx::enabled(): not switched off by setAmx(false)), not depthwise, groups, strides and dilation
// 1, any kernel size and padding, input channels and filters multiples of 16, grad mode on and the
// kernel needing a gradient.
bool convWeightGradientAmxApplies(const Layer& L, const torch::Tensor& input);

// The layer's bfloat16 convolution (no activation) of `input` with symmetric `padding` {top, left}
// (asymmetric padding already applied to `input`), differentiable as above.
torch::Tensor convWeightGradientAmx(const Layer& L, const torch::Tensor& input, const std::vector<int64_t>& padding);

}  // namespace tl
