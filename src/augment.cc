#include "augment.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <stdexcept>

namespace tl {

namespace {

double num(const Napi::Object& o, const char* key, double fallback) {
  return o.Has(key) && o.Get(key).IsNumber() ? o.Get(key).As<Napi::Number>().DoubleValue() : fallback;
}

std::string str(const Napi::Object& o, const char* key, const std::string& fallback) {
  return o.Has(key) && o.Get(key).IsString() ? o.Get(key).As<Napi::String>().Utf8Value() : fallback;
}

// n draws, uniform in [lo, hi), as TensorFlow's random_uniform(minval, maxval)
torch::Tensor uniform(const AugmentSpec& a, int64_t n, double lo, double hi) {
  return torch::rand({n}, a.generator, torch::kFloat32) * (hi - lo) + lo;
}

// TensorFlow's MapCoordinate (ImageProjectiveTransformV3): where a source coordinate outside
// [0, len - 1] reads from, per fill mode, clamped into the image afterwards.
torch::Tensor mapCoordinate(const torch::Tensor& c, int64_t length, AugmentSpec::Fill fill) {
  const double len = static_cast<double>(length);
  if (fill == AugmentSpec::Fill::Constant) return c;
  if (length <= 1) return torch::zeros_like(c);
  torch::Tensor mapped;
  if (fill == AugmentSpec::Fill::Reflect) {
    // [abcd] -> [dcba|abcd|dcba]
    const double sz2 = 2 * len;
    torch::Tensor neg = sz2 * torch::trunc(-c / sz2) + c;
    neg = torch::where(neg < -len, neg + sz2, -neg - 1);
    torch::Tensor pos = c - sz2 * torch::trunc(c / sz2);
    pos = torch::where(pos >= len, sz2 - pos - 1, pos);
    mapped = torch::where(c < 0, neg, torch::where(c > len - 1, pos, c));
  } else if (fill == AugmentSpec::Fill::Wrap) {
    // [abcd] -> [abcd|abcd|abcd], with TensorFlow's period arithmetic (len - 1 in the quotient)
    const double sz = len - 1;
    torch::Tensor neg = c + len * (torch::trunc(-c / sz) + 1);
    torch::Tensor pos = c - len * torch::trunc(c / sz);
    mapped = torch::where(c < 0, neg, torch::where(c > len - 1, pos, c));
  } else {
    mapped = c;  // nearest: [aaaa|abcd|dddd] by the clamp
  }
  return mapped.clamp(0.0, len - 1);
}

// std::round: halves away from zero (torch::round rounds them to even)
torch::Tensor roundHalfAway(const torch::Tensor& c) { return torch::sign(c) * torch::floor(c.abs() + 0.5); }

// Keras `transform`: output pixel (x, y) reads input (a0 x + a1 y + a2, b0 x + b1 y + b2), each row of
// `m` being [a0, a1, a2, b0, b1, b2] for one image.
torch::Tensor transform(const AugmentSpec& a, const torch::Tensor& x, const torch::Tensor& m) {
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  auto opts = torch::TensorOptions().dtype(torch::kFloat32);
  torch::Tensor xs = torch::arange(w, opts).view({1, 1, w});
  torch::Tensor ys = torch::arange(h, opts).view({1, h, 1});
  auto col = [&](int64_t k) { return m.select(1, k).view({n, 1, 1}); };
  torch::Tensor srcX = mapCoordinate(col(0) * xs + col(1) * ys + col(2), w, a.fill);
  torch::Tensor srcY = mapCoordinate(col(3) * xs + col(4) * ys + col(5), h, a.fill);
  if (!a.bilinear) {
    srcX = roundHalfAway(srcX);
    srcY = roundHalfAway(srcY);
  }
  // pixel coordinates -> grid_sample's [-1, 1] with align_corners (pixel centres at the ends)
  torch::Tensor grid = torch::stack({srcX * (2.0 / std::max<int64_t>(w - 1, 1)) - 1, srcY * (2.0 / std::max<int64_t>(h - 1, 1)) - 1}, 3);
  const int64_t mode = a.bilinear ? 0 : 1;
  torch::Tensor input = x.to(torch::kFloat32);
  torch::Tensor out;
  if (a.fill == AugmentSpec::Fill::Constant) {
    // neighbours outside the image read fill_value: zero padding of (x - fill), shifted back
    out = a.fillValue == 0.0 ? at::grid_sampler(input, grid, mode, 0, true) : at::grid_sampler(input - a.fillValue, grid, mode, 0, true) + a.fillValue;
  } else {
    out = at::grid_sampler(input, grid, mode, 1, true);  // coordinates already mapped inside
  }
  return out.contiguous(at::MemoryFormat::ChannelsLast);
}

torch::Tensor flip(const AugmentSpec& a, const torch::Tensor& x) {
  const int64_t n = x.size(0);
  torch::Tensor y = x;
  if (a.horizontal) y = torch::where((torch::rand({n}, a.generator) < 0.5).view({n, 1, 1, 1}), y.flip({3}), y);
  if (a.vertical) y = torch::where((torch::rand({n}, a.generator) < 0.5).view({n, 1, 1, 1}), y.flip({2}), y);
  return y.contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace

std::shared_ptr<AugmentSpec> parseAugment(const Napi::Object& spec, const std::string& layer) {
  if (!spec.Has("augment") || !spec.Get("augment").IsObject()) throw std::invalid_argument("layer '" + layer + "': augment settings missing");
  Napi::Object o = spec.Get("augment").As<Napi::Object>();
  auto a = std::make_shared<AugmentSpec>();
  const std::string op = str(o, "op", "");
  if (op == "flip") a->op = AugmentSpec::Op::Flip;
  else if (op == "rotation") a->op = AugmentSpec::Op::Rotation;
  else if (op == "zoom") a->op = AugmentSpec::Op::Zoom;
  else if (op == "translation") a->op = AugmentSpec::Op::Translation;
  else if (op == "contrast") a->op = AugmentSpec::Op::Contrast;
  else if (op == "brightness") a->op = AugmentSpec::Op::Brightness;
  else throw std::invalid_argument("layer '" + layer + "': unknown augmentation '" + op + "'");
  const std::string mode = str(o, "mode", "horizontal_and_vertical");
  a->horizontal = mode != "vertical";
  a->vertical = mode != "horizontal";
  a->lower = num(o, "lower", 0.0);
  a->upper = num(o, "upper", 0.0);
  a->widthFromHeight = !o.Has("widthLower") || !o.Get("widthLower").IsNumber();
  a->widthLower = num(o, "widthLower", a->lower);
  a->widthUpper = num(o, "widthUpper", a->upper);
  const std::string fill = str(o, "fillMode", "reflect");
  if (fill == "reflect") a->fill = AugmentSpec::Fill::Reflect;
  else if (fill == "wrap") a->fill = AugmentSpec::Fill::Wrap;
  else if (fill == "nearest") a->fill = AugmentSpec::Fill::Nearest;
  else if (fill == "constant") a->fill = AugmentSpec::Fill::Constant;
  else throw std::invalid_argument("layer '" + layer + "': unknown fill_mode '" + fill + "'");
  a->bilinear = str(o, "interpolation", "bilinear") != "nearest";
  a->fillValue = num(o, "fillValue", 0.0);
  a->rangeLow = num(o, "rangeLow", 0.0);
  a->rangeHigh = num(o, "rangeHigh", 255.0);
  a->generator = at::detail::createCPUGenerator(static_cast<uint64_t>(num(o, "seed", 0.0)));
  return a;
}

torch::Tensor augment(const AugmentSpec& a, const torch::Tensor& x, bool training) {
  if (!training) return x;
  if (x.dim() != 4) throw std::invalid_argument("augmentation layers need images [batch, height, width, channels]");
  const int64_t n = x.size(0);
  const double h = static_cast<double>(x.size(2)), w = static_cast<double>(x.size(3));
  switch (a.op) {
    case AugmentSpec::Op::Flip:
      return flip(a, x);
    case AugmentSpec::Op::Rotation: {
      // Keras get_rotation_matrix: rotation about the image centre, counter-clockwise for positive angles
      torch::Tensor angle = uniform(a, n, a.lower * 2 * M_PI, a.upper * 2 * M_PI);
      torch::Tensor c = torch::cos(angle), s = torch::sin(angle);
      torch::Tensor dx = ((w - 1) - (c * (w - 1) - s * (h - 1))) / 2.0;
      torch::Tensor dy = ((h - 1) - (s * (w - 1) + c * (h - 1))) / 2.0;
      return transform(a, x, torch::stack({c, -s, dx, s, c, dy}, 1));
    }
    case AugmentSpec::Op::Zoom: {
      // Keras get_zoom_matrix: scale about the centre; a zoom above 1 reads a larger area (zooms out)
      torch::Tensor zy = uniform(a, n, 1.0 + a.lower, 1.0 + a.upper);
      torch::Tensor zx = a.widthFromHeight ? zy : uniform(a, n, 1.0 + a.widthLower, 1.0 + a.widthUpper);
      torch::Tensor zero = torch::zeros_like(zx);
      return transform(a, x, torch::stack({zx, zero, (w - 1) / 2.0 * (1 - zx), zero, zy, (h - 1) / 2.0 * (1 - zy)}, 1));
    }
    case AugmentSpec::Op::Translation: {
      // Keras get_translation_matrix: the image moves by (dx, dy), so output (x, y) reads (x - dx, y - dy)
      torch::Tensor dy = uniform(a, n, a.lower, a.upper) * h;
      torch::Tensor dx = uniform(a, n, a.widthLower, a.widthUpper) * w;
      torch::Tensor one = torch::ones_like(dx), zero = torch::zeros_like(dx);
      return transform(a, x, torch::stack({one, zero, -dx, zero, one, -dy}, 1));
    }
    case AugmentSpec::Op::Contrast: {
      // Keras: (x - mean) * factor + mean, the mean per image and channel, clipped to value_range
      torch::Tensor factor = uniform(a, n, 1.0 - a.lower, 1.0 + a.upper).view({n, 1, 1, 1});
      torch::Tensor mean = x.mean({2, 3}, true);
      return ((x - mean) * factor + mean).clamp(a.rangeLow, a.rangeHigh);
    }
    case AugmentSpec::Op::Brightness: {
      // Keras: one delta per image for all channels, a fraction of value_range, then clipped to it
      torch::Tensor delta = uniform(a, n, a.lower, a.upper).view({n, 1, 1, 1}) * (a.rangeHigh - a.rangeLow);
      return (x + delta).clamp(a.rangeLow, a.rangeHigh);
    }
  }
  throw std::logic_error("unreachable augmentation");
}

}  // namespace tl
