// BatchNormalization as Keras trains it: batch statistics and moving averages while training a
// trainable layer; moving averages (inference mode) when frozen and outside training.

import assert from 'node:assert/strict';
import test from 'node:test';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';

const C = 3;
const N = 4;
const HW = 2;

function model(trainable: boolean): Sequential {
  const m = new Sequential(
    [
      layers.batchNormalization({ inputShape: [HW, HW, C], trainable }),
      layers.flatten(),
      layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
    { seed: 4, preprocessing: 'none' },
  );
  m.compile({ optimizer: { adam: { learningRate: 0 } }, loss: 'binaryCrossentropy' });
  return m;
}

const x = Float32Array.from({ length: N * HW * HW * C }, (_, i) => Math.sin(i * 1.7) * 3 + (i % C));
const y = new Float32Array([0, 1, 0, 1]);

/** Per-channel mean and unbiased variance over the batch and the spatial positions (NHWC). */
function batchStats(): { mean: number[]; variance: number[] } {
  const mean: number[] = [];
  const variance: number[] = [];
  for (let c = 0; c < C; c++) {
    const values = Array.from({ length: N * HW * HW }, (_, i) => x[i * C + c]);
    const m = values.reduce((a, b) => a + b, 0) / values.length;
    mean.push(m);
    variance.push(values.reduce((a, v) => a + (v - m) ** 2, 0) / (values.length - 1));
  }
  return { mean, variance };
}

test('a trainable BatchNormalization moves its moving averages by (1 - momentum) of the batch statistics', async () => {
  const m = model(true);
  await m.engine.trainStep(x, [N, HW, HW, C], y, 0);
  const [gamma, beta, movingMean, movingVariance] = m.getLayerWeights(0).map((w) => Array.from(w.data));
  const { mean, variance } = batchStats();
  for (let c = 0; c < C; c++) {
    assert.ok(Math.abs(movingMean[c] - 0.01 * mean[c]) < 1e-5, `moving_mean[${c}] ${movingMean[c]} vs ${0.01 * mean[c]}`);
    assert.ok(Math.abs(movingVariance[c] - (0.99 + 0.01 * variance[c])) < 1e-5, `moving_variance[${c}]`);
  }
  assert.deepEqual(
    [gamma, beta],
    [
      [1, 1, 1],
      [0, 0, 0],
    ],
    'learning rate 0 leaves gamma and beta',
  );
});

test('a frozen BatchNormalization keeps its moving averages and normalises with them while training', async () => {
  const m = model(false);
  await m.engine.trainStep(x, [N, HW, HW, C], y, 0);
  const [, , movingMean, movingVariance] = m.getLayerWeights(0).map((w) => Array.from(w.data));
  assert.deepEqual(movingMean, [0, 0, 0]);
  assert.deepEqual(movingVariance, [1, 1, 1]);
});

test('outside training (predict), a trainable BatchNormalization uses the moving averages, not the batch', async () => {
  const m = model(true);
  const out = await m.predict(x, [N, HW, HW, C], { toLayer: 1 });
  const eps = 1e-3;
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(out.output[i] - x[i] / Math.sqrt(1 + eps)) < 1e-5);
});
