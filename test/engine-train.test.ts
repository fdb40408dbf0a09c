/**
 * Gradients, losses and Keras's Adam: one engine trainStep against a float64 naive forward pass,
 * finite-difference gradients and the Keras Adam formula, weight by weight.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Dataset } from '../lib/data/types.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import * as naive from './helpers/naive.js';
import { ArrayDataset, assertClose, KerasAdam, maxAbs, numericGradient, prod, Rng, type T, tensor } from './helpers/naive.js';

const INPUT: [number, number, number] = [6, 6, 2];
const BATCH = 4;

/** conv 3x3 relu -> maxpool 2 -> flatten -> dense 4 relu -> dense 1 sigmoid */
function tinyModel(seed = 1): Sequential {
  return new Sequential(
    [
      layers.conv2d({ filters: 3, kernelSize: 3, activation: 'relu', inputShape: INPUT }),
      layers.maxPooling2d({ poolSize: 2 }),
      layers.flatten(),
      layers.dense({ units: 4, activation: 'relu' }),
      layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
    { seed, preprocessing: 'none', name: 'tiny' },
  );
}

const WEIGHT_LAYERS = [0, 3, 4];

/** logits of the tiny model for params [convK, convB, d1K, d1B, d2K, d2B], in float64 */
function tinyLogits(x: T, p: Float64Array[]): Float64Array {
  let h = naive.activation(naive.conv2d(x, p[0], [3, 3, 2, 3], p[1]), 'relu');
  h = naive.pool2d(h, 'max', [2, 2], [2, 2], 'valid');
  h = naive.flatten(h);
  h = naive.activation(naive.dense(h, p[2], 4, p[3]), 'relu');
  return naive.dense(h, p[4], 1, p[5]).data;
}

function readWeights(m: Sequential): Float64Array[] {
  return WEIGHT_LAYERS.flatMap((l) => m.getLayerWeights(l).map((w) => Float64Array.from(w.data)));
}

function setup(seed: number): { m: Sequential; x: T; xf: Float32Array; y: Float32Array; w0: Float64Array[] } {
  const rng = new Rng(seed);
  const m = tinyModel(seed);
  m.setLayerWeights(0, [rng.floats(3 * 3 * 2 * 3, -0.4, 0.4), rng.floats(3, 0, 0.2)]);
  m.setLayerWeights(3, [rng.floats(12 * 4, -0.6, 0.6), rng.floats(4, 0, 0.2)]);
  m.setLayerWeights(4, [rng.floats(4, -1, 1), rng.floats(1, -0.1, 0.1)]);
  const xf = rng.floats(BATCH * prod(INPUT), -1, 1);
  const x = tensor(xf, [BATCH, ...INPUT]);
  const y = Float32Array.from([0, 1, 1, 0]);
  return { m, x, xf, y, w0: readWeights(m) };
}

test('trainStep: BCE from logits, finite-difference gradients and two exact Keras Adam updates', async () => {
  const { m, x, xf, y, w0 } = setup(42);
  const adamCfg = { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1.0 };
  m.compile({ optimizer: { adam: adamCfg }, loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  const reference = new KerasAdam(adamCfg);
  const expected = w0.map((w) => Float64Array.from(w));

  let before = w0;
  for (const t of [1, 2]) {
    const params = before.map((w) => Float64Array.from(w));
    const lossAt = () => naive.bceFromLogits(tinyLogits(x, params), y);
    const logits = tinyLogits(x, params);
    const naiveLoss = lossAt();
    const grads = numericGradient(lossAt, params);
    // the gradients must be worth checking: every layer gets some
    grads.forEach((g, k) => assert.ok(maxAbs(g) > 1e-3, `gradient ${k} at step ${t} is not trivially zero`));

    const r = await m.engine.trainStep(xf, [BATCH, ...INPUT], y, 0);
    assert.ok(Math.abs(r.loss - naiveLoss) <= 1e-5 * Math.max(1, naiveLoss), `step ${t}: loss ${r.loss} vs naive ${naiveLoss}`);
    const correct = Array.from(logits).filter((z, i) => (z > 0 ? 1 : 0) === y[i]).length;
    assert.equal(r.correct, correct, `step ${t}: correct count`);

    // what Keras's Adam does from the engine's own pre-step weights
    expected.forEach((w, k) => w.set(before[k]));
    reference.step(expected, grads);
    const after = readWeights(m);
    after.forEach((w, k) => {
      const delta = w.map((v, i) => v - before[k][i]);
      const wanted = expected[k].map((v, i) => v - before[k][i]);
      assert.ok(maxAbs(wanted) > 1e-5, `step ${t}, weight ${k}: the expected update is measurable`);
      assertClose(delta, wanted, { atol: 2e-7, rtol: 2e-3, what: `step ${t}, weight ${k} update` });
    });
    before = after;
  }
  assert.equal(m.engine.getOptimizerState().iterations, 2);
});

test("the Adam update is not libtorch's (eps after bias correction): the two differ here by 3x", async () => {
  // A guard on the reference itself: with epsilon 1 the Keras step is lr·sqrt(1-b2)·g/(sqrt(1-b2)|g|+1),
  // libtorch's would be lr·g/(|g|+1). If the engine used the latter, the test above fails.
  const reference = new KerasAdam({ learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1 });
  const w = [Float64Array.from([0])];
  reference.step(w, [Float64Array.from([0.1])]);
  const keras = -w[0][0];
  const torch = (0.01 * 0.1) / (0.1 + 1);
  assert.ok(Math.abs(keras - (0.01 * Math.sqrt(0.001) * 0.1) / (Math.sqrt(0.001) * 0.1 + 1)) < 1e-15);
  assert.ok(torch / keras > 2.5);
});

test('frozen layers (setTrainable false) keep their weights; the others follow Keras Adam', async () => {
  const { m, x, xf, y, w0 } = setup(7);
  m.setTrainable(0, false);
  assert.deepEqual(m.countParams(), { total: 57 + 52 + 5, trainable: 52 + 5, nonTrainable: 57 });
  const adamCfg = { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1.0 };
  m.compile({ optimizer: { adam: adamCfg }, loss: 'binaryCrossentropy' });
  const params = w0.map((w) => Float64Array.from(w));
  const grads = numericGradient(() => naive.bceFromLogits(tinyLogits(x, params), y), params);
  await m.engine.trainStep(xf, [BATCH, ...INPUT], y, 0);
  const after = readWeights(m);
  assert.deepEqual(after[0], w0[0], 'frozen conv kernel unchanged');
  assert.deepEqual(after[1], w0[1], 'frozen conv bias unchanged');
  const expected = w0.map((w) => Float64Array.from(w));
  new KerasAdam(adamCfg).step(expected, grads);
  for (let k = 2; k < 6; k++) {
    assertClose(
      after[k].map((v, i) => v - w0[k][i]),
      expected[k].map((v, i) => v - w0[k][i]),
      { atol: 2e-7, rtol: 2e-3, what: `weight ${k} update` },
    );
  }
});

test('Keras default Adam (lr 1e-3, epsilon 1e-7): the first step moves each weight by ~lr·sign(g)', async () => {
  const { m, x, xf, y, w0 } = setup(9);
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  const params = w0.map((w) => Float64Array.from(w));
  const grads = numericGradient(() => naive.bceFromLogits(tinyLogits(x, params), y), params);
  await m.engine.trainStep(xf, [BATCH, ...INPUT], y, 0);
  const after = readWeights(m);
  const expected = w0.map((w) => Float64Array.from(w));
  new KerasAdam({ learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }).step(expected, grads);
  after.forEach((w, k) => {
    for (let i = 0; i < w.length; i++) {
      if (Math.abs(grads[k][i]) < 1e-4) continue; // near-zero gradients: the sign is float noise
      assert.ok(
        Math.abs(w[i] - w0[k][i] - (expected[k][i] - w0[k][i])) < 2e-6,
        `weight ${k}[${i}]: moved ${w[i] - w0[k][i]}, Keras ${expected[k][i] - w0[k][i]}`,
      );
    }
  });
});

test('binary crossentropy on a sigmoid output is computed from the logits (no 1e-7 clipping)', async () => {
  const m = new Sequential([layers.dense({ units: 1, activation: 'sigmoid', inputShape: [2] })], { seed: 1, preprocessing: 'none' });
  m.setLayerWeights(0, [Float32Array.from([1, 0]), Float32Array.from([0])]);
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  // logits 40 and -30 on the wrong labels: from logits the loss is (40 + 30) / 2 = 35; clipped
  // probabilities would give -log(1e-7) = 16.1
  const x = Float32Array.from([40, 0, -30, 0]);
  const y = Float32Array.from([0, 1]);
  const r = await m.engine.evaluate(x, [2, 2], y, 0);
  assert.ok(Math.abs(r.loss - naive.bceFromLogits([40, -30], y)) < 1e-4, `loss ${r.loss}`);
  assert.ok(Math.abs(r.loss - 35) < 1e-4);
  assert.equal(r.correct, 0);
  assertClose(r.output, [naive.sigmoid(40), naive.sigmoid(-30)], { atol: 1e-7, rtol: 1e-5, what: 'evaluate outputs are probabilities' });
});

test('a final Activation(sigmoid) layer also gives the from-logits loss', async () => {
  const m = new Sequential([layers.dense({ units: 1, inputShape: [2] }), layers.activation({ activation: 'sigmoid' })], {
    seed: 1,
    preprocessing: 'none',
  });
  m.setLayerWeights(0, [Float32Array.from([1, 0]), Float32Array.from([0])]);
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  const r = await m.engine.evaluate(Float32Array.from([40, 0, -30, 0, 0.5, 0]), [3, 2], Float32Array.from([0, 1, 1]), 0);
  assert.ok(Math.abs(r.loss - naive.bceFromLogits([40, -30, 0.5], [0, 1, 1])) < 1e-4, `loss ${r.loss}`);
  assert.equal(r.correct, 1);
});

test('binary crossentropy on a non-sigmoid output clips probabilities to [1e-7, 1 - 1e-7]', async () => {
  const rng = new Rng(4);
  const m = new Sequential([layers.dense({ units: 1, activation: 'linear', inputShape: [3] })], { seed: 1, preprocessing: 'none' });
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  const xf = rng.floats(5 * 3, -1, 1);
  // the last example is pushed past 1: clipped
  xf.set([100, 100, 100], 12);
  m.setLayerWeights(0, [Float32Array.from([0.05, -0.03, 0.02]), Float32Array.from([0.5])]);
  const y = Float32Array.from([1, 0, 1, 0, 0]);
  const probs = naive.dense(tensor(xf, [5, 3]), [0.05, -0.03, 0.02], 1, [0.5]).data;
  assert.ok(probs[4] > 1);
  const r = await m.engine.evaluate(xf, [5, 3], y, 0);
  const expected = naive.bceFromProbabilities(probs, y);
  assert.ok(Math.abs(r.loss - expected) < 1e-4 * expected, `loss ${r.loss} vs naive ${expected}`);
  assert.equal(r.correct, Array.from(probs).filter((p, i) => (p > 0.5 ? 1 : 0) === y[i]).length);
});

test('sparse categorical crossentropy on a softmax output matches the naive loss, gradient and Adam step', async () => {
  const rng = new Rng(23);
  const m = new Sequential([layers.dense({ units: 3, activation: 'softmax', inputShape: [5] })], { seed: 2, preprocessing: 'none' });
  const kernel = rng.floats(15, -0.8, 0.8);
  const bias = rng.floats(3, -0.2, 0.2);
  m.setLayerWeights(0, [kernel, bias]);
  const adamCfg = { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1.0 };
  m.compile({ optimizer: { adam: adamCfg }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  const xf = rng.floats(6 * 5, -2, 2);
  const x = tensor(xf, [6, 5]);
  const y = Float32Array.from([0, 1, 2, 2, 1, 0]);
  const params = [Float64Array.from(kernel), Float64Array.from(bias)];
  const logitsAt = () => naive.dense(x, params[0], 3, params[1]);
  const expectedLoss = naive.categoricalFromLogits(logitsAt(), y);
  const probs = naive.activation(logitsAt(), 'softmax');
  let correct = 0;
  for (let r = 0; r < 6; r++) {
    const row = Array.from(probs.data.slice(r * 3, r * 3 + 3));
    if (row.indexOf(Math.max(...row)) === y[r]) correct++;
  }

  const ev = await m.engine.evaluate(xf, [6, 5], y, 0);
  assert.ok(Math.abs(ev.loss - expectedLoss) < 1e-5 * expectedLoss, `evaluate loss ${ev.loss} vs ${expectedLoss}`);
  assert.equal(ev.correct, correct);
  assert.deepEqual(ev.shape, [6, 3]);
  assertClose(ev.output, probs.data, { atol: 1e-6, rtol: 1e-5, what: 'softmax probabilities' });

  // analytic gradient of mean CE: dz = (p - onehot) / N; dW = xᵀ dz; db = Σ dz
  const gW = new Float64Array(15);
  const gb = new Float64Array(3);
  for (let r = 0; r < 6; r++)
    for (let u = 0; u < 3; u++) {
      const dz = (probs.data[r * 3 + u] - (y[r] === u ? 1 : 0)) / 6;
      gb[u] += dz;
      for (let i = 0; i < 5; i++) gW[i * 3 + u] += x.data[r * 5 + i] * dz;
    }
  const fd = numericGradient(() => naive.categoricalFromLogits(logitsAt(), y), params);
  assertClose(fd[0], gW, { atol: 1e-7, rtol: 1e-5, what: 'reference gradients agree (analytic vs finite differences)' });

  const tr = await m.engine.trainStep(xf, [6, 5], y, 0);
  assert.ok(Math.abs(tr.loss - expectedLoss) < 1e-5 * expectedLoss, `trainStep loss ${tr.loss} vs ${expectedLoss}`);
  assert.equal(tr.correct, correct);
  const expected = [Float64Array.from(kernel), Float64Array.from(bias)];
  new KerasAdam(adamCfg).step(expected, [gW, gb]);
  const after = m.getLayerWeights(0);
  assertClose(
    after[0].data.map((v, i) => v - kernel[i]),
    expected[0].map((v, i) => v - kernel[i]),
    { atol: 2e-7, rtol: 2e-3, what: 'kernel update' },
  );
  assertClose(
    after[1].data.map((v, i) => v - bias[i]),
    expected[1].map((v, i) => v - bias[i]),
    { atol: 2e-7, rtol: 2e-3, what: 'bias update' },
  );
});

test('evaluate does not change weights or the optimizer state', async () => {
  const { m, xf, y, w0 } = setup(3);
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  await m.engine.evaluate(xf, [BATCH, ...INPUT], y, 0);
  await m.predict(xf, [BATCH, ...INPUT]);
  assert.deepEqual(readWeights(m), w0);
  assert.equal(m.engine.getOptimizerState().iterations, 0);
});

test('training from cached features (fromLayer) equals training the frozen-base model end to end', async () => {
  const a = setup(31);
  const b = setup(31);
  for (const s of [a, b]) {
    s.m.setTrainable(0, false);
    s.m.compile({ optimizer: { adam: { learningRate: 0.01, epsilon: 1e-3 } }, loss: 'binaryCrossentropy' });
  }
  const from = 2; // after conv + pool: features of shape [2, 2, 3]
  for (let step = 0; step < 2; step++) {
    const ra = await a.m.engine.trainStep(a.xf, [BATCH, ...INPUT], a.y, 0);
    const features = await b.m.predict(b.xf, [BATCH, ...INPUT], { toLayer: from });
    assert.deepEqual(features.shape, [BATCH, 2, 2, 3]);
    const rb = await b.m.engine.trainStep(features.output, features.shape, b.y, b.m.engineIndex(from, true));
    assert.ok(Math.abs(ra.loss - rb.loss) < 1e-6, `step ${step + 1}: loss ${ra.loss} vs ${rb.loss}`);
  }
  const wa = readWeights(a.m);
  const wb = readWeights(b.m);
  wa.forEach((w, k) => assertClose(wb[k], w, { atol: 1e-6, rtol: 1e-5, what: `weight ${k}` }));
  assert.notDeepEqual(wa[2], a.w0[2], 'the head did train');
});

test('optimizer state round-trips: a model restored from weights + Adam state continues identically', async () => {
  const adam = { adam: { learningRate: 0.01, epsilon: 1e-3 } };
  const a = setup(41);
  a.m.compile({ optimizer: adam, loss: 'binaryCrossentropy' });
  await a.m.engine.trainStep(a.xf, [BATCH, ...INPUT], a.y, 0);
  const weights = a.m.getWeights();
  const state = a.m.engine.getOptimizerState();
  assert.equal(state.iterations, 1);
  assert.equal(state.moments.length, 6, 'm and v for each of the six trainable weights');

  const b = setup(99); // other weights, replaced by the checkpoint
  b.m.compile({ optimizer: adam, loss: 'binaryCrossentropy' });
  b.m.setWeights(weights);
  b.m.engine.setOptimizerState(state);
  const ra = await a.m.engine.trainStep(a.xf, [BATCH, ...INPUT], a.y, 0);
  const rb = await b.m.engine.trainStep(a.xf, [BATCH, ...INPUT], a.y, 0);
  assert.equal(rb.loss, ra.loss);
  assert.deepEqual(readWeights(b.m), readWeights(a.m));
  assert.equal(b.m.engine.getOptimizerState().iterations, 2);

  // without the state (a fresh Adam at t = 1) the same step differs
  const c = setup(99);
  c.m.compile({ optimizer: adam, loss: 'binaryCrossentropy' });
  c.m.setWeights(weights);
  await c.m.engine.trainStep(a.xf, [BATCH, ...INPUT], a.y, 0);
  assert.notDeepEqual(readWeights(c.m), readWeights(a.m));
});

test('categorical crossentropy takes one-hot labels (Keras): loss and accuracy as the naive one-hot reference; integer labels are refused', async () => {
  const rng = new Rng(29);
  const kernel = rng.floats(12, -0.8, 0.8);
  const bias = rng.floats(3, -0.2, 0.2);
  const xf = rng.floats(5 * 4, -2, 2);
  const classes = [2, 0, 1, 1, 2];
  const oneHot = new Float32Array(15);
  classes.forEach((c, r) => (oneHot[r * 3 + c] = 1));
  const logits = naive.dense(tensor(xf, [5, 4]), Float64Array.from(kernel), 3, Float64Array.from(bias)).data;
  // -Σ onehot · log softmax(z), averaged over the batch, written out independently of the engine
  let expectedLoss = 0;
  let correct = 0;
  for (let r = 0; r < 5; r++) {
    const z = Array.from(logits.slice(r * 3, r * 3 + 3));
    const logSum = Math.log(z.reduce((a, v) => a + Math.exp(v), 0));
    for (let u = 0; u < 3; u++) expectedLoss -= (oneHot[r * 3 + u] * (z[u] - logSum)) / 5;
    if (z.indexOf(Math.max(...z)) === classes[r]) correct++;
  }
  for (const activation of ['softmax', 'linear'] as const) {
    const m = new Sequential(
      [
        layers.dense({ units: 3, activation, inputShape: [4] }),
        ...(activation === 'linear' ? [layers.activation({ activation: 'softmax' })] : []),
      ],
      { seed: 2, preprocessing: 'none' },
    );
    m.setLayerWeights(0, [kernel, bias]);
    m.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    const r = await m.engine.evaluate(xf, [5, 4], oneHot, 0);
    assert.ok(Math.abs(r.loss - expectedLoss) < 1e-5 * expectedLoss, `${activation}: loss ${r.loss} vs naive ${expectedLoss}`);
    assert.equal(r.correct, correct);
  }
  const m = new Sequential([layers.dense({ units: 3, activation: 'softmax', inputShape: [4] })], { seed: 2, preprocessing: 'none' });
  m.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const asIndices = new ArrayDataset(xf, [4], Float32Array.from(classes), 5, ['a', 'b', 'c']);
  await assert.rejects(
    m.fit(asIndices, { epochs: 1, verbose: 0 }),
    /categoricalCrossentropy needs one-hot labels.*use sparseCategoricalCrossentropy/,
  );
  await assert.rejects(m.engine.evaluate(xf, [5, 4], Float32Array.from(classes), 0), /categorical_crossentropy needs one-hot labels/);
  const notOneHot = Float32Array.from(oneHot);
  notOneHot[0] = 1;
  await assert.rejects(m.evaluate(new OneHotDataset(xf, notOneHot)), /not one-hot/);
  m.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  await assert.rejects(m.evaluate(new OneHotDataset(xf, oneHot)), /needs one label per example.*use categoricalCrossentropy/);
});

/** Five 4-feature examples in one batch, with one-hot label rows (ArrayDataset slices one label per example). */
class OneHotDataset implements Dataset {
  readonly size = 5;
  readonly elementShape = [4];
  readonly batchSize = 5;
  readonly classNames = ['a', 'b', 'c'];
  constructor(
    private readonly x: Float32Array,
    private readonly y: Float32Array,
  ) {}
  async *batches() {
    yield { x: this.x, shape: [5, 4], y: this.y };
  }
}
