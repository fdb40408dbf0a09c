/**
 * Float32 inference and training through consecutive Winograd convolutions with the activations
 * kept in oneDNN's blocked layout (src/blocked-stretch.cc). The stretch must give what the same
 * layers give run one at a time (each its own one-layer model: the same oneDNN primitives,
 * converting to and from channels-last around every convolution) bit for bit, NaN included, and
 * match a float64 reference within Winograd's rounding. Cases: a relu conv into a pool (the relu
 * applied after the pool), a linear conv into a pool (no relu), odd sizes the 'valid' pool floors,
 * an image's first convolution starting a stretch, training (losses and weights bit for bit with
 * the stretch off: native().setBlockedStretch), and the layers a stretch must leave alone (8
 * filters; a few-channel convolution into a pool, the fused first block's).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../lib/engine/native.js';
import type { LayerConfig } from '../lib/keras-format/config.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { needsAvx512, needsDnnl, withSetting } from './helpers/engine-settings.js';
import {
  ArrayDataset,
  activation,
  assertBitExact,
  conv2d,
  maxAbs,
  maxAbsDiff,
  pool2d,
  prod,
  Rng,
  type T,
  tensor,
} from './helpers/naive.js';

const engine = native();
// oneDNN has Winograd and the blocked (16-channel) kernels only with AVX-512: elsewhere no stretch
// runs (the layers run one by one, as other tests check)
const skip = needsDnnl || (needsAvx512 && `${needsAvx512}: no stretch runs`);
const stretches = (): number => engine.info().blockedStretches;

interface ConvSpec {
  filters: number;
  padding: 'same' | 'valid';
  activation: 'relu' | 'linear';
}
type Spec = ConvSpec | 'pool';

const INPUT: [number, number, number] = [14, 13, 16];
const BATCH = 2;
// conv, conv, pool (after a relu conv), conv, pool (after a linear conv): 14x13 -> 7x6 -> 5x4 -> 2x2,
// odd widths and heights into both pools; the last pool ends the stretch, its 2 channel blocks
// written channels-last
const SPECS: Spec[] = [
  { filters: 32, padding: 'same', activation: 'relu' },
  { filters: 32, padding: 'same', activation: 'relu' },
  'pool',
  { filters: 32, padding: 'valid', activation: 'linear' },
  'pool',
];

function layerOf(spec: Spec, i: number): LayerConfig {
  return spec === 'pool'
    ? layers.maxPooling2d({ poolSize: 2, name: `l${i}` })
    : layers.conv2d({ filters: spec.filters, kernelSize: 3, padding: spec.padding, activation: spec.activation, name: `l${i}` });
}

function model(specs: Spec[], input: [number, number, number], first = 0): Sequential {
  return new Sequential(
    specs.map((s, i) => layerOf(s, first + i)),
    { inputShape: input, preprocessing: 'none', seed: 3 },
  );
}

/** kernel and bias per conv of `specs`, in Keras layout (HWIO) */
function weights(rng: Rng, specs = SPECS, input = INPUT): Map<number, Float32Array[]> {
  const out = new Map<number, Float32Array[]>();
  let channels = input[2];
  for (const [i, s] of specs.entries()) {
    if (s === 'pool') continue;
    out.set(i, [rng.floats(9 * channels * s.filters, -0.15, 0.15), rng.floats(s.filters, -0.3, 0.3)]);
    channels = s.filters;
  }
  return out;
}

/** the layers run one at a time, each as its own one-layer model */
async function layerByLayer(
  x: Float32Array,
  w: Map<number, Float32Array[]>,
  specs = SPECS,
  input = INPUT,
): Promise<{ output: Float32Array; shape: number[] }> {
  let data = x;
  let shape = [BATCH, ...input];
  for (const [i, s] of specs.entries()) {
    const m = model([s], shape.slice(1) as [number, number, number], i);
    const kw = w.get(i);
    if (kw) m.setLayerWeights(`l${i}`, kw);
    const before = stretches();
    const y = await m.predict(data, shape);
    assert.equal(stretches(), before, 'one layer alone is not a stretch');
    data = y.output;
    shape = y.shape;
  }
  return { output: data, shape };
}

