import type { LayerConfig } from '../lib/keras-format/config.js';

/**
 * Multiply-adds x 2 of one image through each Conv2D of a chain of Conv2D and pooling layers (the
 * VGG16 base), by layer name: 2 * H_out * W_out * kernel area * channels in * filters. Pooling and
 * ReLU are left out (a rounding error beside the convolutions).
 */
export function convFlopsPerLayer(chain: LayerConfig[], inputShape: [number, number, number]): Map<string, number> {
  let [h, w, c] = inputShape;
  const flops = new Map<string, number>();
  for (const layer of chain) {
    const config = layer.config as {
      name?: string;
      filters?: number;
      kernel_size?: number[];
      padding?: string;
      pool_size?: number[];
      strides?: number[];
    };
    if (layer.class_name === 'Conv2D') {
      const [kh, kw] = config.kernel_size!;
      if (config.padding !== 'same') [h, w] = [h - kh! + 1, w - kw! + 1];
      flops.set(config.name ?? `conv${flops.size}`, 2 * h * w * kh! * kw! * c * config.filters!);
      c = config.filters!;
    } else if (layer.class_name === 'MaxPooling2D') {
      const [ph, pw] = config.pool_size!;
      const [sh, sw] = config.strides ?? config.pool_size!;
      [h, w] = [Math.floor((h - ph!) / sh!) + 1, Math.floor((w - pw!) / sw!) + 1];
    }
  }
  return flops;
}

/** Each convolution's FLOP/s from per-layer forward times of a batch, by layer name (layers without a time are left out). */
export function convLayerRates(
  flopsPerImage: Map<string, number>,
  times: { layer: string; forwardMs: number }[],
  batch: number,
): Map<string, number> {
  const rates = new Map<string, number>();
  for (const t of times) {
    const f = flopsPerImage.get(t.layer);
    if (f !== undefined && t.forwardMs > 0) rates.set(t.layer, (f * batch) / (t.forwardMs / 1000));
  }
  return rates;
}
