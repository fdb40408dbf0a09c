/** Synthetic inputs and workloads for the engine measurements (bench/serve.ts): speed does not depend on pixel values. */
import type { DtypePolicyName } from '../lib/models/mixed-precision.js';
import { experimentCnn } from '../lib/models/zoo.js';

/** Deterministic pseudo-random bytes (xorshift): synthetic pixels without a slow Math.random loop. */
export function syntheticPixels(n: number, seed = 12345): Uint8Array {
  const out = new Uint8Array(n);
  const words = new Uint32Array(out.buffer, 0, Math.floor(n / 4));
  let s = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    words[i] = s;
  }
  for (let i = words.length * 4; i < n; i++) out[i] = (i * 131) & 255;
  return out;
}

/** The experiment CNN's training step (Adam, binary cross-entropy) on one batch of pixels `x` of NHWC `shape`. */
export function cnnTrainStep(x: Uint8Array, shape: number[], dtype: DtypePolicyName): () => Promise<unknown> {
  const [batch, height, width, channels] = shape as [number, number, number, number];
  const model = experimentCnn([height, width, channels], { seed: 1, dtype });
  model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  const y = Float32Array.from({ length: batch }, (_, i) => i % 2);
  return () => model.engine.trainStep(x, shape, y, 0);
}
