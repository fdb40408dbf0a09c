// A model's first block, Conv2D(relu) on an input with few channels (an image's RGB) followed by a
// 2x2 MaxPooling2D, as one autograd function: relu(maxpool(conv(x) + b)) computed a pooled row at a
// time without materialising the conv output (at 300x300 with 32 filters and batch 64, 727 MB in
// float32 that today's path writes, reads back, and mirrors with a gradient of the same size).
// Forward keeps a byte per pooled output (which of the 4 positions won, or "blocked" by the relu);
// backward rebuilds the conv output's gradient a row at a time and sums the weight and bias
// gradients in float32 (the input needs none: the model's first convolution).
//
// float32: products summed in float32 (the order differs from oneDNN's: results agree to float32
// rounding). mixed_bfloat16: exactly as autocast defines the convolution: input, kernel and bias
// rounded to bfloat16, products summed in float32 (a product of two bfloat16 values is exact in
// float32), plus the bias, the sum rounded to bfloat16 (nearest even); the pool then compares those
// bfloat16 values, so the winner is the one libtorch's max_pool2d picks on the bfloat16 conv output.
// The weight and bias gradients are float32 sums of the bfloat16 input times the bfloat16 output
// gradient, as few-channel-conv.h computes them.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <cstdint>
#include <memory>

#include "amx.h"
#include "layers.h"

namespace tl {

// Whether the pair (conv, pool) on `input` takes this path: a Conv2D (not depthwise, groups 1,
// strides and dilation 1, relu) on a CPU float32 or bfloat16 input of at most 4 channels that needs
// no gradient, kernel width x channels <= 12, any padding; a 2x2 MaxPooling2D of stride 2, 'valid',
// under the conv's dtype policy and not the model's output; the switch below on.
bool fewChannelBlockApplies(const Layer& conv, const Layer& pool, const torch::Tensor& input, bool poolIsOutput);

// relu(maxpool(conv(input))) in the conv's compute dtype (NCHW, channels-last), differentiable in
// the conv's weight and bias when they need gradients (and grad mode is on).
torch::Tensor fewChannelBlock(const Layer& conv, const torch::Tensor& input);

// A few-channel Conv2D without a pool after it (VGG16's first) in mixed_bfloat16 inference, on the
// same AMX tiles as the block's forward: AMX enabled, 3x3, strides, dilation and groups 1, at most 4
// channels, a CPU float32 or bfloat16 input that needs no gradient. oneDNN ran it at a tenth of
// its larger convolutions' rate (3 channels fill its blocks poorly).
bool fewChannelConvAmxApplies(const Layer& conv, const torch::Tensor& input);

// conv(input) + bias, relu when `relu`, rounded to bfloat16 once (NCHW-logical, channels-last).
torch::Tensor fewChannelConvAmx(const Layer& conv, const torch::Tensor& input, bool relu);

// VGG16's first convolution as the row source of the pair after it: conv-pool-amx.cc runs block 1
// whole on tiles, so the conv's output (the pass's largest activation) is never stored.
// fewChannelConvAmx's arithmetic, a few output rows at a time (where fewChannelConvAmxApplies).
class FewChannelConvRows {
 public:
  // the input rounded and padded once, the kernel packed
  FewChannelConvRows(const Layer& conv, const torch::Tensor& input, bool relu);
  ~FewChannelConvRows();
  int64_t height() const;  // the conv output's
  int64_t width() const;
  // the tiles rows() needs, loaded on the calling thread first (amx::TileScope or amx::loadTiles)
  const amx::TileConfig& tiles() const;
  // Output rows [begin, end) of image n into dst: row y at dst + (y - begin) * rowStride, column x's
  // filters at + x * filters, bfloat16 bits.
  void rows(int64_t n, int64_t begin, int64_t end, uint16_t* dst, int64_t rowStride) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// info().amxFewChannelConvCalls: convolutions run by fewChannelConvAmx (tests check the path)
void addFewChannelConvAmxInfo(Napi::Object& out);

namespace firstBlock {
// setFirstBlockFusion(on): tests and A/B benches switch this path off (the conv, then max-pool-relu;
// in mixed_bfloat16 inference the conv alone may still run on tiles: setAmx(false) for oneDNN's)
void addExports(Napi::Env env, Napi::Object exports);
}  // namespace firstBlock

}  // namespace tl
