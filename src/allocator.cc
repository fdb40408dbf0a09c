// A caching CPU allocator for libtorch. A training step allocates and frees the same large
// buffers (activations, gradients, oneDNN scratch) every step; glibc hands such blocks back to
// the kernel (mmap/munmap, per-thread arenas), so each step page-faults gigabytes in again: the
// 5 -> 52 img/s difference measured in docs/architecture.md. Large blocks freed here are kept, by size, and
// reused by the next step. Small blocks go straight to malloc, which serves them well.
#include "allocator.h"

#include <c10/core/CPUAllocator.h>

#include <cstdlib>
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

 private:
  static size_t roundUp(size_t n) { return n < kLargeBlock ? n : (n + kPage - 1) / kPage * kPage; }

  void* acquire(size_t n) {
    if (n == 0) n = 1;
    const size_t size = roundUp(n);
    if (size >= kLargeBlock) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= size;
        ++hits_;
        live_[p] = size;
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
    for (auto it = free_.begin(); it != free_.end() && cached_ > target;) {
      while (!it->second.empty() && cached_ > target) {
        std::free(it->second.back());
        it->second.pop_back();
        cached_ -= it->first;
      }
      it = it->second.empty() ? free_.erase(it) : std::next(it);
    }
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  std::unordered_map<void*, size_t> live_;
  size_t cached_ = 0, hits_ = 0, misses_ = 0;
  size_t limit_ = cacheLimitBytes();
};

}  // namespace

void installCachingAllocator() { c10::SetCPUAllocator(&CachingAllocator::instance(), /*priority=*/10); }

AllocatorStats allocatorStats() { return CachingAllocator::instance().stats(); }

}  // namespace tl
