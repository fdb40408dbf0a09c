import type { LayerConfig, Shape } from '../lib/keras-format/config.js';
import { resolveChain } from '../lib/models/resolve.js';

/**
 * Multiply-adds x 2 of one image through each Conv2D of a chain of layers (the VGG16 base), by
 * layer name: 2 * H_out * W_out * kernel size (kh * kw * channels in * filters), with the output
 * shapes from the models' own shape inference. Pooling and ReLU are left out (a rounding error
 * beside the convolutions).
 */
export function convFlopsPerLayer(chain: LayerConfig[], inputShape: Shape): Map<string, number> {
  const flops = new Map<string, number>();
  for (const layer of resolveChain(chain, inputShape)) {
    if (layer.config.class_name !== 'Conv2D') continue;
    const [outH, outW] = layer.outputShape;
    const kernel = layer.weights.find((w) => w.name === 'kernel')!.shape;
    const name = (layer.config.config.name as string | undefined) ?? `conv${flops.size}`;
    flops.set(name, 2 * outH! * outW! * kernel.reduce((a, b) => a * b, 1));
  }
  return flops;
}

/**
 * Each convolution's FLOP/s from per-layer forward times of a batch, by layer name (layers without
 * a row are left out). A convolution run inside the next one's kernel (a row with no time: VGG16's
 * block1_conv1 fed straight into block1_conv2) adds its FLOPs to the next timed convolution's.
 */
export function convLayerRates(
  flopsPerImage: Map<string, number>,
  times: { layer: string; forwardMs: number }[],
  batch: number,
): Map<string, number> {
  const rates = new Map<string, number>();
  let carried = 0;
  for (const t of times) {
    const f = flopsPerImage.get(t.layer);
    if (f === undefined) continue;
    if (t.forwardMs > 0) {
      rates.set(t.layer, ((f + carried) * batch) / (t.forwardMs / 1000));
      carried = 0;
    } else carried += f;
  }
  return rates;
}
