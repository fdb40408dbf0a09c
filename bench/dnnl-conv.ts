/**
 * `node dist/bench/dnnl-conv.js [--size 300] [--batch 16] [--rounds 2] [--precision fp32|bf16] [--error | --cnn]`:
 * inference convolutions through oneDNN directly (src/dnnl-conv.cc) next to libtorch's conv2d.
 * Timing: the VGG16 feature pass (random weights) under each setting in alternating rounds, img/s
 * every round, then per-layer forward ms (the fastest of the rounds); at bf16 also the bf16 roof convolution (256 -> 256 at
 * 56x56, batch 16). --error: instead, the largest error of direct and Winograd float32 (and
 * libtorch's) against a float64 convolution on VGG16-like layers, and through the VGG16 stack
 * (direct vs Winograd, relative to the largest feature). --cnn: the experiment CNN's fp32 training
 * step (use --batch 64) with libtorch's convolutions, then Winograd forward and backward
 * (src/dnnl-conv-train.cc), alternating, and per-layer forward + backward ms. Small mode: --size 64 --batch 4.
 */

import { vgg16Layers } from '../lib/applications/vgg16.js';
import { type ConvAlgorithm, native } from '../lib/engine/native.js';
import { layers } from '../lib/models/layers.js';
import type { DtypePolicyName } from '../lib/models/mixed-precision.js';
import { Sequential } from '../lib/models/sequential.js';
import { cnnTrainStep, syntheticPixels } from './engine.js';
import { type LayerTimeRow, layerTimesOf, seconds } from './measure.js';
import { choiceOption, intOption } from './options.js';

const size = intOption('--size', 300);
const batch = intOption('--batch', 16);
const rounds = intOption('--rounds', 2);
const precision = choiceOption('--precision', ['fp32', 'bf16']);
const dtype = precision === 'bf16' ? 'mixed_bfloat16' : 'float32';
const engine = native();
if (!engine.info().dnnl) console.log('note: this engine was built without oneDNN: every setting below runs libtorch conv2d');

interface Setting {
  name: string;
  dnnl: boolean;
  algorithm: ConvAlgorithm;
}
const LIBTORCH: Setting = { name: 'libtorch conv2d (old)', dnnl: false, algorithm: 'auto' };
const DIRECT: Setting = { name: 'oneDNN direct', dnnl: true, algorithm: 'direct' };
const WINOGRAD: Setting = { name: 'oneDNN auto (Winograd)', dnnl: true, algorithm: 'auto' };
/** float32, whatever --precision says: what --error and --cnn compare */
const FP32_SETTINGS = [LIBTORCH, DIRECT, WINOGRAD];
/** the timing's settings at --precision */
const settings: Setting[] = dtype === 'float32' ? FP32_SETTINGS : [LIBTORCH, { name: 'oneDNN (new)', dnnl: true, algorithm: 'auto' }];
function apply(s: Setting): void {
  engine.setDnnlConv(s.dnnl);
  engine.setConvAlgorithm(s.algorithm);
}

/** The VGG16 base (random weights, seed 5, caffe preprocessing) at `size`. */
function vgg16Base(policy: DtypePolicyName): Sequential {
  return new Sequential(
    vgg16Layers([size, size, 3]).filter((l) => l.class_name !== 'InputLayer'),
    { inputShape: [size, size, 3], preprocessing: 'caffe', seed: 5, dtype: policy },
  );
}

/** Folds one pass's convolution times (ms, `msOf` a row) into the fastest so far of setting `i` of `n`, by layer. */
function keepFastest(
  perLayer: Map<string, number[]>,
  rows: LayerTimeRow[],
  i: number,
  n: number,
  msOf: (row: LayerTimeRow) => number,
): void {
  for (const row of rows) {
    if (!row.layer.includes('conv')) continue;
    const times = perLayer.get(row.layer) ?? Array.from({ length: n }, () => Number.POSITIVE_INFINITY);
    times[i] = Math.min(times[i]!, msOf(row));
    perLayer.set(row.layer, times);
  }
}

