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
// Uninitialized memory from the same cache (64-byte aligned), for buffers outside libtorch: a kept
// block's pages are already mapped, so filling it faults nothing in. Throws std::runtime_error
// when out of memory.
void* allocateBlock(size_t bytes);
void releaseBlock(void* p);
// Returns every cached block to the system (between workloads whose buffer sizes differ).
void emptyAllocatorCache();
}  // namespace tl
