#pragma once
#include <cstddef>
namespace tl {
// Installs the engine's CPU allocator into libtorch (see allocator.cc for why).
void installCachingAllocator();
struct AllocatorStats {
  size_t cachedBytes;
  size_t hits;
  size_t misses;
};
AllocatorStats allocatorStats();
}  // namespace tl
