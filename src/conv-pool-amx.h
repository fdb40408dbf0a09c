// A Conv2D(relu) + 2x2 MaxPooling2D pair of a frozen base (VGG16's blocks) in mixed_bfloat16
// inference, on AMX tiles: a direct convolution that reads the bfloat16 input rows where they lie
// (no im2col), then the pool, the bias and the ReLU applied to the float32 sums and one bfloat16
// store of the pooled output. The convolution's output, a block's largest activation, is never
// written: with oneDNN's convolution and a separate pool it is written once and read back.
//
// Numerics, as autocast defines the convolution: input, kernel and bias rounded to bfloat16,
// products summed in float32 (the tiles flush bfloat16 denormals to zero), plus the bias, rounded to
// bfloat16 (nearest even). Rounding is monotonic, so pooling before the rounding gives libtorch's
// max_pool2d of the bfloat16 convolution (NaN kept, as max_pool2d keeps it).
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include "layers.h"

namespace tl {

// Whether the pair (conv, pool) on `input` runs here: AMX enabled; a Conv2D (relu, strides,
// dilation and groups 1, not depthwise) under mixed_bfloat16 with 32..512 channels and filters in
// multiples of 32, on a 4-D CPU float32 or bfloat16 input that needs no gradient; a 2x2
// MaxPooling2D of stride 2, 'valid', under the same policy, not the model's output.
bool convPoolAmxApplies(const Layer& conv, const Layer& pool, const torch::Tensor& input, bool poolIsOutput);

// relu(maxpool(conv(input))) in bfloat16 (NCHW-logical, channels-last); the conv output's odd last
// row and column are dropped, as 'valid' pooling does.
torch::Tensor convPoolAmx(const Layer& conv, const torch::Tensor& input);

// VGG16's block 1 whole: a few-channel Conv2D (relu or linear) where fewChannelConvAmxApplies
// (few-channel-block.h), then a pair that convPoolAmxApplies would take on its output. The first
// conv's rows are computed into each work unit's input rows, so its output (at 300x300 and batch
// 16, 184 MB of bfloat16) is never written or read back. The same bits as the two run one after
// the other.
bool fewChannelConvIntoPairAmxApplies(const Layer& first, const Layer& conv, const Layer& pool, const torch::Tensor& input, bool poolIsOutput);
torch::Tensor fewChannelConvIntoPairAmx(const Layer& first, const Layer& conv, const torch::Tensor& input);

// info().amxConvPoolCalls, amxConvIntoPairCalls: pairs run here, alone or fed by a first conv
// (tests check that a case took this path)
void addConvPoolAmxInfo(Napi::Object& out);

}  // namespace tl
