// The NCCL process group, for ranks whose model is on a CUDA GPU. Kept apart from distributed.cc:
// it is compiled only in CUDA builds with NCCL's header (TL_WITH_CUDA and USE_C10D_NCCL, set by
// binding.gyp through scripts/find-libtorch.mjs); other builds get the same functions, which say why
// NCCL is missing and what to do.
#pragma once
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/torch.h>

#include <chrono>

namespace tl::dist {

// Whether this engine can make an NCCL process group.
bool ncclBuilt();

// Throws std::invalid_argument saying why NCCL is missing and what to do, unless ncclBuilt().
void requireNccl();

// Makes this thread work on `device` (a CUDA GPU) and connects an NCCL group on the store. The
// communicators themselves are made by the first collective, on the device of its tensors.
c10::intrusive_ptr<c10d::ProcessGroup> makeNcclGroup(const c10::intrusive_ptr<c10d::Store>& store, int rank, int worldSize,
                                                     std::chrono::milliseconds timeout, const torch::Device& device);

// Makes `device` the calling thread's current CUDA device (CUDA's current device is per thread, and
// the engine works on several threads); nothing for the CPU.
void setCurrentDevice(const torch::Device& device);

}  // namespace tl::dist
