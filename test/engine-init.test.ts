/**
 * Keras initialisers in the engine: glorot_uniform kernels (conv fans include the receptive field),
 * zero biases, BatchNormalization ones/zeros, and seeding.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';

function initModel(seed: number): Sequential {
  return new Sequential(
    [
      layers.conv2d({ filters: 16, kernelSize: 3, inputShape: [12, 12, 3] }), // fans 27 / 144
      layers.conv2d({ filters: 8, kernelSize: [5, 3], padding: 'same' }), // fans 240 / 120
      layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 4 }), // fans 72 / 36
      layers.batchNormalization(),
      layers.flatten(),
      layers.dense({ units: 30, activation: 'relu' }), // fans 8*8*32 = 2048 / 30
      layers.dense({ units: 1, activation: 'sigmoid' }), // fans 30 / 1
    ],
    { seed, preprocessing: 'none', name: 'init' },
  );
}

const KERNELS: { layer: number; fanIn: number; fanOut: number; size: number }[] = [
  { layer: 0, fanIn: 9 * 3, fanOut: 9 * 16, size: 3 * 3 * 3 * 16 },
  { layer: 1, fanIn: 15 * 16, fanOut: 15 * 8, size: 5 * 3 * 16 * 8 },
  { layer: 2, fanIn: 9 * 8, fanOut: 9 * 4, size: 3 * 3 * 8 * 4 },
  { layer: 5, fanIn: 2048, fanOut: 30, size: 2048 * 30 },
  { layer: 6, fanIn: 30, fanOut: 1, size: 30 },
];

test('kernels are glorot_uniform: within ±sqrt(6 / (fan_in + fan_out)), filling the range uniformly', () => {
  const m = initModel(1234);
  for (const k of KERNELS) {
    const [kernel] = m.getLayerWeights(k.layer);
    assert.equal(kernel.data.length, k.size, `layer ${k.layer} kernel size`);
    const limit = Math.sqrt(6 / (k.fanIn + k.fanOut));
    let max = 0;
    let sum = 0;
    let sq = 0;
    for (const v of kernel.data) {
      max = Math.max(max, Math.abs(v));
      sum += v;
      sq += v * v;
    }
    const n = kernel.data.length;
    assert.ok(max <= limit * (1 + 1e-6), `layer ${k.layer}: max |w| ${max} exceeds the glorot limit ${limit}`);
    // with n draws the largest |w| is within a few percent of the limit (a libtorch kaiming or a
    // fan without the receptive field gives a clearly different bound)
    const spread = n >= 100 ? 0.9 : 0.6;
    assert.ok(max >= spread * limit, `layer ${k.layer}: max |w| ${max} is far below the glorot limit ${limit}`);
    const variance = sq / n - (sum / n) ** 2;
    const expectedVariance = (limit * limit) / 3;
    if (n >= 400) {
      assert.ok(
        Math.abs(variance / expectedVariance - 1) < 0.15,
        `layer ${k.layer}: variance ${variance}, uniform would give ${expectedVariance}`,
      );
      assert.ok(Math.abs(sum / n) < (4 * limit) / Math.sqrt(3 * n), `layer ${k.layer}: mean ${sum / n} is not centred`);
    }
  }
});

test('biases start at zero; BatchNormalization at gamma 1, beta 0, mean 0, variance 1', () => {
  const m = initModel(99);
  for (const layer of [0, 1, 2, 5, 6]) {
    const weights = m.getLayerWeights(layer);
    assert.equal(weights.length, 2);
    assert.match(weights[1].name, /\/bias$/);
    assert.ok(
      weights[1].data.every((v) => v === 0),
      `layer ${layer} bias is zero`,
    );
  }
  const bn = m.getLayerWeights(3);
  assert.deepEqual(
    bn.map((w) => w.name.split('/')[1]),
    ['gamma', 'beta', 'moving_mean', 'moving_variance'],
  );
  assert.deepEqual(
    bn.map((w) => Array.from(new Set(w.data))),
    [[1], [0], [0], [1]],
  );
});

test('same seed gives identical weights; another seed gives different ones', () => {
  const a = initModel(7).getWeights();
  initModel(8).getWeights(); // something else in between uses the generator
  const b = initModel(7).getWeights();
  const c = initModel(8).getWeights();
  assert.equal(a.length, b.length);
  a.forEach((layer, i) =>
    layer.weights.forEach((w, k) => assert.deepEqual(w.data, b[i].weights[k].data, `${w.name} differs between two models with seed 7`)),
  );
  const kernelsDiffer = a.filter(
    (layer, i) => layer.weights[0].name.endsWith('kernel') && !layer.weights[0].data.every((v, j) => v === c[i].weights[0].data[j]),
  );
  assert.equal(kernelsDiffer.length, KERNELS.length, 'every kernel differs between seeds 7 and 8');
});