/** uniform in [-1, 1), deterministic */
function noise(n: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

/** Conv2D 3x3 'same', NHWC input, HWIO kernel, in float64. */
function referenceConv(
  x: Float32Array,
  n: number,
  hw: number,
  c: number,
  kernel: Float32Array,
  bias: Float32Array,
  o: number,
): Float64Array {
  const out = new Float64Array(n * hw * hw * o);
  const acc = new Float64Array(o);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < hw; y++)
      for (let xx = 0; xx < hw; xx++) {
        for (let f = 0; f < o; f++) acc[f] = bias[f]!;
        for (let ky = 0; ky < 3; ky++) {
          const iy = y + ky - 1;
          if (iy < 0 || iy >= hw) continue;
          for (let kx = 0; kx < 3; kx++) {
            const ix = xx + kx - 1;
            if (ix < 0 || ix >= hw) continue;
            for (let ch = 0; ch < c; ch++) {
              const v = x[((b * hw + iy) * hw + ix) * c + ch]!;
              const k = ((ky * 3 + kx) * c + ch) * o;
              for (let f = 0; f < o; f++) acc[f] += v * kernel[k + f]!;
            }
          }
        }
        out.set(acc, ((b * hw + y) * hw + xx) * o);
      }
  return out;
}

function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / scale;
}

async function errors(): Promise<void> {
  console.log('largest |error| / largest |output| against float64, float32 3x3 convolutions (batch 2, inputs in [-1, 1))');
  // oneDNN picks its Winograd kernel by problem size: F(2x2, 3x3) on the first two, F(4x4, 3x3)
  // (what VGG16 at 300x300 gets from block 3 on) on the last two (DNNL_VERBOSE=1 shows which)
  for (const [c, o, hw] of [
    [64, 64, 24],
    [128, 128, 16],
    [256, 256, 37],
    [512, 512, 18],
  ] as const) {
    const model = new Sequential([layers.conv2d({ filters: o, kernelSize: 3, padding: 'same', name: 'conv' })], {
      inputShape: [hw, hw, c],
      preprocessing: 'none',
      seed: 1,
    });
    const kernel = noise(9 * c * o, 2).map((v) => v * Math.sqrt(6 / (9 * (c + o))));
    const bias = noise(o, 3).map((v) => v * 0.1);
    model.setLayerWeights('conv', [kernel, bias]);
    const x = noise(2 * hw * hw * c, 4);
    const ref = referenceConv(x, 2, hw, c, kernel, bias, o);
    const row: string[] = [];
    for (const s of FP32_SETTINGS) {
      apply(s);
      const got = await model.predict(x, [2, hw, hw, c]);
      row.push(`${s.name} ${relativeError(got.output, ref).toExponential(2)}`);
    }
    console.log(`  ${c}->${o} at ${hw}x${hw}: ${row.join(', ')}`);
  }
  const model = vgg16Base('float32');
  const shape = [2, size, size, 3];
  const x = Uint8Array.from({ length: 2 * size * size * 3 }, (_, i) => (i * 2654435761) >>> 24);
  apply(DIRECT);
  const direct = (await model.predict(x, shape)).output;
  for (const s of FP32_SETTINGS.filter((s) => s !== DIRECT)) {
    apply(s);
    const other = (await model.predict(x, shape)).output;
    console.log(`  VGG16 ${size}x${size} features, ${s.name} vs oneDNN direct: ${relativeError(other, direct).toExponential(2)}`);
  }
}

