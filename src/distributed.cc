#include "distributed.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "distributed-nccl.h"
#include "model.h"
#include "threads.h"

namespace tl::dist {

namespace {

struct Group {
  int rank = 0;
  int worldSize = 1;
  std::string address;
  int64_t bucketBytes = 25 * 1024 * 1024;  // DDP's default bucket_cap_mb
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  // NCCL: every collective's tensors on this rank's GPU (cuda:LOCAL_RANK); Gloo: where they are
  bool nccl = false;
  torch::Device device = torch::kCPU;
};

// One group per process, as torch.distributed's default group; the mutex guards init/destroy
// against a collective running on a worker thread.
std::mutex gMutex;
std::shared_ptr<Group> gGroup;

// The group, with the calling thread set to work on its device.
std::shared_ptr<Group> current() {
  std::shared_ptr<Group> g;
  {
    std::lock_guard<std::mutex> lock(gMutex);
    if (!gGroup) throw std::logic_error("no process group: call initDistributed() first");
    g = gGroup;
  }
  setCurrentDevice(g->device);
  return g;
}

// What a collective sends: NCCL sends only from this rank's GPU; Gloo takes CPU or CUDA tensors as they are.
torch::Tensor onGroupDevice(const Group& g, const torch::Tensor& t) { return g.nccl ? t.to(g.device) : t; }

// the first line, without a final period: the messages built from it go on after it
std::string firstLine(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  while (!line.empty() && (line.back() == '.' || line.back() == ' ')) line.pop_back();
  return line;
}

std::string errorText(const std::exception& e) {
  if (auto* c10error = dynamic_cast<const c10::Error*>(&e)) return firstLine(c10error->what_without_backtrace());
  return firstLine(e.what());
}

// c10d's errors say what failed but not where: name this rank and the rendezvous address.
[[noreturn]] void rethrowNamed(const Group& g, const std::string& what, const std::exception& e) {
  throw std::runtime_error("rank " + std::to_string(g.rank) + " of " + std::to_string(g.worldSize) + " (process group at " + g.address +
                           "): " + what + " failed: " + errorText(e) +
                           ". Another rank probably stopped or cannot reach this one; check every rank's output.");
}

void waitAll(const Group& g, const std::string& what, std::vector<c10::intrusive_ptr<c10d::Work>>& works) {
  try {
    for (auto& w : works) w->wait();
  } catch (const std::exception& e) {
    rethrowNamed(g, what, e);
  }
}

// Consecutive runs of `tensors` of about `cap` bytes (a larger tensor gets a bucket of its own).
std::vector<std::vector<size_t>> makeBuckets(const std::vector<torch::Tensor>& tensors, int64_t cap) {
  std::vector<std::vector<size_t>> buckets;
  int64_t bytes = cap;
  for (size_t i = 0; i < tensors.size(); ++i) {
    int64_t size = tensors[i].numel() * static_cast<int64_t>(tensors[i].element_size());
    if (buckets.empty() || bytes + size > cap) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(i);
    bytes += size;
  }
  return buckets;
}

// Flattens `tensors` into buckets of about g.bucketBytes, runs `collective` on each (all started
// before any is waited for, so Gloo pipelines them), and copies the results back.
void bucketed(const Group& g, const std::string& what, std::vector<torch::Tensor>& tensors,
              const std::function<c10::intrusive_ptr<c10d::Work>(std::vector<at::Tensor>&)>& collective) {
  torch::NoGradGuard noGrad;  // weights are moved as data, outside autograd
  const std::vector<std::vector<size_t>> buckets = makeBuckets(tensors, g.bucketBytes);
  std::vector<torch::Tensor> flat;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  try {
    for (const auto& bucket : buckets) {
      std::vector<torch::Tensor> parts;
      for (size_t i : bucket) parts.push_back(tensors[i].reshape({-1}));
      std::vector<at::Tensor> one{onGroupDevice(g, torch::cat(parts))};
      works.push_back(collective(one));
      flat.push_back(one[0]);
    }
  } catch (const std::exception& e) {
    rethrowNamed(g, what, e);
  }
  waitAll(g, what, works);
  for (size_t b = 0; b < buckets.size(); ++b) {
    int64_t offset = 0;
    for (size_t i : buckets[b]) {
      int64_t n = tensors[i].numel();
      tensors[i].copy_(flat[b].narrow(0, offset, n).view(tensors[i].sizes()));
      offset += n;
    }
  }
}

// The element-wise sum of `t` over all ranks, on the group's device (`t` itself with Gloo).
torch::Tensor allreduceOne(const Group& g, const torch::Tensor& t, const std::string& what) {
  std::vector<at::Tensor> one{onGroupDevice(g, t)};
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  try {
    works.push_back(g.pg->allreduce(one));
  } catch (const std::exception& e) {
    rethrowNamed(g, what, e);
  }
  waitAll(g, what, works);
  return one[0];
}

std::vector<double> allreduceSum(const Group& g, const std::vector<double>& values, const std::string& what = "all-reduce of metrics") {
  // on a GPU, the copy waits for the sum (wait() only orders the streams)
  const torch::Tensor sums = allreduceOne(g, torch::tensor(values, torch::kFloat64), what).cpu();
  auto a = sums.accessor<double, 1>();
  std::vector<double> out(values.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = a[i];
  return out;
}

}  // namespace

struct StepReducer::Impl {
  std::shared_ptr<Group> g;
  std::vector<torch::Tensor> params;         // trainable weights from `from` on, last layer first
  std::vector<std::vector<size_t>> buckets;  // indices into params
  std::vector<size_t> bucketOf;
  std::vector<torch::Tensor> ready;          // scaled gradients received from autograd
  std::vector<size_t> missing;               // per bucket: gradients still to come
  std::vector<torch::Tensor> flat;           // per launched bucket
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  std::vector<std::pair<size_t, unsigned>> hooks;  // (param, hook id)
  double weight = 0;
  bool active = false;

