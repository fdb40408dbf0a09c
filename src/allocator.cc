// A caching CPU allocator for libtorch. A training step allocates and frees the same large
// buffers (activations, gradients, oneDNN scratch) every step; glibc hands such blocks back to
// the kernel (mmap/munmap, per-thread arenas), so each step page-faults gigabytes in again: the
// 5 -> 52 img/s difference measured in docs/architecture.md. Large blocks freed here are kept, by size, and
// reused by the next step. Small blocks go straight to malloc, which serves them well.
// A request takes the smallest kept block that fits it, up to twice its size: an epoch's smaller last
// batch (and evaluation's) then reuses the full batch's blocks instead of faulting in a second set
// (for the experiment's CNN: 3 GiB more kept, and its first partial step 45% slower).
#include "allocator.h"

#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

namespace tl {
namespace {

constexpr size_t kAlignment = 64;             // what c10's default CPU allocator guarantees
constexpr size_t kLargeBlock = 1 << 20;       // cache blocks of 1 MiB and more
constexpr size_t kPage = 4096;
constexpr size_t kMaxBlockPerRequest = 2;    // a kept block serves requests of at least 1/2 its size

size_t cacheLimitBytes() {
  // Freed blocks kept for reuse; beyond this, the largest cached blocks go back to the system.
  if (const char* env = std::getenv("TRANSFERLAB_ALLOCATOR_CACHE_BYTES")) return std::stoull(env);
  return size_t(8) << 30;
}

class CachingAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    void* p = const_cast<CachingAllocator*>(this)->acquire(n);
    return {p, p, &CachingAllocator::release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &CachingAllocator::release; }

  static CachingAllocator& instance() {
    static CachingAllocator* allocator = new CachingAllocator();  // never destroyed: tensors may outlive statics
    return *allocator;
  }

  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {cached_, hits_, misses_};
  }

  void empty() { trimTo(0); }

  // allocate() and raw_deleter() without the DataPtr: also for memory outside libtorch (allocateBlock)
  void* acquire(size_t n) {
    if (n == 0) n = 1;
    const size_t size = roundUp(n);
    if (size >= kLargeBlock) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.lower_bound(size);
      if (it != free_.end() && it->first <= size * kMaxBlockPerRequest) {
        const size_t block = it->first;
        void* p = it->second.back();
        it->second.pop_back();
        if (it->second.empty()) free_.erase(it);
        cached_ -= block;
        ++hits_;
        live_[p] = block;
        return p;
      }
      ++misses_;
    }
    void* p = nullptr;
    if (posix_memalign(&p, kAlignment, size) != 0) {
      // Give the cache back and try once more before failing.
      trimTo(0);
      if (posix_memalign(&p, kAlignment, size) != 0) {
        throw std::runtime_error("out of memory: could not allocate " + std::to_string(size) + " bytes");
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    live_[p] = size;
    return p;
  }

  static void release(void* p) {
    if (!p) return;
    instance().give(p);
  }

 private:
  static size_t roundUp(size_t n) { return n < kLargeBlock ? n : (n + kPage - 1) / kPage * kPage; }

  void give(void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(p);
    size_t size = it == live_.end() ? 0 : it->second;
    if (it != live_.end()) live_.erase(it);
    if (size < kLargeBlock) {
      std::free(p);
      return;
    }
    free_[size].push_back(p);
    cached_ += size;
    if (cached_ > limit_) trimLocked(limit_);
  }

  void trimTo(size_t target) {
    std::lock_guard<std::mutex> lock(mutex_);
    trimLocked(target);
  }

  void trimLocked(size_t target) {
    // the largest blocks first
    while (cached_ > target && !free_.empty()) {
      auto it = std::prev(free_.end());
      std::free(it->second.back());
      it->second.pop_back();
      cached_ -= it->first;
      if (it->second.empty()) free_.erase(it);
    }
  }

  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;  // by block size, never an empty list
  std::unordered_map<void*, size_t> live_;
  size_t cached_ = 0, hits_ = 0, misses_ = 0;
  size_t limit_ = cacheLimitBytes();
};

}  // namespace

void installCachingAllocator() { c10::SetCPUAllocator(&CachingAllocator::instance(), /*priority=*/10); }

AllocatorStats allocatorStats() { return CachingAllocator::instance().stats(); }

void* allocateBlock(size_t bytes) { return CachingAllocator::instance().acquire(bytes); }

void releaseBlock(void* p) { CachingAllocator::release(p); }

void emptyAllocatorCache() { CachingAllocator::instance().empty(); }

}  // namespace tl
