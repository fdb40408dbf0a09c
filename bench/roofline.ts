import type { LayerConfig } from '../lib/keras-format/config.js';

/**
 * Multiply-adds x 2 of one image through a chain of Conv2D and pooling layers (the VGG16 base):
 * 2 * H_out * W_out * kernel area * channels in * filters per convolution. Pooling and ReLU are
 * left out (a rounding error beside the convolutions).
 */
export function convFlopsPerImage(chain: LayerConfig[], inputShape: [number, number, number]): number {
  let [h, w, c] = inputShape;
  let flops = 0;
  for (const layer of chain) {
    const config = layer.config as { filters?: number; kernel_size?: number[]; padding?: string; pool_size?: number[]; strides?: number[] };
    if (layer.class_name === 'Conv2D') {
      const [kh, kw] = config.kernel_size!;
      if (config.padding !== 'same') [h, w] = [h - kh! + 1, w - kw! + 1];
      flops += 2 * h * w * kh! * kw! * c * config.filters!;
      c = config.filters!;
    } else if (layer.class_name === 'MaxPooling2D') {
      const [ph, pw] = config.pool_size!;
      const [sh, sw] = config.strides ?? config.pool_size!;
      [h, w] = [Math.floor((h - ph!) / sh!) + 1, Math.floor((w - pw!) / sw!) + 1];
    }
  }
  return flops;
}
