// Bounded memory for the layers no gradient flows through: in inference every layer, while
// training the frozen prefix (a frozen base) before the first trainable weight. They run on a
// chunk of rows at a time and the outputs are concatenated, so the activations alive at once are
// one chunk's (VGG16's first block at 300x300 is 1.47 GB per activation at batch 64). Rows are
// independent there: frozen BatchNormalization uses its moving statistics, as Keras's does.
// Layers that draw for the whole batch (augmentation, dropout while training) stay whole, so
// their draws do not change.
#include "chunked-forward.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "model.h"

namespace tl {

namespace {

// A chunk's largest activation stays under this, counted at 4 bytes an element whatever the dtype
// (bfloat16 activations get half the budget: autocast's output dtypes are not known ahead). VGG16
// at 300x300: batch 64 runs in 3 chunks of 22 rows (peak memory bounded, docs/architecture.md),
// batch 16 whole (smaller chunks measured a few % slower there).
std::atomic<int64_t> gChunkBytes{int64_t{512} << 20};

// Draws random numbers for the whole batch at once: splitting the rows would change the draws.
bool drawsForBatch(const Layer& layer, bool training, bool augment) {
  if (layer.kind == Kind::Augment) return training || augment;
  return layer.kind == Kind::Dropout && training;
}

// Where rows stop being independent or a gradient starts: a trainable weight, or BatchNormalization
// normalising with the batch's statistics.
bool needsWholeBatch(const Layer& layer, bool training) {
  if (layer.kind == Kind::BatchNorm && training && layer.trainable) return true;
  return std::any_of(layer.params.begin(), layer.params.end(), [](const torch::Tensor& p) { return p.requires_grad(); });
}

// Float32 bytes per row of the largest activation of layers [from, to]: the shapes they accept
// (resolved by the TypeScript side; layer `to`'s is the range's output) and the input's own rows.
int64_t largestRowBytes(const std::vector<Layer>& layers, size_t from, size_t to, const torch::Tensor& x) {
  int64_t elements = x.numel() / x.size(0);
  for (size_t i = from; i <= to && i < layers.size(); ++i) {
    const auto& shape = layers[i].inputShape;
    if (shape.empty()) continue;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    elements = std::max(elements, n);
  }
  return elements * static_cast<int64_t>(sizeof(float));
}

// Rows per chunk: as many as the budget allows (at least one), spread evenly over the chunks.
int64_t chunkRows(int64_t rows, int64_t rowBytes) {
  const int64_t most = std::max<int64_t>(1, gChunkBytes.load() / std::max<int64_t>(1, rowBytes));
  if (rows <= most) return rows;
  const int64_t chunks = (rows + most - 1) / most;
  return (rows + chunks - 1) / chunks;
}

Napi::Value SetForwardChunkBytes(const Napi::CallbackInfo& info) {
  const double bytes = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  if (!(bytes >= 1)) throw Napi::RangeError::New(info.Env(), "setForwardChunkBytes: bytes must be a number >= 1 (Infinity: whole batches)");
  const int64_t most = std::numeric_limits<int64_t>::max();
  const int64_t previous = gChunkBytes.exchange(std::isinf(bytes) || bytes >= static_cast<double>(most) ? most : static_cast<int64_t>(bytes));
  return Napi::Number::New(info.Env(), previous == most ? std::numeric_limits<double>::infinity() : static_cast<double>(previous));
}

}  // namespace

torch::Tensor Model::forward(const torch::Tensor& x, size_t from, size_t to, bool training, bool logits, bool augment) {
  // [begin, end): the stretch no gradient flows through, after the last layer that draws for the batch
  size_t end = to;
  if (training) {
    end = from;
    while (end < to && !needsWholeBatch(layers_[end], training)) ++end;
    if (end == to) end = from;  // nothing to train: today's path, and its error
  } else if (torch::GradMode::is_enabled()) {
    end = from;  // Grad-CAM: gradients flow through every layer
  }
  size_t begin = from;
  for (size_t i = from; i < end; ++i) {
    if (drawsForBatch(layers_[i], training, augment)) begin = i + 1;
  }
  const int64_t n = x.dim() > 0 ? x.size(0) : 0;
  // the budget is the host's memory (measured there); a GPU keeps its whole batches
  const bool chunkable = begin < end && n > 0 && x.device().is_cpu();
  const int64_t rows = chunkable ? chunkRows(n, largestRowBytes(layers_, begin, end, x)) : n;

  torch::Tensor y = x;
  if (rows < n) {
    if (begin > from) y = forwardLayers(y, from, begin, training, false, augment);
    std::vector<torch::Tensor> chunks;
    {
      torch::NoGradGuard noGrad;  // nothing before `end` is trained: no graph to keep
      for (int64_t r = 0; r < n; r += rows) {
        chunks.push_back(forwardLayers(y.narrow(0, r, std::min(rows, n - r)), begin, end, training, logits && end == to, augment));
      }
    }
    y = torch::cat(chunks);
    chunks.clear();
    if (end < to) y = forwardLayers(y, end, to, training, logits, augment);
  } else {
    y = forwardLayers(y, from, to, training, logits, augment);
  }
  // outputs leave the engine (and enter the loss) in float32, whatever the last layer computed in
  return y.scalar_type() == at::kBFloat16 ? y.to(at::kFloat) : y;
}

namespace chunking {

void addExports(Napi::Env env, Napi::Object exports) {
  exports.Set("setForwardChunkBytes", Napi::Function::New(env, SetForwardChunkBytes));
}

}  // namespace chunking

}  // namespace tl
