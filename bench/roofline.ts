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

/** One VGG16 bf16 feature batch timed layer by layer: its convolutions' rates and the whole pass's seconds. */
export interface RoofRound {
  rates: Map<string, number>;
  passSeconds: number;
}

export interface Roofline {
  /** the pass's FLOP/s over the roof, in the round with the median fraction */
  fraction: number;
  /** that round's roof (FLOP/s), what set it, and its per-layer rates */
  roof: number;
  source: string;
  rates: Map<string, number>;
  /** every round's fraction, roof and what set it, in order */
  fractions: number[];
  roofs: number[];
  sources: string[];
}

/**
 * The pass against the compute roof, each round on its own: the pass's FLOP/s (flopsPerImage x batch
 * over its seconds) over that round's roof, the higher of `externalRoof` (PyTorch's large
 * convolution) and the round's fastest layer. Where that layer sets the roof, numerator and
 * denominator come from the same batch, so a neighbour's load hits both alike (PyTorch's rate is
 * measured apart: a round it sets is not paired). The round with the median fraction is the result
 * (null without rounds or a roof).
 */
export function roofline(rounds: RoofRound[], flopsPerImage: number, batch: number, externalRoof: number | null): Roofline | null {
  const scored = rounds.map((r) => {
    const best = [...r.rates.entries()].sort((a, b) => b[1] - a[1])[0];
    const roof = Math.max(externalRoof ?? 0, best?.[1] ?? 0);
    const source = roof === externalRoof ? 'PyTorch, one large bf16 3x3 convolution' : `ours, VGG16 ${best?.[0]}`;
    return { round: r, roof, source, fraction: roof > 0 ? (flopsPerImage * batch) / r.passSeconds / roof : Number.NaN };
  });
  const valid = scored.filter((s) => Number.isFinite(s.fraction));
  if (!valid.length) return null;
  const median = [...valid].sort((a, b) => a.fraction - b.fraction)[valid.length >> 1]!;
  return {
    fraction: median.fraction,
    roof: median.roof,
    source: median.source,
    rates: median.round.rates,
    fractions: scored.map((s) => s.fraction),
    roofs: scored.map((s) => s.roof),
    sources: scored.map((s) => s.source),
  };
}
