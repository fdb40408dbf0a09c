/**
 * The 'mixed_bfloat16' policy, layer kind by layer kind: the engine's forward pass and gradients
 * against float64 naive code, within bfloat16's precision (8 significant bits: relative error
 * about 4e-3 per rounding). Every case runs a Conv2D first, so gradients flow back through the
 * layer under test into weights, then Flatten and Dense(1, sigmoid) with binary crossentropy.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LayerConfig } from '../lib/keras-format/config.js';
import { layers } from '../lib/models/layers.js';
import type { Preprocessing } from '../lib/models/preprocessing.js';
import { Sequential } from '../lib/models/sequential.js';
import { needsBf16 } from './helpers/engine-settings.js';
import * as naive from './helpers/naive.js';
import { bf16, numericGradient, prod, Rng, relativeError, type T, tensor } from './helpers/naive.js';

const INPUT: [number, number, number] = [6, 6, 3];
const BATCH = 4;
/**
 * Relative L2 error allowed: bfloat16 rounds to 8 significant bits (4e-3) at each layer's inputs,
 * weights and outputs, and two layers compute in bfloat16 before any output is compared (measured:
 * 0.3-0.8% for gradients, up to 1.7% for a depthwise convolution's output). Float32 gives 1e-7.
 */
const TOLERANCE = 2e-2;
const CONV = { filters: 3, kernel: [3, 3, 3, 3] as [number, number, number, number] };

interface Case {
  name: string;
  /** the layer under test, after the Conv2D */
  layer: LayerConfig;
  /** its weights (Keras layout), set on the model and given to `forward` */
  weights?: (rng: Rng) => Float32Array[];
  /** how many of them are trained (BatchNormalization's moving statistics are not); default all */
  variables?: number;
  /** the layer takes a flat input: a Flatten comes between the Conv2D and it */
  flatInput?: boolean;
  /** float64 reference of the layer on the conv's output */
  forward: (x: T, w: Float64Array[]) => T;
  preprocessing?: Preprocessing;
}

/** Keras BatchNormalization while training: the batch's mean and (biased) variance per channel. */
function batchNormTraining(x: T, gamma: ArrayLike<number>, beta: ArrayLike<number>, eps: number): T {
  const c = x.shape[x.shape.length - 1];
  const n = x.data.length / c;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let i = 0; i < x.data.length; i++) mean[i % c] += x.data[i] / n;
  for (let i = 0; i < x.data.length; i++) variance[i % c] += (x.data[i] - mean[i % c]) ** 2 / n;
  return naive.batchNorm(x, gamma, beta, mean, variance, eps);
}

const CASES: Case[] = [
  { name: 'Conv2D + Activation relu', layer: layers.activation({ activation: 'relu' }), forward: (x) => naive.activation(x, 'relu') },
  {
    name: 'Conv2D same, strided',
    layer: layers.conv2d({ filters: 2, kernelSize: 2, strides: 2, padding: 'same', activation: 'tanh' }),
    weights: (r) => [r.floats(2 * 2 * 3 * 2, -0.5, 0.5), r.floats(2, -0.1, 0.1)],
    forward: (x, w) => naive.activation(naive.conv2d(x, w[0], [2, 2, 3, 2], w[1], { strides: [2, 2], padding: 'same' }), 'tanh'),
  },
  {
    name: 'DepthwiseConv2D',
    layer: layers.depthwiseConv2d({ kernelSize: 2, depthMultiplier: 2, activation: 'relu6' }),
    weights: (r) => [r.floats(2 * 2 * 3 * 2, -0.5, 0.5), r.floats(6, -0.1, 0.1)],
    forward: (x, w) => naive.activation(naive.depthwiseConv2d(x, w[0], [2, 2, 3, 2], w[1]), 'relu6'),
  },
  { name: 'MaxPooling2D', layer: layers.maxPooling2d({ poolSize: 2 }), forward: (x) => naive.pool2d(x, 'max', [2, 2], [2, 2], 'valid') },
  {
    name: 'AveragePooling2D same',
    layer: layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
    forward: (x) => naive.pool2d(x, 'avg', [3, 3], [2, 2], 'same'),
  },
  { name: 'GlobalAveragePooling2D', layer: layers.globalAveragePooling2d(), forward: (x) => naive.globalAvgPool(x) },
  {
    name: 'ZeroPadding2D',
    layer: layers.zeroPadding2d({
      padding: [
        [1, 0],
        [0, 2],
      ],
    }),
    forward: (x) => naive.zeroPad(x, 1, 0, 0, 2),
  },
  {
    name: 'BatchNormalization',
    layer: layers.batchNormalization({ epsilon: 1e-3 }),
    weights: (r) => [r.floats(3, 0.5, 1.5), r.floats(3, -0.2, 0.2), new Float32Array(3), new Float32Array(3).fill(1)],
    variables: 2,
    forward: (x, w) => batchNormTraining(x, w[0], w[1], 1e-3),
  },
  {
    name: 'Dense (elu)',
    layer: layers.dense({ units: 5, activation: 'elu' }),
    weights: (r) => [r.floats(4 * 4 * 3 * 5, -0.3, 0.3), r.floats(5, -0.1, 0.1)],
    flatInput: true,
    forward: (x, w) => naive.activation(naive.dense(naive.flatten(x), w[0], 5, w[1]), 'elu'),
  },
  { name: 'Activation sigmoid', layer: layers.activation({ activation: 'sigmoid' }), forward: (x) => naive.activation(x, 'sigmoid') },
  { name: 'Flatten', layer: layers.flatten(), forward: (x) => naive.flatten(x) },
  { name: 'Reshape', layer: layers.reshape({ targetShape: [8, 6] }), forward: (x) => ({ data: x.data, shape: [x.shape[0], 8, 6] }) },
  { name: 'Dropout (rate 0: the identity, also in training)', layer: layers.dropout({ rate: 0 }), forward: (x) => x },
  {
    name: 'preprocessing tf (x / 127.5 - 1)',
    layer: layers.activation({ activation: 'linear' }),
    forward: (x) => x,
    preprocessing: 'tf',
  },
];