  // Starts buckets in order while the next one is complete (all ranks issue them identically).
  void launchReady(bool all) {
    while (works.size() < buckets.size() && (all || missing[works.size()] == 0)) {
      const auto& bucket = buckets[works.size()];
      std::vector<torch::Tensor> parts;
      for (size_t i : bucket) {
        parts.push_back(ready[i].defined() ? ready[i].reshape({-1}) : torch::zeros({params[i].numel()}, params[i].options()));
      }
      std::vector<at::Tensor> one{onGroupDevice(*g, torch::cat(parts))};
      try {
        works.push_back(g->pg->allreduce(one));
      } catch (const std::exception& e) {
        rethrowNamed(*g, "all-reduce of gradients", e);
      }
      flat.push_back(one[0]);
    }
  }
};

StepReducer::StepReducer(std::vector<Layer>& layers, size_t from, int64_t examples, double& loss, int64_t& correct)
    : impl_(std::make_unique<Impl>()) {
  Impl& r = *impl_;
  r.g = current();
  std::vector<double> sums = allreduceSum(*r.g, {examples > 0 ? loss * static_cast<double>(examples) : 0.0, static_cast<double>(correct),
                                                 static_cast<double>(examples)});
  const double total = sums[2];
  if (total <= 0) throw std::invalid_argument("data-parallel train step with no examples on any rank");
  loss = sums[0] / total;
  correct = static_cast<int64_t>(sums[1]);
  // A non-finite loss is the same on every rank: no rank all-reduces, every rank skips the update.
  r.active = std::isfinite(loss);
  if (!r.active) return;
  r.weight = static_cast<double>(examples) / total;
  // last layer first: backward produces those gradients first
  for (size_t li = layers.size(); li-- > from;) {
    for (size_t k = layers[li].params.size(); k-- > 0;) {
      if (layers[li].params[k].requires_grad()) r.params.push_back(layers[li].params[k]);
    }
  }
  r.buckets = makeBuckets(r.params, r.g->bucketBytes);
  r.bucketOf.resize(r.params.size());
  for (size_t b = 0; b < r.buckets.size(); ++b) {
    r.missing.push_back(r.buckets[b].size());
    for (size_t i : r.buckets[b]) r.bucketOf[i] = b;
  }
  r.ready.resize(r.params.size());
  if (examples == 0) return;  // no backward on this rank: finish() sends zeros
  Impl* self = &r;
  for (size_t i = 0; i < r.params.size(); ++i) {
    unsigned id = r.params[i].register_hook([self, i](const torch::Tensor& grad) {
      torch::NoGradGuard noGrad;
      if (self->ready[i].defined()) {
        self->ready[i].add_(grad, self->weight);
        return;
      }
      self->ready[i] = grad.mul(self->weight);
      --self->missing[self->bucketOf[i]];
      self->launchReady(false);
    });
    r.hooks.emplace_back(i, id);
  }
}

StepReducer::~StepReducer() {
  for (auto [i, id] : impl_->hooks) impl_->params[i].remove_hook(id);
}

void StepReducer::finish() {
  Impl& r = *impl_;
  if (!r.active) return;
  torch::NoGradGuard noGrad;
  r.launchReady(true);
  waitAll(*r.g, "all-reduce of gradients", r.works);
  for (size_t b = 0; b < r.buckets.size(); ++b) {
    int64_t offset = 0;
    for (size_t i : r.buckets[b]) {
      torch::Tensor& p = r.params[i];
      int64_t n = p.numel();
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      p.mutable_grad().copy_(r.flat[b].narrow(0, offset, n).view(p.sizes()));
      offset += n;
    }
  }
}

namespace {

// Runs `work` on libuv's threadpool (collectives block until every rank arrives) and settles a
// promise with `done(result)` on the JS thread.
class Task : public Napi::AsyncWorker {
 public:
  using Done = std::function<Napi::Value(Napi::Env)>;
  Task(Napi::Env env, std::function<void()> work, Done done, Napi::Value keepAlive = Napi::Value())
      : Napi::AsyncWorker(env, "transferlab-distributed"), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)) {
    if (keepAlive.IsObject()) keepAlive_ = Napi::Persistent(keepAlive.As<Napi::Object>());
  }
  Napi::Promise start() {
    auto promise = deferred_.Promise();
    Queue();
    return promise;
  }
  void Execute() override {
    try {
      configureWorkerThreads();
      work_();
    } catch (const std::exception& e) {
      SetError(errorText(e));
    }
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    deferred_.Resolve(done_ ? done_(Env()) : Env().Undefined());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  Done done_;
  Napi::ObjectReference keepAlive_;
};

std::shared_ptr<::gloo::transport::Device> glooDevice(const std::string& host) {
  // As torch.distributed: GLOO_SOCKET_IFNAME picks the interface; a loopback rendezvous binds
  // loopback; otherwise the address this machine's hostname resolves to.
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  }
  if (host == "127.0.0.1" || host == "localhost" || host == "::1") return c10d::ProcessGroupGloo::createDeviceForHostname(host);
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// init({rank, worldSize, host, port, timeoutMs, bucketBytes, backend, device}) -> Promise<void>: rank 0
// serves the TCPStore; backend 'gloo' or 'nccl' (device: this rank's GPU, 'cuda:N').
Napi::Value InitGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  int rank = o.Get("rank").As<Napi::Number>().Int32Value();
  int worldSize = o.Get("worldSize").As<Napi::Number>().Int32Value();
  std::string host = o.Get("host").ToString().Utf8Value();
  int port = o.Get("port").As<Napi::Number>().Int32Value();
  auto timeout = std::chrono::milliseconds(o.Get("timeoutMs").As<Napi::Number>().Int64Value());
  {
    std::lock_guard<std::mutex> lock(gMutex);
    if (gGroup) throw Napi::Error::New(env, "a process group already exists: call destroyDistributed() before initDistributed() again");
  }
  auto g = std::make_shared<Group>();
  g->rank = rank;
  g->worldSize = worldSize;
  g->address = host + ":" + std::to_string(port);
  if (o.Has("bucketBytes") && o.Get("bucketBytes").IsNumber()) g->bucketBytes = o.Get("bucketBytes").As<Napi::Number>().Int64Value();
  const std::string backend = o.Has("backend") ? o.Get("backend").ToString().Utf8Value() : "gloo";
  if (backend != "gloo" && backend != "nccl") throw Napi::Error::New(env, "unknown backend '" + backend + "': use 'gloo' or 'nccl'");
  g->nccl = backend == "nccl";
  if (g->nccl) {
    try {
      g->device = torch::Device(o.Get("device").ToString().Utf8Value());
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, "backend 'nccl' needs this rank's GPU as device 'cuda:N': " + errorText(e));
    }
    if (!g->device.is_cuda() || !g->device.has_index()) {
      throw Napi::Error::New(env, "backend 'nccl' needs this rank's GPU as device 'cuda:N', got '" + g->device.str() + "'");
    }
    try {
      requireNccl();
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }
  auto work = [g, host, port, timeout]() {
    try {
      c10d::TCPStoreOptions opts;
      opts.port = static_cast<std::uint16_t>(port);
      opts.isServer = g->rank == 0;
      opts.numWorkers = g->worldSize;
      opts.waitWorkers = true;
      opts.timeout = timeout;
      g->store = c10::make_intrusive<c10d::TCPStore>(host, opts);
    } catch (const std::exception& e) {
      std::string hint = g->rank == 0 ? "is the port free? (another run may hold it; pick another MASTER_PORT)"
                                      : "is rank 0 running and reachable at that address?";
      throw std::runtime_error("rank " + std::to_string(g->rank) + " of " + std::to_string(g->worldSize) + ": the rendezvous at " +
                               g->address + " failed: " + errorText(e) + ". " + hint);
    }
    try {
      if (g->nccl) {
        g->pg = makeNcclGroup(g->store, g->rank, g->worldSize, timeout, g->device);
      } else {
        auto options = c10d::ProcessGroupGloo::Options::create(timeout);
        options->devices.push_back(glooDevice(host));
        g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, g->rank, g->worldSize, options);
      }
    } catch (const std::exception& e) {
      rethrowNamed(*g, g->nccl ? "connecting the NCCL process group" : "connecting the Gloo process group", e);
    }
    std::lock_guard<std::mutex> lock(gMutex);
    gGroup = g;
  };
  return (new Task(env, work, nullptr))->start();
}

