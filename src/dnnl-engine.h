// What both oneDNN paths (dnnl-conv.cc: inference, dnnl-conv-train.cc: float32 Winograd training)
// share: the one CPU engine, and a dims shorthand. Only with TL_WITH_DNNL.
#pragma once
#ifdef TL_WITH_DNNL
#include <dnnl.hpp>

#include <cstdint>
#include <initializer_list>

namespace tl {
namespace dnnlconv {

// oneDNN's CPU engine, made once for the process (inline: one instance across both files).
inline dnnl::engine& cpu() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

inline dnnl::memory::dims dims(std::initializer_list<int64_t> values) { return dnnl::memory::dims(values); }

}  // namespace dnnlconv
}  // namespace tl
#endif
