#include "distributed-nccl.h"

#include <cstdlib>
#include <stdexcept>

#ifdef TL_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif
#if defined(TL_WITH_CUDA) && defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace tl::dist {

#ifdef TL_WITH_CUDA
void setCurrentDevice(const torch::Device& device) {
  if (device.is_cuda()) c10::cuda::set_device(device.index());
}
#else
void setCurrentDevice(const torch::Device&) {}
#endif

#if defined(TL_WITH_CUDA) && defined(USE_C10D_NCCL)

bool ncclBuilt() { return true; }

void requireNccl() {}

c10::intrusive_ptr<c10d::ProcessGroup> makeNcclGroup(const c10::intrusive_ptr<c10d::Store>& store, int rank, int worldSize,
                                                     std::chrono::milliseconds timeout, const torch::Device& device) {
  setCurrentDevice(device);
  // libtorch 1.13's NCCL group applies its timeout only with one of these set (read by its
  // constructor); without, a dead rank would hold the others forever. Async error handling, as
  // later PyTorch versions default to: a collective past the timeout stops the process.
  if (!std::getenv("NCCL_BLOCKING_WAIT") && !std::getenv("NCCL_ASYNC_ERROR_HANDLING")) setenv("NCCL_ASYNC_ERROR_HANDLING", "1", 0);
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, worldSize, options);
}

#else

bool ncclBuilt() { return false; }

void requireNccl() {
#ifdef TL_WITH_CUDA
  const char* why = "this engine was built against a CUDA libtorch but without NCCL's header (nccl.h)";
#else
  const char* why = "this engine was built against a CPU-only libtorch";
#endif
  throw std::invalid_argument(std::string("backend 'nccl' is not available: ") + why +
                              ". Rebuild it against a CUDA libtorch with NCCL (see docs/distributed.md), or use backend 'gloo'");
}

c10::intrusive_ptr<c10d::ProcessGroup> makeNcclGroup(const c10::intrusive_ptr<c10d::Store>&, int, int, std::chrono::milliseconds,
                                                     const torch::Device&) {
  requireNccl();
  return {};
}

#endif

}  // namespace tl::dist