void DestroyGroup(const Napi::CallbackInfo&) {
  std::lock_guard<std::mutex> lock(gMutex);
  gGroup.reset();
}

// allreduceSum(Float64Array) -> Promise<Float64Array>: element-wise sums over all ranks.
Napi::Value AllreduceSum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw Napi::TypeError::New(env, "allreduceSum needs a Float64Array");
  }
  auto in = info[0].As<Napi::Float64Array>();
  auto values = std::make_shared<std::vector<double>>(in.Data(), in.Data() + in.ElementLength());
  auto work = [values]() { *values = allreduceSum(*current(), *values); };
  auto done = [values](Napi::Env env) -> Napi::Value {
    auto out = Napi::Float64Array::New(env, values->size());
    std::copy(values->begin(), values->end(), out.Data());
    return out;
  };
  return (new Task(env, work, done))->start();
}

// allreduceSumInPlace(Float32Array) -> Promise<void>: element-wise sums over all ranks, written
// into the array itself (no copies: one all-reduce of a gradient-sized buffer, as the bench times).
Napi::Value AllreduceSumInPlace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(env, "allreduceSumInPlace needs a Float32Array");
  }
  auto in = info[0].As<Napi::Float32Array>();
  float* data = in.Data();
  int64_t n = static_cast<int64_t>(in.ElementLength());
  auto work = [data, n]() {
    const torch::Tensor buffer = torch::from_blob(data, {n}, torch::kFloat32);
    const torch::Tensor sums = allreduceOne(*current(), buffer, "all-reduce of a float32 buffer");
    if (!sums.is_same(buffer)) buffer.copy_(sums);  // NCCL summed a GPU copy
  };
  return (new Task(env, work, nullptr, info[0]))->start();
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  // a sum of one number on the group's device: it returns once every rank has sent its share, on
  // both backends (NCCL's own barrier guesses the GPU from the rank)
  auto work = []() { allreduceSum(*current(), {0.0}, "barrier"); };
  return (new Task(info.Env(), work, nullptr))->start();
}