/** the float64 reference */
function reference(x: Float32Array, w: Map<number, Float32Array[]>, specs = SPECS, input = INPUT): T {
  let t = tensor(x, [BATCH, ...input]);
  for (const [i, s] of specs.entries()) {
    if (s === 'pool') {
      t = pool2d(t, 'max', [2, 2], [2, 2], 'valid');
      continue;
    }
    const [kernel, bias] = w.get(i)!;
    t = activation(conv2d(t, kernel!, [3, 3, t.shape[3]!, s.filters], bias, { padding: s.padding }), s.activation);
  }
  return t;
}

/** the layers as one model, which must run them as one stretch */
async function stretched(
  x: Float32Array,
  w: Map<number, Float32Array[]>,
  specs = SPECS,
  input = INPUT,
): Promise<{ output: Float32Array; shape: number[] }> {
  const m = model(specs, input);
  for (const [i, kw] of w) m.setLayerWeights(`l${i}`, kw);
  const before = stretches();
  const y = await m.predict(x, [BATCH, ...input]);
  assert.equal(stretches(), before + 1, `the ${specs.length} layers ran as one stretch`);
  return y;
}

test('a stretch gives the bits of its layers run one at a time, and a float64 reference within Winograd rounding', { skip }, async () => {
  const rng = new Rng(41);
  const w = weights(rng);
  const x = rng.floats(prod([BATCH, ...INPUT]), -1, 1);
  const got = await stretched(x, w);
  const alone = await layerByLayer(x, w);
  assert.deepEqual(got.shape, [BATCH, 2, 2, 32]);
  assert.deepEqual(got.shape, alone.shape);
  assertBitExact(got.output, alone.output, 'stretch vs layer by layer');
  const ref = reference(x, w);
  const error = maxAbsDiff(got.output, ref.data) / maxAbs(ref.data);
  assert.ok(error <= 3e-5, `relative error ${error} against float64`);
  assert.ok(
    got.output.some((v) => v < 0),
    'the last pool follows a linear conv: negative values pass (no relu)',
  );
});

test('NaN inputs: the stretch keeps the NaNs its layers keep one at a time', { skip }, async () => {
  const rng = new Rng(42);
  const w = weights(rng);
  const x = rng.floats(prod([BATCH, ...INPUT]), -1, 1);
  for (const at of [5, 700, prod([BATCH, ...INPUT]) - 3]) x[at] = Number.NaN;
  const got = await stretched(x, w);
  const alone = await layerByLayer(x, w);
  assert.ok(got.output.some(Number.isNaN), 'some NaN reached the output');
  assert.ok(
    got.output.some((v) => !Number.isNaN(v)),
    'not all of it',
  );
  assertBitExact(got.output, alone.output, 'stretch vs layer by layer, NaN');
});

test('no stretch: 8 filters, direct convolution asked for, or a relu conv before a 3x3 pool', { skip }, async () => {
  const rng = new Rng(43);
  const x = rng.floats(2 * 8 * 8 * 16, -1, 1);
  const few = model(
    [{ filters: 8, padding: 'same', activation: 'relu' }, { filters: 16, padding: 'same', activation: 'relu' }, 'pool'],
    [8, 8, 16],
  );
  let before = stretches();
  await few.predict(x, [2, 8, 8, 16]);
  assert.equal(stretches(), before, '8 filters: no blocked layout without padding the channels');

  const direct = model(SPECS, INPUT);
  before = stretches();
  await withSetting(engine.setConvAlgorithm, 'direct', () => direct.predict(rng.floats(prod([BATCH, ...INPUT]), -1, 1), [BATCH, ...INPUT]));
  assert.equal(stretches(), before, "'direct': no Winograd, no stretch");

  // the conv before the 3x3 pool stays out (the pair path keeps its relu after the pool), and
  // one conv alone is no stretch
  const wide = new Sequential([layerOf(SPECS[0]!, 0), layerOf(SPECS[1]!, 1), layers.maxPooling2d({ poolSize: 3, name: 'p3' })], {
    inputShape: [8, 8, 16],
    preprocessing: 'none',
    seed: 3,
  });
  before = stretches();
  await wide.predict(x, [2, 8, 8, 16]);
  assert.equal(stretches(), before, 'no stretch into a pool it does not take');
});

