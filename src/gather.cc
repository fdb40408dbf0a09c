#include "gather.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "allocator.h"

namespace tl::gather {

namespace {

constexpr size_t kMaxExternalBytes = size_t{1} << 32;

// One libuv task per batch: a shuffled batch used to be one positioned read (and one promise)
// per record, 64 tasks queued on the pool in front of the engine's step.
class GatherWorker : public Napi::AsyncWorker {
 public:
  GatherWorker(Napi::Env env, int fd, std::vector<int64_t> offsets, size_t recordBytes, Napi::TypedArray out)
      : Napi::AsyncWorker(env, "transferlab:gather"), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd),
        offsets_(std::move(offsets)), recordBytes_(recordBytes),
        data_(static_cast<uint8_t*>(out.ArrayBuffer().Data()) + out.ByteOffset()) {
    out_ = Napi::Persistent(out.As<Napi::Object>());  // the buffer outlives the reads
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    size_t i = 0;
    while (i < offsets_.size()) {
      // records adjacent in the file (unshuffled or by chance) are read with one call
      size_t run = 1;
      while (i + run < offsets_.size() && offsets_[i + run] == offsets_[i] + static_cast<int64_t>(run * recordBytes_)) ++run;
      if (!readAll(data_ + i * recordBytes_, run * recordBytes_, offsets_[i])) return;
      i += run;
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  bool readAll(uint8_t* target, size_t length, int64_t position) {
    size_t done = 0;
    while (done < length) {
      ssize_t got = pread(fd_, target + done, length - done, static_cast<off_t>(position + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        SetError(std::string("read failed at byte ") + std::to_string(position + done) + ": " + std::strerror(errno));
        return false;
      }
      if (got == 0) {
        SetError("ended early (at byte " + std::to_string(position + done) + ")");
        return false;
      }
      done += static_cast<size_t>(got);
    }
    return true;
  }

  Napi::Promise::Deferred deferred_;
  int fd_;
  std::vector<int64_t> offsets_;
  size_t recordBytes_;
  uint8_t* data_;
  Napi::ObjectReference out_;
};

Napi::Value GatherRecords(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      !info[2].IsNumber() || !info[3].IsTypedArray()) {
    throw Napi::TypeError::New(env, "gatherRecords(fd, offsets: Float64Array, recordBytes, out: TypedArray)");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto offsets = info[1].As<Napi::Float64Array>();
  int64_t recordBytes = info[2].As<Napi::Number>().Int64Value();
  auto out = info[3].As<Napi::TypedArray>();
  if (recordBytes <= 0 || out.ByteLength() != offsets.ElementLength() * static_cast<size_t>(recordBytes)) {
    throw Napi::RangeError::New(env, "gatherRecords: out must hold exactly offsets.length records of recordBytes bytes");
  }
  std::vector<int64_t> positions(offsets.ElementLength());
  for (size_t i = 0; i < positions.size(); ++i) {
    double p = offsets[i];
    if (!(p >= 0)) throw Napi::RangeError::New(env, "gatherRecords: offsets must be >= 0");
    positions[i] = static_cast<int64_t>(p);
  }
  auto* worker = new GatherWorker(env, fd, std::move(positions), static_cast<size_t>(recordBytes), out);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// A batch's memory, uninitialized, from the engine's block cache, back there when the ArrayBuffer is
// collected (V8 counts an external backing store's bytes, so batches still drive collections). A
// fresh zeroed ArrayBuffer of a batch (10.6 MB of VGG16 features) faults its pages in on every
// batch, in the gather that fills it: 4.5 ms per batch against 0.9 ms into mapped pages.
Napi::Value BatchBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double requested = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(requested >= 0) || requested > 9007199254740991.0 || requested != static_cast<double>(static_cast<int64_t>(requested))) {
    throw Napi::RangeError::New(env, "batchBuffer(bytes): bytes must be an integer >= 0");
  }
  const auto bytes = static_cast<size_t>(requested);
  // V8's own memory (zeroed) where an external one cannot be made: none for an empty shard of a
  // batch, and above Node 20's largest external buffer (Node frees the data and then fails there)
  if (bytes == 0 || bytes > kMaxExternalBytes) return Napi::ArrayBuffer::New(env, bytes);
  void* data = nullptr;
  try {
    data = allocateBlock(bytes);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("batchBuffer: ") + e.what());
  }
  try {
    return Napi::ArrayBuffer::New(env, data, bytes, [](Napi::Env, void* block) { releaseBlock(block); });
  } catch (const Napi::Error&) {
    // a runtime without external buffers (a sandboxed V8): the finalizer never runs
    releaseBlock(data);
    return Napi::ArrayBuffer::New(env, bytes);
  }
}

}  // namespace

void addExports(Napi::Env env, Napi::Object exports) {
  exports.Set("gatherRecords", Napi::Function::New(env, GatherRecords));
  exports.Set("batchBuffer", Napi::Function::New(env, BatchBuffer));
}

}  // namespace tl::gather