// broadcastModel(nativeModel) -> Promise<void>: every weight (moving statistics too) from rank 0.
Napi::Value BroadcastModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "broadcastModel needs a NativeModel");
  Model* model = Napi::ObjectWrap<Model>::Unwrap(info[0].As<Napi::Object>());
  auto work = [model]() {
    auto g = current();
    std::vector<torch::Tensor> params;
    for (auto& layer : model->layers()) for (auto& p : layer.params) params.push_back(p);
    bucketed(*g, "broadcast of the weights from rank 0", params, [&](std::vector<at::Tensor>& t) { return g->pg->broadcast(t); });
  };
  return (new Task(env, work, nullptr, info[0]))->start();
}

}  // namespace

Napi::Object Init(Napi::Env env) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("init", Napi::Function::New(env, InitGroup));
  out.Set("destroy", Napi::Function::New(env, DestroyGroup));
  out.Set("allreduceSum", Napi::Function::New(env, AllreduceSum));
  out.Set("allreduceSumInPlace", Napi::Function::New(env, AllreduceSumInPlace));
  out.Set("barrier", Napi::Function::New(env, Barrier));
  out.Set("broadcastModel", Napi::Function::New(env, BroadcastModel));
  out.Set("ncclBuilt", ncclBuilt());
  return out;
}

}  // namespace tl::dist
