// The float32 weight-gradient reduction the hand-written kernels share (few-channel-conv.cc,
// few-channel-block.cc, conv-weight-gradient-amx.cc): rows split into a chunk per thread, each summed into a partial of its own,
// the partials summed at the end.
#pragma once
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <utility>

namespace tl::simd {

// Weight [O, C, KH, KW] (channels-last, like the layer's kernel) and bias [O] gradients, float32.
// `accumulate(acc, bias, begin, end)` adds rows [begin, end) of `rows` to acc [KH][KW][C][OP] and
// bias [OP] (OP: O rounded up to 16, O itself when it is a multiple of 16).
template <typename Accumulate>
std::pair<torch::Tensor, torch::Tensor> weightGradients(int64_t rows, int64_t KH, int64_t KW, int64_t C, int64_t O, int64_t OP,
                                                        const Accumulate& accumulate) {
  const int64_t accSize = KH * KW * C * OP;
  // one float32 accumulator per chunk of rows (a chunk per thread), summed at the end
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows));
  torch::Tensor partial = torch::zeros({chunks, accSize + OP});
  at::parallel_for(0, chunks, 1, [&](int64_t first, int64_t last) {
    for (int64_t c = first; c < last; ++c) {
      float* acc = partial.data_ptr<float>() + c * (accSize + OP);
      accumulate(acc, acc + accSize, rows * c / chunks, rows * (c + 1) / chunks);
    }
  });
  torch::Tensor total = partial.sum(0);
  // [KH][KW][C][OP] -> [O, C, KH, KW], stored channels-last
  torch::Tensor dW = total.narrow(0, 0, accSize).view({KH, KW, C, OP}).narrow(3, 0, O).permute({3, 2, 0, 1});
  return {dW.contiguous(at::MemoryFormat::ChannelsLast), total.narrow(0, accSize, O).clone()};
}

}  // namespace tl::simd
