// Keras's random preprocessing layers (RandomFlip, RandomRotation, RandomZoom, RandomTranslation,
// RandomContrast, RandomBrightness) on a whole NCHW batch: one draw per image from the layer's own
// generator, geometric ones as one grid_sample with TensorFlow's fill-mode coordinate mapping.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <memory>
#include <string>

namespace tl {

struct AugmentSpec {
  enum class Op { Flip, Rotation, Zoom, Translation, Contrast, Brightness };
  enum class Fill { Reflect, Wrap, Nearest, Constant };
  Op op = Op::Flip;
  bool horizontal = true, vertical = true;  // RandomFlip
  // draw ranges: rotation in turns (fraction of 2π), zoom / translation height fractions, contrast and brightness factors
  double lower = 0.0, upper = 0.0;
  // zoom / translation width fractions; a zoom without width_factor reuses the height draw (aspect ratio kept)
  double widthLower = 0.0, widthUpper = 0.0;
  bool widthFromHeight = false;
  Fill fill = Fill::Reflect;
  bool bilinear = true;
  double fillValue = 0.0;
  double rangeLow = 0.0, rangeHigh = 255.0;  // value_range (contrast, brightness)
  // The layer's own generator: its draws do not depend on dropout or on other layers.
  torch::Generator generator;
};

std::shared_ptr<AugmentSpec> parseAugment(const Napi::Object& spec, const std::string& layer);
// Identity unless `training`; otherwise a freshly drawn transform per image.
torch::Tensor augment(const AugmentSpec& a, const torch::Tensor& x, bool training);

}  // namespace tl
