import path from 'node:path';
import { transferModel } from '../lib/applications/transfer-model.js';
import { VGG16_WEIGHTS_ARTIFACT, vgg16, vgg16Layers } from '../lib/applications/vgg16.js';
import { decodeImageFile } from '../lib/data/index.js';
import { Sequential } from '../lib/models/sequential.js';
import { defaultHeadLayers, experimentCnn } from '../lib/models/zoo.js';
import { locateArtifact } from '../lib/net/artifacts.js';
import type { BenchSizes } from './options.js';
import { ASSETS_HINT, realPetImagesDir } from './photos.js';

/**
 * The engine measurements. Each runs in its own child process (bench/worker.ts) so that its peak
 * resident memory is its own.
 */

const SIZE = 300;

function log(msg: string): void {
  process.stderr.write(`  ${msg}\n`);
}

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

function labels(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => i % 2);
}

/** Times `steps` calls of `fn` after `warmup` untimed ones; returns seconds per call (each, and total). */
async function timeIt(
  warmup: number,
  steps: number,
  fn: (i: number) => Promise<unknown>,
  label: string,
): Promise<{ total: number; each: number[] }> {
  for (let i = 0; i < warmup; i++) {
    const t = performance.now();
    await fn(i);
    log(`${label} warm-up ${i + 1}/${warmup}: ${((performance.now() - t) / 1000).toFixed(2)} s`);
  }
  const each: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    await fn(warmup + i);
    each.push((performance.now() - t) / 1000);
    log(`${label} ${i + 1}/${steps}: ${each[i].toFixed(2)} s`);
  }
  return { total: each.reduce((a, b) => a + b, 0), each };
}

/** Median step time: one step disturbed by another process on a shared machine does not move it. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The experiment's CNN: adam + binary crossentropy, trainStep on synthetic uint8 batches. */
export async function benchCnnTrain(sizes: BenchSizes): Promise<Record<string, unknown>> {
  const model = experimentCnn([SIZE, SIZE, 3], { seed: 1 });
  model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  const b = sizes.cnnBatch;
  const shape = [b, SIZE, SIZE, 3];
  const x = syntheticPixels(b * SIZE * SIZE * 3);
  const y = labels(b);
  let loss = NaN;
  const t = await timeIt(
    sizes.cnnWarmup,
    sizes.cnnSteps,
    async () => {
      loss = (await model.engine.trainStep(x, shape, y, 0)).loss;
    },
    `cnn train step (batch ${b})`,
  );
  return {
    imgPerSec: b / median(t.each),
    bestStepImgPerSec: b / Math.min(...t.each),
    stepSeconds: t.each,
    batch: b,
    lastLoss: loss,
  };
}

/** Real photos for realistic feature statistics (bf16 error), or synthetic pixels when none are given. */
async function realBatch(n: number): Promise<{ x: Uint8Array; source: string }> {
  const x = new Uint8Array(n * SIZE * SIZE * 3);
  const pet = await realPetImagesDir();
  if (!pet) {
    log(`synthetic pixels (${ASSETS_HINT})`);
    return { x: syntheticPixels(x.length), source: 'synthetic pixels' };
  }
  try {
    for (let i = 0; i < n; i++) {
      const file = path.join(pet, i % 2 ? 'Dog' : 'Cat', `${Math.floor(i / 2) + 1}.jpg`);
      x.set(await decodeImageFile(file, SIZE, SIZE), i * SIZE * SIZE * 3);
    }
    return { x, source: `${n} photos from ${pet}` };
  } catch (error) {
    log(`no photos (${(error as Error).message.split('\n')[0]}); using synthetic pixels`);
    return { x: syntheticPixels(x.length), source: 'synthetic pixels' };
  }
}

/** ImageNet weights when they are already on this machine (verified), random ones otherwise. */
async function vggWeights(model: Sequential): Promise<string> {
  try {
    const file = await locateArtifact(VGG16_WEIGHTS_ARTIFACT);
    if (!file) return 'random (glorot_uniform)';
    const backbone = await vgg16({ inputShape: [SIZE, SIZE, 3], weights: file });
    model.setWeights(backbone.weights);
    return `imagenet (${file})`;
  } catch (error) {
    log(`VGG16 weights not loaded (${(error as Error).message.split('\n')[0]}); random weights`);
    return 'random (glorot_uniform)';
  }
}