function buildCase(c: Case, seed: number) {
  const rng = new Rng(seed);
  const at = c.flatInput ? 2 : 1; // index of the layer under test
  const flatOutput = c.flatInput || c.name.startsWith('Global') || c.name === 'Flatten';
  const model = new Sequential(
    [
      layers.conv2d({ filters: CONV.filters, kernelSize: 3, inputShape: INPUT }),
      ...(c.flatInput ? [layers.flatten()] : []),
      c.layer,
      ...(flatOutput ? [] : [layers.flatten()]),
      layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
    { seed, preprocessing: c.preprocessing ?? 'none', dtype: 'mixed_bfloat16' },
  );
  const convW = [rng.floats(prod(CONV.kernel), -0.5, 0.5), rng.floats(3, -0.1, 0.1)];
  model.setLayerWeights(0, convW);
  const layerW = c.weights?.(rng) ?? [];
  if (layerW.length) model.setLayerWeights(at, layerW);
  const head = model.layers.length - 1;
  const headW = [rng.floats(prod(model.layers[head].inputShape), -0.5, 0.5), rng.floats(1, -0.1, 0.1)];
  model.setLayerWeights(head, headW);
  const tf = c.preprocessing === 'tf';
  const xf = tf ? rng.floats(BATCH * prod(INPUT), 0, 255) : rng.floats(BATCH * prod(INPUT), -1, 1);
  const x = tensor(
    xf.map((v) => (tf ? v / 127.5 - 1 : v)),
    [BATCH, ...INPUT],
  );
  // the trained weights, in order: conv kernel and bias, the layer's variables, head kernel and bias
  const nVar = c.variables ?? layerW.length;
  const trained = (): Float64Array[] =>
    [...model.getLayerWeights(0), ...model.getLayerWeights(at).slice(0, nVar), ...model.getLayerWeights(head)].map((w) =>
      Float64Array.from(w.data),
    );
  const params = trained();
  const fixed = layerW.slice(nVar).map((w) => Float64Array.from(w));
  const layerOut = (p: Float64Array[]) => c.forward(naive.conv2d(x, p[0], CONV.kernel, p[1]), [...p.slice(2, 2 + nVar), ...fixed]);
  const logits = (p: Float64Array[]) => naive.dense(naive.flatten(layerOut(p)), p[2 + nVar], 1, p[3 + nVar]).data;
  return { model, xf, params, layerOut, logits, trained, at };
}

for (const c of CASES) {
  test(`mixed_bfloat16 ${c.name}: forward and gradients match float64 within bfloat16 precision`, { skip: needsBf16 }, async () => {
    const { model, xf, params, layerOut, logits, trained, at } = buildCase(c, 7);
    const shape = [BATCH, ...INPUT];

    // forward, the layer under test's output (predict runs in inference: Dropout and BatchNorm use
    // their inference form there, so those two are checked through the training step below)
    if (!c.name.startsWith('BatchNorm')) {
      const out = await model.predict(xf, shape, { toLayer: at + 1 });
      const expected = layerOut(params).data;
      const err = relativeError(out.output, expected);
      assert.ok(err < TOLERANCE, `${c.name} forward: relative error ${err} is beyond bfloat16's`);
      assert.ok(err > 1e-5, `${c.name} forward: relative error ${err} is float32's: the layer did not compute in bfloat16`);
    }

    // gradients: one SGD step with learning rate 1 moves every weight by minus its gradient
    const y = Float32Array.from([0, 1, 1, 0]);
    model.compile({ optimizer: { sgd: { learningRate: 1 } }, loss: 'binaryCrossentropy' });
    const step = await model.engine.trainStep(xf, shape, y, 0);
    const expectedLoss = naive.bceFromLogits(logits(params), y);
    assert.ok(Math.abs(step.loss - expectedLoss) < 1e-2 * Math.abs(expectedLoss), `loss ${step.loss} vs float64 ${expectedLoss}`);
    const after = trained();
    const grads = numericGradient(() => naive.bceFromLogits(logits(params), y), params);
    // per layer (kernel and bias together): a bias right before BatchNormalization has a zero gradient
    const nVar = params.length - 4;
    const groups = [[0, 1], nVar ? Array.from({ length: nVar }, (_, i) => 2 + i) : [], [2 + nVar, 3 + nVar]].filter((g) => g.length);
    for (const group of groups) {
      const engine = group.flatMap((k) => Array.from(params[k], (b, i) => b - after[k][i]));
      const err = relativeError(
        engine,
        group.flatMap((k) => Array.from(grads[k])),
      );
      assert.ok(err < TOLERANCE, `${c.name} gradient of weights ${group}: relative error ${err} is beyond bfloat16's`);
    }
  });
}

test('mixed_bfloat16: the output layer activates in float32 (Keras: a float32 output for a stable loss)', { skip: needsBf16 }, async () => {
  const rng = new Rng(3);
  const model = new Sequential([layers.dense({ units: 1, activation: 'sigmoid', inputShape: [8] })], {
    preprocessing: 'none',
    dtype: 'mixed_bfloat16',
  });
  model.setLayerWeights(0, [rng.floats(8, 0.2, 0.8), rng.floats(1, 0, 0.1)]);
  const x = rng.floats(64 * 8, 0, 1.5);
  const { output } = await model.predict(x, [64, 8]);
  // sigmoid in bfloat16 would give probabilities on bfloat16's grid: multiples of 2^-8 in [0.5, 1)
  const offGrid = Array.from(output).filter((p) => p > 0.5 && p < 1 && (p * 256) % 1 !== 0).length;
  assert.ok(offGrid > 32, `only ${offGrid} of 64 probabilities lie off bfloat16's grid: the sigmoid ran in bfloat16`);
});

/**
 * A frozen base's layers in inference under mixed_bfloat16 (MobileNet's BatchNormalization and
 * relu6 after every convolution): each reads the bfloat16 activations in one pass. Checked against
 * the same model without the layer, on the convolution's own bfloat16 output.
 */
async function convOutputAndAfter(after: LayerConfig, weights: Float32Array[] | undefined, seed: number) {
  const rng = new Rng(seed);
  const build = (extra: LayerConfig[]) =>
    new Sequential([layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'c' }), ...extra, layers.flatten({ name: 'f' })], {
      inputShape: [5, 6, 3],
      preprocessing: 'none',
      dtype: 'mixed_bfloat16',
    });
  const plain = build([]);
  const withLayer = build([after]);
  const kernel = [rng.floats(3 * 3 * 3 * 4, -1.5, 1.5), rng.floats(4, -1, 1)];
  plain.setLayerWeights('c', kernel);
  withLayer.setLayerWeights('c', kernel);
  if (weights) withLayer.setLayerWeights(1, weights);
  const x = rng.floats(2 * 5 * 6 * 3, -3, 3);
  const conv = (await plain.predict(x, [2, 5, 6, 3])).output;
  const out = (await withLayer.predict(x, [2, 5, 6, 3])).output;
  return { conv, out };
}