async function timing(): Promise<void> {
  const model = vgg16Base(dtype);
  const shape = [batch, size, size, 3];
  const x = syntheticPixels(batch * size * size * 3);
  const features = () => model.predict(x, shape);
  for (const s of settings) {
    apply(s);
    await features(); // warm-up: primitives, packed weights, allocator
  }
  console.log(`VGG16 features ${precision}, ${size}x${size}, batch ${batch}, threads ${engine.info().threads}: img/s per round`);
  const rates = settings.map(() => [] as string[]);
  for (let r = 0; r < rounds; r++) {
    for (const [i, s] of settings.entries()) {
      apply(s);
      rates[i]!.push((batch / (await seconds(features))).toFixed(2));
    }
  }
  settings.forEach((s, i) => console.log(`  ${s.name}: ${rates[i]!.join(', ')}`));
  // per layer: the fastest of `rounds` passes under each setting, settings alternating
  const perLayer = new Map<string, number[]>();
  for (let r = 0; r < rounds; r++) {
    for (const [i, s] of settings.entries()) {
      apply(s);
      keepFastest(perLayer, await layerTimesOf(features), i, settings.length, (row) => row.forwardSeconds * 1e3);
    }
  }
  console.log(`per-layer forward ms, fastest of ${rounds} (${settings.map((s) => s.name).join(' / ')})`);
  for (const [name, times] of perLayer) console.log(`  ${name}: ${times.map((t) => t.toFixed(1)).join(' / ')}`);
  const total = settings.map((_, i) => [...perLayer.values()].reduce((sum, times) => sum + times[i]!, 0));
  console.log(`  all convolutions: ${total.map((t) => t.toFixed(0)).join(' / ')}`);

  if (dtype === 'mixed_bfloat16') {
    const roofBatch = Math.min(batch, 16);
    const roof = new Sequential([layers.conv2d({ filters: 256, kernelSize: 3, padding: 'same', activation: 'relu', name: 'roof' })], {
      inputShape: [56, 56, 256],
      preprocessing: 'none',
      seed: 1,
      dtype,
    });
    const input = noise(roofBatch * 56 * 56 * 256, 7);
    const flops = 2 * roofBatch * 56 * 56 * 9 * 256 * 256;
    const line: string[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const s of settings) {
        apply(s);
        await roof.predict(input, [roofBatch, 56, 56, 256]);
        // the layer's own forward time: the predict call also copies 51 MB in and out
        const t = (await layerTimesOf(() => roof.predict(input, [roofBatch, 56, 56, 256]))).find(
          (row) => row.layer === 'roof',
        )!.forwardSeconds;
        line.push(`${s.name} ${(flops / t / 1e12).toFixed(2)}`);
      }
    }
    console.log(`bf16 roof conv 256->256 at 56x56, batch ${roofBatch}, TFLOP/s: ${line.join(', ')}`);
  }
}

/** The experiment CNN's training step, fp32: libtorch's convolutions (direct) against Winograd. */
async function training(): Promise<void> {
  const step = cnnTrainStep(syntheticPixels(batch * size * size * 3), [batch, size, size, 3], 'float32');
  const modes = [DIRECT, WINOGRAD]; // direct (libtorch trains), auto (Winograd trains)
  for (const s of modes) {
    apply(s);
    await step();
  }
  console.log(`experiment CNN training step fp32, ${size}x${size}, batch ${batch}: img/s per round`);
  const rates = modes.map(() => [] as string[]);
  const perLayer = new Map<string, number[]>();
  for (let r = 0; r < rounds; r++) {
    for (const [i, s] of modes.entries()) {
      apply(s);
      rates[i]!.push((batch / (await seconds(step))).toFixed(2));
      keepFastest(perLayer, await layerTimesOf(step), i, modes.length, (row) => (row.forwardSeconds + row.backwardSeconds) * 1e3);
    }
  }
  modes.forEach((s, i) => console.log(`  ${s === DIRECT ? 'libtorch conv2d (direct)' : 'oneDNN Winograd'}: ${rates[i]!.join(', ')}`));
  console.log(`per-layer forward + backward ms, fastest of ${rounds} (direct / Winograd)`);
  for (const [name, times] of perLayer) console.log(`  ${name}: ${times.map((t) => t.toFixed(1)).join(' / ')}`);
}

if (process.argv.includes('--error')) await errors();
else if (process.argv.includes('--cnn')) await training();
else await timing();
