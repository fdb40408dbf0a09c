// What both oneDNN paths (dnnl-conv.cc: inference, dnnl-conv-train.cc: float32 Winograd training)
// share: the one CPU engine, a dims shorthand, the runner that moves tensors between the engine's
// layouts and a primitive's, and the error they report. Only with TL_WITH_DNNL.
#pragma once
#ifdef TL_WITH_DNNL
#include <dnnl.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "layers.h"

namespace tl {
namespace dnnlconv {

using dnnl::memory;
using Tag = memory::format_tag;
using DT = memory::data_type;

// oneDNN's CPU engine, made once for the process (inline: one instance across both files).
inline dnnl::engine& cpu() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

inline dnnl::memory::dims dims(std::initializer_list<int64_t> values) { return dnnl::memory::dims(values); }

inline torch::Tensor bytes(size_t n) { return torch::empty({static_cast<int64_t>(n)}, torch::dtype(torch::kUInt8)); }

// Activations are 4-D channels-last tensors, or 5-D [N][C/16][H][W][16] ones in Winograd's blocked
// layout (nChw16c) while a stretch of float32 layers carries them (blocked-stretch.cc).
inline Tag tagOf(const torch::Tensor& t) { return t.dim() == 5 ? Tag::nChw16c : Tag::nhwc; }
inline int64_t channelsOf(const torch::Tensor& t) { return t.dim() == 5 ? t.size(1) * t.size(4) : t.size(1); }
// dense in its own layout
inline torch::Tensor dense(const torch::Tensor& t) { return t.dim() == 5 ? t.contiguous() : t.contiguous(at::MemoryFormat::ChannelsLast); }
// a new activation of logical dims `d` (N, C, H, W), blocked or channels-last
inline torch::Tensor emptyActivation(const memory::dims& d, const torch::TensorOptions& options, bool blocked) {
  return blocked ? torch::empty({d[0], d[1] / 16, d[2], d[3], 16}, options)
                 : torch::empty({d[0], d[1], d[2], d[3]}, options.memory_format(at::MemoryFormat::ChannelsLast));
}

// Runs oneDNN calls on one stream. Blocked copies and scratchpads are torch memory: the caching
// allocator keeps them mapped (oneDNN's own allocation page-faulted hundreds of MB in on every call),
// and each call passes a scratchpad of its own (primitives are made with scratchpad_mode::user: the
// library's is a per-thread global, and calls run on whichever libuv worker predicts or trains).
struct Runner {
  dnnl::stream stream{cpu()};
  std::vector<torch::Tensor> keep;  // buffers alive until wait()

  memory wrap(const memory::desc& desc, void* data) { return memory(desc, cpu(), data); }
  memory fresh(const memory::desc& desc) {
    keep.push_back(bytes(desc.get_size()));
    return memory(desc, cpu(), keep.back().data_ptr());
  }
  // `from` in layout `to` (itself when they match); `buffer`, when given, receives the copy's bytes
  // (left undefined when no copy was made)
  memory convert(memory from, const memory::desc& to, torch::Tensor* buffer = nullptr) {
    if (from.get_desc() == to) return from;
    memory out = fresh(to);
    if (buffer) *buffer = keep.back();
    dnnl::reorder(from, out).execute(stream, from, out);
    return out;
  }
  // runs `fill` on a buffer in layout `desc`, then copies it into `user` (directly when they match)
  template <typename Fill>
  void into(memory user, const memory::desc& desc, Fill fill) {
    if (user.get_desc() == desc) return fill(user);
    memory own = fresh(desc);
    fill(own);
    dnnl::reorder(own, user).execute(stream, own, user);
  }
  void run(const dnnl::primitive& p, std::unordered_map<int, memory> args, size_t scratch) {
    if (scratch > 0) args.emplace(DNNL_ARG_SCRATCHPAD, fresh(memory::desc(dims({static_cast<int64_t>(scratch)}), DT::u8, Tag::a)));
    p.execute(stream, args);
  }
};

// A oneDNN error, rethrown naming the pass ("convolution", "Winograd forward"), the shapes, `detail`
// (dtype, strides...), oneDNN's message and status, and the way around it.
[[noreturn]] inline void rethrow(const std::string& pass, c10::IntArrayRef input, c10::IntArrayRef weights, const std::string& detail,
                                 const dnnl::error& e) {
  throw std::runtime_error("oneDNN " + pass + " of input " + shapeString(input) + " with weights " + shapeString(weights) + detail +
                           " failed: " + e.what() + " (status " + std::to_string(static_cast<int>(e.status)) +
                           "); native().setDnnlConv(false) runs it through libtorch instead");
}

}  // namespace dnnlconv
}  // namespace tl
#endif