test('mixed_bfloat16 inference: relu6 clips the bfloat16 conv output exactly', { skip: needsBf16 }, async () => {
  const { conv, out } = await convOutputAndAfter(layers.activation({ activation: 'relu6', name: 'r' }), undefined, 21);
  assert.ok(conv.some((v) => v < 0) && conv.some((v) => v > 6) && conv.some((v) => v > 0 && v < 6), 'values on both sides of the clip');
  const wrong = Array.from(out).filter((v, i) => v !== Math.min(Math.max(conv[i]!, 0), 6)).length;
  assert.equal(wrong, 0, `${wrong} of ${out.length} values are not min(max(x, 0), 6)`);
});

test('mixed_bfloat16 inference: BatchNormalization on moving statistics computes in float32 and rounds once to bfloat16', {
  skip: needsBf16,
}, async () => {
  const rng = new Rng(22);
  const [gamma, beta, mean, variance] = [rng.floats(4, 0.5, 2), rng.floats(4, -1, 1), rng.floats(4, -1, 1), rng.floats(4, 0.2, 3)];
  const eps = 1e-3;
  const bn = layers.batchNormalization({ epsilon: eps, name: 'bn' });
  const { conv, out } = await convOutputAndAfter(bn, [gamma, beta, mean, variance], 23);
  let exact = 0;
  for (const [i, v] of out.entries()) {
    const c = i % 4;
    const alpha = gamma[c]! / Math.sqrt(variance[c]! + eps);
    const ref = (conv[i]! - mean[c]!) * alpha + beta[c]!;
    assert.equal(bf16(v), v, `output ${i} is bfloat16`);
    // one bfloat16 rounding of a float32 result: within half a bfloat16 step of the float64 value,
    // plus float32's error where the terms cancel
    const step = 2 ** (Math.floor(Math.log2(Math.abs(ref) || 1e-30)) - 7);
    const float32Error = 2 ** -22 * (Math.abs(conv[i]! * alpha) + Math.abs(beta[c]! - mean[c]! * alpha));
    assert.ok(Math.abs(v - ref) <= step / 2 + float32Error, `output ${i}: ${v} against ${ref}`);
    if (v === bf16(ref)) exact++;
  }
  assert.ok(exact >= 0.95 * out.length, `only ${exact} of ${out.length} are the float64 value rounded to bfloat16`);
});

