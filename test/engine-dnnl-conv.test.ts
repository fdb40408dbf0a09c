/**
 * Inference convolutions through oneDNN directly (src/dnnl-conv.cc): float32 direct and Winograd,
 * mixed_bfloat16, ReLU fused or not, 'same'/'valid' padding, strides, odd channel counts, batches
 * of 1 and more, against a naive float64 convolution; packed weights follow new weights; a whole
 * VGG16 gives the outputs of libtorch's conv2d path (native().setDnnlConv(false)).
 *
 * Tolerances, as a fraction of the largest |output| of the reference (measured: docs/benchmarks.md,
 * `node dist/bench/dnnl-conv.js --error`): direct float32 up to 2.7e-6 (512 channels; libtorch's
 * conv2d the same), Winograd up to 3.6e-6 (F(4x4, 3x3), 256 channels); bfloat16 inputs and weights
 * keep 8 significant bits (~1e-2).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vgg16Layers } from '../lib/applications/vgg16.js';
import { parseCompareArgs } from '../lib/cli/commands/compare.js';
import { type ConvAlgorithm, native } from '../lib/engine/native.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { needsBf16, needsDnnl, withSetting } from './helpers/engine-settings.js';
import {
  activation,
  assertClose,
  bceFromLogits,
  conv2d,
  dense,
  flatten,
  maxAbs,
  maxAbsDiff,
  numericGradient,
  prod,
  Rng,
  type T,
  tensor,
} from './helpers/naive.js';

const skip = needsDnnl;
const bf16Skip = skip || needsBf16;

const TOLERANCE = { direct: 5e-6, winograd: 1e-5, bf16: 3e-2 };

interface Case {
  batch: number;
  size: [number, number];
  channels: number;
  filters: number;
  kernel?: number;
  strides?: [number, number];
  dilation?: [number, number];
  padding: 'same' | 'valid';
  act: 'relu' | 'linear';
}

/** largest |actual - expected| as a fraction of the largest |expected| */
function relativeMaxError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  const scale = maxAbs(expected);
  assert.ok(scale > 0, 'the reference is not all zeros');
  return maxAbsDiff(actual, expected) / scale;
}

function withSettings<T>(algorithm: ConvAlgorithm, dnnl: boolean, work: () => Promise<T>): Promise<T> {
  const engine = native();
  return withSetting(engine.setConvAlgorithm, algorithm, () => withSetting(engine.setDnnlConv, dnnl, work));
}

function convModel(c: Case, dtype: 'float32' | 'mixed_bfloat16', seed: number): Sequential {
  const kernel = c.kernel ?? 3;
  return new Sequential(
    [
      layers.conv2d({
        filters: c.filters,
        kernelSize: kernel,
        strides: c.strides,
        dilationRate: c.dilation,
        padding: c.padding,
        activation: c.act,
        name: 'conv',
      }),
    ],
    { inputShape: [...c.size, c.channels], preprocessing: 'none', seed, dtype },
  );
}

/** The float64 reference of case `c`'s layer (its batch and size come from `shape`) for these kernel and bias. */
function convReference(c: Case, x: ArrayLike<number>, shape: number[], [kernel, bias]: ArrayLike<number>[]): T {
  const k = c.kernel ?? 3;
  return activation(
    conv2d(tensor(x, shape), kernel!, [k, k, c.channels, c.filters], bias, {
      strides: c.strides,
      dilation: c.dilation,
      padding: c.padding,
    }),
    c.act,
  );
}