function relativeError(a: Float32Array, ref: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = a[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return Math.sqrt(num) / Math.sqrt(den);
}

/** VGG16 base at 300x300: fp32 and (when the CPU has it) bf16 `predict`, and the bf16 error. */
export async function benchVgg16Features(sizes: BenchSizes, opts: { bf16: boolean }): Promise<Record<string, unknown>> {
  const model = new Sequential(vgg16Layers([SIZE, SIZE, 3]), { name: 'vgg16', preprocessing: 'scale01', seed: 1 });
  const weights = await vggWeights(model);
  const b = sizes.vggBatch;
  const shape = [b, SIZE, SIZE, 3];
  const { x, source } = await realBatch(b);
  let fp32: Float32Array | undefined;
  const tf = await timeIt(
    sizes.vggWarmup,
    sizes.vggBatches,
    async () => {
      fp32 = (await model.predict(x, shape)).output;
    },
    `vgg16 fp32 predict (batch ${b})`,
  );
  const out: Record<string, unknown> = { fp32ImgPerSec: b / median(tf.each), fp32BatchSeconds: tf.each, batch: b, inputs: source, weights };
  if (opts.bf16) {
    let bf16: Float32Array | undefined;
    model.setDtypePolicy('mixed_bfloat16');
    const tb = await timeIt(
      sizes.vggWarmup,
      sizes.vggBatches,
      async () => {
        bf16 = (await model.predict(x, shape)).output;
      },
      `vgg16 bf16 predict (batch ${b})`,
    );
    out.bf16ImgPerSec = b / median(tb.each);
    out.bf16BatchSeconds = tb.each;
    out.bf16RelativeError = relativeError(bf16!, fp32!);
  }
  return out;
}

/**
 * Cost per image of transfer training without and with the feature cache, VGG16 + the
 * experiment's head at 300x300: (a) uncached train step (frozen base forward + head step),
 * (b) feature extraction, (c) head train step from features.
 */
export async function benchTransferCost(sizes: BenchSizes): Promise<Record<string, unknown>> {
  const base = await vgg16({ includeTop: false, weights: null, inputShape: [SIZE, SIZE, 3] });
  const model = transferModel({ base, head: defaultHeadLayers(), trainableBase: false, preprocessing: 'scale01', seed: 1 });
  const baseLayers = model.baseLayers;
  model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  const b = sizes.transferBatch;
  const shape = [b, SIZE, SIZE, 3];
  const x = syntheticPixels(b * SIZE * SIZE * 3, 777);
  const y = labels(b);

  const entry = model.engineIndex(baseLayers, true);
  const hb = sizes.headBatch;
  let features: Float32Array | undefined;
  let featureShape: number[] = [];
  let hx: Float32Array | undefined;
  let hshape: number[] = [];
  const hy = labels(hb);
  const uncached = () => model.engine.trainStep(x, shape, y, 0);
  const extract = async () => {
    const r = await model.predict(x, shape, { toLayer: baseLayers });
    features = r.output;
    featureShape = r.shape;
    if (!hx) {
      // the head trains on batches of cached features (the experiment's batch of 64)
      const per = features.length / b;
      hx = new Float32Array(hb * per);
      for (let i = 0; i < hb; i++) hx.set(features.subarray((i % b) * per, ((i % b) + 1) * per), i * per);
      hshape = [hb, ...featureShape.slice(1)];
    }
  };
  const head = () => model.engine.trainStep(hx!, hshape, hy, entry);
  // warm-up, then rounds of (a), (b), (c) interleaved so that changes in machine load hit all three alike
  await timeIt(1, 0, uncached, `(a) uncached transfer step (batch ${b})`);
  await timeIt(1, 0, extract, `(b) feature extraction (batch ${b})`);
  await timeIt(2, 0, head, `(c) head step from features (batch ${hb})`);
  const ta = { total: 0, each: [] as number[] };
  const tb = { total: 0, each: [] as number[] };
  const tc = { total: 0, each: [] as number[] };
  const add = (into: { total: number; each: number[] }, r: { total: number; each: number[] }) => {
    into.total += r.total;
    into.each.push(...r.each);
  };
  let headDone = 0;
  for (let round = 0; round < sizes.transferBatches; round++) {
    add(ta, await timeIt(0, 1, uncached, `(a) uncached transfer step (batch ${b}), round ${round + 1}/${sizes.transferBatches}`));
    add(tb, await timeIt(0, 1, extract, `(b) feature extraction (batch ${b}), round ${round + 1}/${sizes.transferBatches}`));
    const n = Math.round((sizes.headSteps * (round + 1)) / sizes.transferBatches) - headDone;
    add(tc, await timeIt(0, n, head, `(c) head step from features (batch ${hb}), round ${round + 1}/${sizes.transferBatches}`));
    headDone += n;
  }

  const a = ta.total / (sizes.transferBatches * b);
  const bb = tb.total / (sizes.transferBatches * b);
  const c = tc.total / (sizes.headSteps * hb);
  const epochs = sizes.epochs;
  return {
    uncachedStepSecondsPerImage: a,
    featureSecondsPerImage: bb,
    headStepSecondsPerImage: c,
    epochs,
    ratio: (epochs * a) / (bb + epochs * c),
    batch: b,
    headBatch: hb,
    featureShape: featureShape.slice(1),
  };
}