test("an image's 3-channel first convolution starts a stretch into a Winograd one, and not into a pool", { skip }, async () => {
  const input: [number, number, number] = [10, 10, 3];
  const specs: Spec[] = [
    { filters: 16, padding: 'same', activation: 'relu' },
    { filters: 16, padding: 'same', activation: 'relu' },
    'pool',
  ];
  const rng = new Rng(44);
  const w = weights(rng, specs, input);
  const x = rng.floats(prod([BATCH, ...input]), -1, 1);
  const got = await stretched(x, w, specs, input);
  const alone = await layerByLayer(x, w, specs, input);
  const ref = reference(x, w, specs, input);
  assert.deepEqual(got.shape, [BATCH, 5, 5, 16]);
  assert.ok(maxAbsDiff(got.output, alone.output) / maxAbs(alone.output) <= 1e-6, 'as the layers one at a time, to float32 rounding');
  assert.ok(maxAbsDiff(got.output, ref.data) / maxAbs(ref.data) <= 3e-5, 'as float64, within Winograd rounding');

  // conv(relu) + pool as a model's first block stays on its fused kernel (few-channel-block.cc)
  const block = new Sequential([layerOf(specs[0]!, 0), layerOf('pool', 1), layers.flatten({ name: 'f' })], {
    inputShape: input,
    preprocessing: 'none',
    seed: 3,
  });
  const [start, dnnl] = [stretches(), engine.info().dnnlCalls];
  await block.predict(x, [BATCH, ...input]);
  assert.equal(stretches(), start, 'no stretch from a few-channel convolution into a pool');
  assert.equal(engine.info().dnnlCalls, dnnl, 'the fused first block ran, not oneDNN');
});

/**
 * `build()` trained for 2 epochs of 2 batches with the stretch on, then off: the stretches each ran,
 * and the two give the same losses and weights, bit for bit.
 */
async function trainBothWays(build: () => Sequential, seed: number): Promise<{ loss: number[]; stretches: number }> {
  const rng = new Rng(seed);
  const x = rng.floats(prod([4, ...INPUT]), -1, 1);
  const y = new Float32Array([0, 1, 1, 0]);
  const train = (stretch: boolean) =>
    withSetting(engine.setBlockedStretch, stretch, async () => {
      const m = build();
      const before = stretches();
      const history = await m.fit(new ArrayDataset(x, INPUT, y, 2), { epochs: 2, verbose: 0 });
      return { loss: history.history.loss!, weights: m.getWeights(), stretches: stretches() - before };
    });
  const on = await train(true);
  const off = await train(false);
  assert.equal(off.stretches, 0);
  assert.deepEqual(on.loss, off.loss);
  for (const [i, layer] of on.weights.entries()) {
    for (const [j, w] of layer.weights.entries()) {
      assertBitExact(w.data, off.weights[i]!.weights[j]!.data, `${layer.layerName} weight ${j}`);
    }
  }
  return on;
}

function compiled(configs: LayerConfig[], seed: number, learningRate: number): Sequential {
  const m = new Sequential(configs, { inputShape: INPUT, preprocessing: 'none', seed });
  m.compile({ optimizer: { sgd: { learningRate } }, loss: 'binaryCrossentropy' });
  return m;
}

const HEAD = (): LayerConfig[] => [layers.flatten({ name: 'f' }), layers.dense({ units: 1, activation: 'sigmoid', name: 'o' })];

test('training through a stretch: the losses and weights of the layers run one by one, bit for bit', { skip }, async () => {
  const on = await trainBothWays(() => compiled([...SPECS.map(layerOf), ...HEAD()], 5, 0.1), 45);
  assert.equal(on.stretches, 4, 'each of the 4 steps ran its convolutions as one stretch');
  assert.ok(on.loss[1]! < on.loss[0]!, 'the loss fell');
});

test('a frozen base then trainable convolutions: an inference stretch, then a training one ending at a conv, bit for bit', {
  skip,
}, async () => {
  const conv = (name: string, filters: number, activation: 'relu' | 'linear', trainable = true) =>
    layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation, trainable, name });
  const build = () =>
    compiled(
      [
        conv('a', 32, 'relu', false),
        conv('b', 32, 'relu', false),
        layers.maxPooling2d({ poolSize: 2, name: 'p' }),
        conv('c', 16, 'relu'),
        conv('d', 16, 'linear'),
        ...HEAD(),
      ],
      7,
      0.05,
    );
  const on = await trainBothWays(build, 46);
  assert.equal(on.stretches, 8, 'per step: a, b, p in inference; c, d in training');
});