/** The engine's output and the float64 reference for one case, with random input, kernel and bias. */
async function runCase(c: Case, dtype: 'float32' | 'mixed_bfloat16', algorithm: ConvAlgorithm, seed: number) {
  const rng = new Rng(seed);
  const kernel = c.kernel ?? 3;
  const model = convModel(c, dtype, seed);
  const weights = [rng.floats(kernel * kernel * c.channels * c.filters, -0.2, 0.2), rng.floats(c.filters, -0.5, 0.5)];
  model.setLayerWeights('conv', weights);
  const shape = [c.batch, ...c.size, c.channels];
  const x = rng.floats(prod(shape), -1, 1);
  const calls = native().info().dnnlCalls;
  const got = await withSettings(algorithm, true, () => model.predict(x, shape));
  assert.equal(native().info().dnnlCalls, calls + 1, 'the convolution ran through oneDNN');
  const ref = convReference(c, x, shape, weights);
  assert.deepEqual(got.shape, ref.shape);
  return { got: got.output, ref: ref.data };
}

const CASES: Case[] = [
  { batch: 2, size: [12, 12], channels: 16, filters: 32, padding: 'same', act: 'relu' },
  { batch: 1, size: [13, 11], channels: 32, filters: 16, padding: 'valid', act: 'linear' },
  { batch: 3, size: [10, 10], channels: 5, filters: 7, padding: 'same', act: 'relu' }, // not multiples of 16: direct
  { batch: 2, size: [11, 11], channels: 16, filters: 16, strides: [2, 2], padding: 'same', act: 'linear' }, // asymmetric padding
  { batch: 2, size: [9, 9], channels: 3, filters: 16, kernel: 1, padding: 'valid', act: 'relu' },
  { batch: 2, size: [12, 12], channels: 16, filters: 16, dilation: [2, 2], padding: 'same', act: 'relu' },
  { batch: 1, size: [18, 18], channels: 256, filters: 256, padding: 'same', act: 'linear' }, // oneDNN's Winograd F(4x4, 3x3)
];

for (const algorithm of ['direct', 'winograd'] as const) {
  test(`float32 ${algorithm}: matches a float64 convolution`, { skip }, async () => {
    for (const [i, c] of CASES.entries()) {
      const { got, ref } = await runCase(c, 'float32', algorithm, 10 + i);
      const error = relativeMaxError(got, ref);
      assert.ok(error <= TOLERANCE[algorithm], `case ${JSON.stringify(c)}: error ${error} > ${TOLERANCE[algorithm]}`);
      if (c.act === 'relu') assert.ok(Math.min(...got) >= 0, 'relu applied');
    }
  });
}

test('mixed_bfloat16: matches a float64 convolution within bfloat16 rounding', { skip: bf16Skip }, async () => {
  for (const [i, c] of CASES.entries()) {
    const { got, ref } = await runCase(c, 'mixed_bfloat16', 'auto', 20 + i);
    const error = relativeMaxError(got, ref);
    assert.ok(error <= TOLERANCE.bf16, `case ${JSON.stringify(c)}: error ${error} > ${TOLERANCE.bf16}`);
  }
});

