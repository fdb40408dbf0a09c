#pragma once
#include <torch/torch.h>
#include <vector>
namespace tl {
// Max pooling without padding (callers pad with -inf first). Non-overlapping windows on
// channels-last tensors take a direct kernel whose backward writes the input gradient in one
// pass; other cases use libtorch's max_pool2d.
torch::Tensor maxPool2d(const torch::Tensor& x, const std::vector<int64_t>& pool, const std::vector<int64_t>& strides);
}  // namespace tl