test("mixed_bfloat16 training: relu6's gradient is TensorFlow's, one strictly inside (0, 6), zero at 0, at 6 and beyond", {
  skip: needsBf16,
}, async () => {
  // y = relu6(k * x) with k = 1 on bfloat16-exact values, then Dense(1, sigmoid): dL/dk sums
  // x_i * dL/dy_i over the positions relu6 passes, here only x = 3 (weight 0.375); letting 6
  // (at the clip) or 7.5 (beyond it) through would add 6 * 0.5 or 7.5 * 0.625
  const m = new Sequential(
    [
      layers.conv2d({ filters: 1, kernelSize: 1, useBias: false, name: 'c' }),
      layers.activation({ activation: 'relu6', name: 'r' }),
      layers.flatten({ name: 'f' }),
      layers.dense({ units: 1, activation: 'sigmoid', name: 'd' }),
    ],
    { inputShape: [1, 5, 1], preprocessing: 'none', dtype: 'mixed_bfloat16' },
  );
  const w = [0.125, 0.25, 0.375, 0.5, 0.625];
  m.setLayerWeights('c', [Float32Array.of(1)]);
  m.setLayerWeights('d', [Float32Array.from(w), Float32Array.of(0)]);
  m.compile({ optimizer: { sgd: { learningRate: 0.5 } }, loss: 'binaryCrossentropy' });
  const x = Float32Array.of(-1, 0, 3, 6, 7.5);
  await m.engine.trainStep(x, [1, 1, 5, 1], Float32Array.of(0), 0);
  const y = [0, 0, 3, 6, 6];
  const p = 1 / (1 + Math.exp(-y.reduce((a, v, i) => a + v * w[i]!, 0)));
  const gradient = 3 * p * w[2]!; // label 0: dL/dz = p
  const k = m.getLayerWeights('c')[0]!.data[0]!;
  assert.ok(Math.abs(1 - k - 0.5 * gradient) < 0.01 * 0.5 * gradient, `k moved by ${1 - k}, expected ${0.5 * gradient}`);
});