test('packed weights follow setWeights and a training step', { skip }, async () => {
  const rng = new Rng(31);
  const c: Case = { batch: 2, size: [8, 8], channels: 16, filters: 16, padding: 'same', act: 'relu' }; // the model's conv
  const shape = [2, 8, 8, 16];
  const x = rng.floats(2 * 8 * 8 * 16, -1, 1);
  const model = new Sequential(
    [
      layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv' }),
      layers.flatten(),
      layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
    { inputShape: shape.slice(1), preprocessing: 'none', seed: 31 },
  );
  const check = async (what: string) => {
    const [kernel, bias] = model.getLayerWeights('conv').map((w) => w.data);
    const got = await model.predict(x, shape, { toLayer: 1 });
    const ref = convReference(c, x, shape, [kernel!, bias!]);
    const error = relativeMaxError(got.output, ref.data);
    assert.ok(error <= TOLERANCE.winograd, `${what}: error ${error}`);
  };
  await check('first weights');
  model.setLayerWeights('conv', [rng.floats(3 * 3 * 16 * 16, -0.3, 0.3), rng.floats(16, -0.1, 0.1)]);
  await check('after setLayerWeights');

  model.compile({ optimizer: { sgd: { learningRate: 0.5 } }, loss: 'binaryCrossentropy' });
  const before = model.getLayerWeights('conv')[0]!.data.slice();
  await model.engine.trainStep(x, shape, Float32Array.from([0, 1]), 0);
  assert.notDeepEqual(model.getLayerWeights('conv')[0]!.data, before, 'the step changed the kernel');
  await check('after a training step');
});

test('batch sizes that come and go (more than the 8 kept per layer) each give the reference', { skip }, async () => {
  const c: Case = { batch: 1, size: [8, 8], channels: 32, filters: 32, padding: 'same', act: 'relu' };
  const rng = new Rng(41);
  const model = convModel(c, 'float32', 41);
  const weights = [rng.floats(9 * 32 * 32, -0.2, 0.2), rng.floats(32, -0.5, 0.5)];
  model.setLayerWeights('conv', weights);
  for (const batch of [2, 3, 1, 5, 4, 6, 7, 8, 9, 10, 2, 3]) {
    const shape = [batch, 8, 8, 32];
    const x = rng.floats(batch * 8 * 8 * 32, -1, 1);
    const got = await model.predict(x, shape);
    const ref = convReference(c, x, shape, weights);
    const error = relativeMaxError(got.output, ref.data);
    assert.ok(error <= TOLERANCE.winograd, `batch ${batch}: error ${error}`);
  }
});

test("a batch over Winograd's per-call budget runs in slices of rows, each row the reference", { skip }, async () => {
  const c: Case = { batch: 5, size: [12, 12], channels: 16, filters: 32, padding: 'same', act: 'relu' };
  const engine = native();
  // every row its own call
  await withSetting(engine.setWinogradCallBytes, 1, async () => {
    const rng = new Rng(43);
    const model = convModel(c, 'float32', 43);
    const weights = [rng.floats(9 * 16 * 32, -0.2, 0.2), rng.floats(32, -0.5, 0.5)];
    model.setLayerWeights('conv', weights);
    const shape = [5, 12, 12, 16];
    const x = rng.floats(5 * 12 * 12 * 16, -1, 1);
    const calls = engine.info().dnnlCalls;
    const got = await withSettings('winograd', true, () => model.predict(x, shape));
    assert.equal(engine.info().dnnlCalls, calls + 5, 'one oneDNN call per row');
    const ref = convReference(c, x, shape, weights);
    const error = relativeMaxError(got.output, ref.data);
    assert.ok(error <= TOLERANCE.winograd, `error ${error}`);
  });
  assert.throws(() => engine.setWinogradCallBytes(0), /bytes must be a number from 1/);
});

test('VGG16 (32x32, random weights): the oneDNN path gives libtorch conv2d outputs', { skip, timeout: 600_000 }, async () => {
  const model = new Sequential(
    vgg16Layers([32, 32, 3]).filter((l) => l.class_name !== 'InputLayer'),
    { inputShape: [32, 32, 3], preprocessing: 'caffe', seed: 3 },
  );
  const shape = [2, 32, 32, 3];
  const x = new Rng(4).bytes(2 * 32 * 32 * 3);
  const before = native().info().dnnlCalls;
  const libtorch = await withSettings('auto', false, () => model.predict(x, shape));
  assert.equal(native().info().dnnlCalls, before, 'switched off: libtorch conv2d');
  for (const algorithm of ['direct', 'winograd'] as const) {
    const calls = native().info().dnnlCalls;
    const dnnl = await withSettings(algorithm, true, () => model.predict(x, shape));
    assert.equal(native().info().dnnlCalls, calls + 13, 'all 13 convolutions through oneDNN');
    const error = relativeMaxError(dnnl.output, libtorch.output);
    // 13 layers deep: each adds its own rounding, relative to that layer's largest output
    assert.ok(error <= 20 * TOLERANCE[algorithm], `${algorithm}: error ${error} through the stack`);
  }
});

test('compare --conv-algorithm: auto by default, direct or winograd, anything else refused by name', () => {
  assert.equal(parseCompareArgs(['--out', 'x']).config!.convAlgorithm, 'auto');
  assert.equal(parseCompareArgs(['--out', 'x', '--conv-algorithm', 'direct']).config!.convAlgorithm, 'direct');
  assert.equal(parseCompareArgs(['--out', 'x', '--conv-algorithm', 'winograd']).config!.convAlgorithm, 'winograd');
  assert.throws(
    () => parseCompareArgs(['--out', 'x', '--conv-algorithm', 'fft']),
    /--conv-algorithm takes auto, direct or winograd \(got 'fft'\)/,
  );
});

test('setConvAlgorithm refuses an unknown algorithm', () => {
  assert.throws(() => native().setConvAlgorithm('fft' as ConvAlgorithm), /'auto', 'direct' or 'winograd' \(got 'fft'\)/);
  assert.equal(native().setConvAlgorithm('auto'), 'auto', 'left unchanged');
});

/** conv_a (16 -> 16, 'valid', relu) -> conv_b (16 -> 16, 'same') -> flatten -> dense 1 sigmoid, on 5x5x16 inputs */
function trainingModel(seed: number): Sequential {
  return new Sequential(
    [
      layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu', name: 'conv_a' }),
      layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', name: 'conv_b' }),
      layers.flatten(),
      layers.dense({ units: 1, activation: 'sigmoid', name: 'out' }),
    ],
    { inputShape: [5, 5, 16], preprocessing: 'none', seed },
  );
}

/** mean binary crossentropy of the model above from its logits, in float64 */
function trainingLoss(x: T, y: ArrayLike<number>, p: Float64Array[]): number {
  let h = activation(conv2d(x, p[0]!, [3, 3, 16, 16], p[1]), 'relu');
  h = conv2d(h, p[2]!, [3, 3, 16, 16], p[3], { padding: 'same' });
  const logits = dense(flatten(h), p[4]!, 1, p[5]).data;
  return bceFromLogits(logits, y);
}

test('float32 training: Winograd forward and backward give the float64 gradient (one SGD step)', { skip, timeout: 120_000 }, async () => {
  const rng = new Rng(51);
  const model = trainingModel(51);
  model.setLayerWeights('conv_a', [rng.floats(9 * 16 * 16, -0.2, 0.2), rng.floats(16, 0, 0.2)]);
  model.setLayerWeights('conv_b', [rng.floats(9 * 16 * 16, -0.2, 0.2), rng.floats(16, -0.1, 0.1)]);
  model.setLayerWeights('out', [rng.floats(3 * 3 * 16, -0.3, 0.3), rng.floats(1, -0.1, 0.1)]);
  const rate = 0.5;
  model.compile({ optimizer: { sgd: { learningRate: rate } }, loss: 'binaryCrossentropy' });
  const shape = [2, 5, 5, 16];
  const xf = rng.floats(2 * 5 * 5 * 16, -1, 1);
  const y = Float32Array.from([0, 1]);
  const names = ['conv_a', 'conv_b', 'out'];
  const before = names.flatMap((n) => model.getLayerWeights(n).map((w) => Float64Array.from(w.data)));
  const grads = numericGradient(() => trainingLoss(tensor(xf, shape), y, before), before);

  const calls = native().info().dnnlCalls;
  await withSettings('auto', true, () => model.engine.trainStep(xf, shape, y, 0));
  assert.equal(native().info().dnnlCalls, calls + 2, 'both convolutions trained through oneDNN');
  const after = names.flatMap((n) => model.getLayerWeights(n).map((w) => Float64Array.from(w.data)));
  after.forEach((w, k) => {
    const delta = w.map((v, i) => v - before[k]![i]!);
    const wanted = grads[k]!.map((g) => -rate * g);
    assert.ok(maxAbs(wanted) > 1e-4, `weight ${k}: the expected update is measurable`);
    assertClose(delta, wanted, { atol: 1e-6, rtol: 1e-3, what: `weight ${k} update` });
  });
});
