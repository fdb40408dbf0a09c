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
// Returns every cached block to the system (between workloads whose buffer sizes differ).
void emptyAllocatorCache();
}  // namespace tl
