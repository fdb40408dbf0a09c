/**
 * fit / evaluate end to end on small in-memory data: learning a learnable task, Keras's
 * steps_per_epoch stream semantics, sample-weighted epoch metrics, callbacks, and NaN losses.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { EarlyStopping, ModelCheckpoint } from '../lib/training/callbacks.js';
import { NaNLossError } from '../lib/training/fit.js';
import * as naive from './helpers/naive.js';
import { ArrayDataset, Rng, tensor } from './helpers/naive.js';

// ------------------------------------------------------------------------------------------ data

/** 16x16 grey images: a bright 5x5 square top-left (class 0) or bottom-right (class 1), noisy. */
function squares(n: number, seed: number): { x: Uint8Array; y: Float32Array } {
  const rng = new Rng(seed);
  const x = new Uint8Array(n * 16 * 16);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const label = rng.int(2);
    y[i] = label;
    for (let p = 0; p < 256; p++) x[i * 256 + p] = rng.int(60);
    const top = (label === 0 ? 1 : 10) + rng.int(2);
    const left = (label === 0 ? 1 : 10) + rng.int(2);
    for (let r = top; r < top + 5; r++) for (let c = left; c < left + 5; c++) x[i * 256 + r * 16 + c] = 200 + rng.int(56);
  }
  return { x, y };
}

function smallCnn(seed: number): Sequential {
  return new Sequential(
    [
      layers.conv2d({ filters: 8, kernelSize: 3, activation: 'relu', inputShape: [16, 16, 1] }),
      layers.maxPooling2d({ poolSize: 2 }),
      layers.conv2d({ filters: 8, kernelSize: 3, activation: 'relu' }),
      layers.maxPooling2d({ poolSize: 2 }),
      layers.flatten(),
      layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
    { seed, preprocessing: 'scale01', name: 'squares' },
  );
}

function squaresData(): { train: ArrayDataset; valid: ArrayDataset } {
  const t = squares(320, 1);
  const v = squares(96, 2);
  return { train: new ArrayDataset(t.x, [16, 16, 1], t.y, 32), valid: new ArrayDataset(v.x, [16, 16, 1], v.y, 32) };
}

test('a small CNN learns the squares task: loss falls, val accuracy >= 0.9; evaluate agrees with its outputs', async () => {
  const { train, valid } = squaresData();
  const m = smallCnn(5);
  m.compile({ optimizer: { adam: { learningRate: 0.01 } }, loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  const before = await m.evaluate(valid);
  const history = await m.fit(train, { epochs: 5, validationData: valid, verbose: 0 });
  assert.deepEqual(history.epoch, [0, 1, 2, 3, 4]);
  assert.deepEqual(Object.keys(history.history).sort(), ['accuracy', 'learning_rate', 'loss', 'val_accuracy', 'val_loss']);
  const loss = history.history.loss;
  assert.ok(loss[4] < loss[0] * 0.5, `training loss falls: ${loss.map((v) => v.toFixed(3)).join(' ')}`);
  const valAcc = history.history.val_accuracy;
  assert.ok(valAcc[4] >= 0.9, `val accuracy ${valAcc.join(' ')}`);
  assert.ok(history.history.val_loss[4] < before.loss, 'validation loss improved on the untrained model');

  const ev = await m.evaluate(valid);
  assert.equal(ev.examples, 96);
  assert.equal(ev.outputs.length, 96);
  assert.deepEqual(ev.labels, valid.y);
  assert.equal(ev.keys.length, 96);
  assert.equal(ev.keys[95], 'example-95');
  assert.ok(Math.abs(ev.loss - history.history.val_loss[4]) < 1e-5, 'evaluate after fit = the last val_loss (no training in between)');
  // loss and accuracy are the sample-weighted means over the outputs it returns
  const accuracy = Array.from(ev.outputs).filter((p, i) => (p > 0.5 ? 1 : 0) === valid.y[i]).length / 96;
  assert.ok(Math.abs(ev.accuracy - accuracy) < 1e-12, `accuracy ${ev.accuracy} vs ${accuracy} from the outputs`);
  const bce = naive.bceFromProbabilities(ev.outputs, valid.y);
  assert.ok(Math.abs(ev.loss - bce) < 1e-3 * Math.max(bce, 0.01), `loss ${ev.loss} vs ${bce} from the outputs`);
});

// ------------------------------------------------------------------------------------------ streams

/** [2, 2, 1] float inputs -> Dense 1 sigmoid; with learning rate 0 the weights never move */
function frozenLinear(seed: number): { m: Sequential; kernel: Float32Array; bias: Float32Array } {
  const m = new Sequential([layers.flatten({ inputShape: [2, 2, 1] }), layers.dense({ units: 1, activation: 'sigmoid' })], {
    seed,
    preprocessing: 'none',
    name: 'linear',
  });
  const rng = new Rng(seed);
  const kernel = rng.floats(4, -1, 1);
  const bias = Float32Array.from([0.1]);
  m.setLayerWeights(1, [kernel, bias]);
  m.compile({ optimizer: { adam: { learningRate: 0 } }, loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  return { m, kernel, bias };
}

function floatData(n: number, batch: number, seed: number): ArrayDataset {
  const rng = new Rng(seed);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = rng.int(2);
  return new ArrayDataset(rng.floats(n * 4, -2, 2), [2, 2, 1], y, batch);
}

test('stepsPerEpoch / validationSteps: epochs continue one repeating stream (tf.data .repeat())', async () => {
  const { m } = frozenLinear(1);
  const train = floatData(37, 4, 2); // 10 batches per pass, the last of 1 example
  const valid = floatData(10, 4, 3); // 3 batches per pass: 4, 4, 2
  const history = await m.fit(train, { epochs: 3, stepsPerEpoch: 4, validationData: valid, validationSteps: 2, verbose: 0 });
  assert.deepEqual(history.epoch, [0, 1, 2]);
  const at = (b: { pass: number; index: number; size: number }) => `${b.pass}:${b.index}/${b.size}`;
  assert.deepEqual(train.served.map(at), [
    '0:0/4',
    '0:1/4',
    '0:2/4',
    '0:3/4', // epoch 1
    '0:4/4',
    '0:5/4',
    '0:6/4',
    '0:7/4', // epoch 2 continues at batch 4
    '0:8/4',
    '0:9/1',
    '1:0/4',
    '1:1/4', // epoch 3: the small last batch, then the stream wraps around
  ]);
  assert.deepEqual(valid.served.map(at), ['0:0/4', '0:1/4', '0:2/2', '1:0/4', '1:1/4', '1:2/2']);
});

test('without stepsPerEpoch every epoch is one whole pass, and validation covers the whole split', async () => {
  const { m } = frozenLinear(1);
  const train = floatData(9, 4, 2);
  const valid = floatData(5, 4, 3);
  await m.fit(train, { epochs: 2, validationData: valid, verbose: 0 });
  const at = (b: { pass: number; index: number; size: number }) => `${b.pass}:${b.index}/${b.size}`;
  assert.deepEqual(train.served.map(at), ['0:0/4', '0:1/4', '0:2/1', '1:0/4', '1:1/4', '1:2/1']);
  assert.deepEqual(valid.served.map(at), ['0:0/4', '0:1/1', '1:0/4', '1:1/1']);
});

test('epoch loss / accuracy are sample-weighted means over the batches of that epoch (Keras)', async () => {
  const { m, kernel, bias } = frozenLinear(4);
  const train = floatData(37, 4, 5);
  const valid = floatData(10, 4, 6);
  const history = await m.fit(train, { epochs: 3, stepsPerEpoch: 4, validationData: valid, validationSteps: 2, verbose: 0 });
  // the weights never move (learning rate 0), so each example's loss is fixed
  const logits = naive.dense(tensor(train.x, [37, 4]), kernel, 1, bias).data;
  const lossOf = (ids: number[], data: ArrayDataset, z: Float64Array) =>
    naive.bceFromLogits(
      ids.map((i) => z[i]),
      ids.map((i) => data.y[i]),
    );
  const accOf = (ids: number[], data: ArrayDataset, z: Float64Array) =>
    ids.filter((i) => (z[i] > 0 ? 1 : 0) === data.y[i]).length / ids.length;
  const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
  const epochs = [range(0, 16), range(16, 32), [...range(32, 37), ...range(0, 8)]];
  epochs.forEach((ids, e) => {
    assert.ok(
      Math.abs(history.history.loss[e] - lossOf(ids, train, logits)) < 1e-5,
      `epoch ${e + 1} loss ${history.history.loss[e]} vs ${lossOf(ids, train, logits)}`,
    );
    assert.ok(Math.abs(history.history.accuracy[e] - accOf(ids, train, logits)) < 1e-9, `epoch ${e + 1} accuracy`);
  });
  // epoch 3 has 13 examples in 4 batches (4, 1, 4, 4): a plain mean of batch means would differ
  const vz = naive.dense(tensor(valid.x, [10, 4]), kernel, 1, bias).data;
  const validEpochs = [range(0, 8), [8, 9, 0, 1, 2, 3], range(4, 10)];
  validEpochs.forEach((ids, e) => {
    assert.ok(Math.abs(history.history.val_loss[e] - lossOf(ids, valid, vz)) < 1e-5, `epoch ${e + 1} val_loss`);
    assert.ok(Math.abs(history.history.val_accuracy[e] - accOf(ids, valid, vz)) < 1e-9, `epoch ${e + 1} val_accuracy`);
  });
});

// ------------------------------------------------------------------------------------------ callbacks

test('EarlyStopping (unit): stops after `patience` epochs without improvement, counting from the best', () => {
  const model = { stopTraining: false } as unknown as Sequential;
  const es = new EarlyStopping({ monitor: 'val_loss', patience: 2 });
  es.setModel(model);
  const values = [0.9, 0.8, 0.85, 0.7, 0.75, 0.72, 0.6];
  let stoppedAt = -1;
  for (let e = 0; e < values.length && !model.stopTraining; e++) {
    es.onEpochEnd(e, { val_loss: values[e] });
    if (model.stopTraining) stoppedAt = e;
  }
  assert.equal(stoppedAt, 5, 'best 0.7 at epoch 3, then two epochs without improvement');
  assert.equal(es.stoppedEpoch, 5);

  const acc = { stopTraining: false } as unknown as Sequential;
  const esAcc = new EarlyStopping({ monitor: 'val_accuracy', patience: 1 });
  esAcc.setModel(acc);
  esAcc.onEpochEnd(0, { val_accuracy: 0.5 });
  esAcc.onEpochEnd(1, { val_accuracy: 0.6 });
  assert.equal(acc.stopTraining, false, 'accuracy rising is an improvement (auto mode: max)');
  esAcc.onEpochEnd(2, { val_accuracy: 0.6 });
  assert.equal(acc.stopTraining, true);
});

test('EarlyStopping in fit: a monitor that stops improving ends training after patience epochs', async () => {
  const { m } = frozenLinear(1); // learning rate 0: val_loss is the same every epoch
  const es = new EarlyStopping({ monitor: 'val_loss', patience: 2 });
  const epochsSeen: number[] = [];
  const history = await m.fit(floatData(8, 4, 1), {
    epochs: 10,
    validationData: floatData(4, 4, 2),
    verbose: 0,
    callbacks: [es, { onEpochEnd: (e) => void epochsSeen.push(e) }],
  });
  assert.deepEqual(history.epoch, [0, 1, 2]);
  assert.deepEqual(epochsSeen, [0, 1, 2]);
  assert.equal(es.stoppedEpoch, 2);
  // fit resets the flag: the next fit trains again
  const again = await m.fit(floatData(8, 4, 1), { epochs: 1, validationData: floatData(4, 4, 2), verbose: 0 });
  assert.deepEqual(again.epoch, [0]);
});

test('ModelCheckpoint (unit): saves only when val_loss improves (NaN never counts)', async () => {
  const saved: [string, number][] = [];
  const model = {} as Sequential;
  const cp = new ModelCheckpoint({
    filepath: (e) => `ckpt-${e}`,
    monitor: 'val_loss',
    saveBestOnly: true,
    save: async (mm, dir, epoch) => {
      assert.equal(mm, model);
      saved.push([dir, epoch]);
    },
  });
  cp.setModel(model);
  const values = [0.5, 0.6, 0.4, 0.4, NaN, 0.3, 0.35];
  for (let e = 0; e < values.length; e++) await cp.onEpochEnd(e, { loss: 1, val_loss: values[e] });
  assert.deepEqual(saved, [
    ['ckpt-0', 0],
    ['ckpt-2', 2],
    ['ckpt-5', 5],
  ]);
  assert.equal(cp.best, 0.3);
  assert.equal(cp.bestEpoch, 5);
  await assert.rejects(async () => cp.onEpochEnd(7, { loss: 1 }), /val_loss/);
});

test('ModelCheckpoint in fit: called with the model exactly at the epochs where val_loss reached a new best', async () => {
  const { train, valid } = squaresData();
  const m = smallCnn(11);
  m.compile({ optimizer: { adam: { learningRate: 0.02 } }, loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  const saves: { epoch: number; dir: string; weights: Float32Array }[] = [];
  const cp = new ModelCheckpoint<Sequential>({
    filepath: '/nowhere/best',
    monitor: 'val_loss',
    saveBestOnly: true,
    save: async (model, dir, epoch) => void saves.push({ epoch, dir, weights: model.getLayerWeights(5)[0].data }),
  });
  const history = await m.fit(train, {
    epochs: 4,
    stepsPerEpoch: 3,
    validationData: valid,
    validationSteps: 1,
    verbose: 0,
    callbacks: [cp],
  });
  const vl = history.history.val_loss;
  const improving: number[] = [];
  let best = Infinity;
  vl.forEach((v, e) => {
    if (v < best) {
      best = v;
      improving.push(e);
    }
  });
  assert.deepEqual(
    saves.map((s) => s.epoch),
    improving,
    `val_loss ${vl.join(' ')}`,
  );
  assert.ok(saves.every((s) => s.dir === '/nowhere/best'));
  assert.equal(saves[saves.length - 1].weights.length, 32);
  if (saves.length > 1) assert.notDeepEqual(saves[0].weights, saves[saves.length - 1].weights, 'each save sees the weights of its epoch');
});

test('ModelCheckpoint in fit: epochs whose val_loss is not a new best are not saved', async () => {
  const { m, kernel, bias } = frozenLinear(21); // learning rate 0: val_loss depends only on the window
  const valid = floatData(12, 4, 22); // validationSteps 1: windows 0, 1, 2, 0, 1, 2
  const saves: number[] = [];
  const cp = new ModelCheckpoint({ filepath: 'best', save: async (_m, _d, e) => void saves.push(e) });
  const history = await m.fit(floatData(8, 4, 23), { epochs: 6, validationData: valid, validationSteps: 1, verbose: 0, callbacks: [cp] });
  const z = naive.dense(tensor(valid.x, [12, 4]), kernel, 1, bias).data;
  const windows = [0, 1, 2].map((b) => naive.bceFromLogits(z.slice(b * 4, b * 4 + 4), valid.y.slice(b * 4, b * 4 + 4)));
  history.history.val_loss.forEach((v, e) =>
    assert.ok(Math.abs(v - windows[e % 3]) < 1e-5, `epoch ${e + 1} val_loss ${v} vs ${windows[e % 3]}`),
  );
  const expected: number[] = [];
  let best = Infinity;
  windows.forEach((v, e) => {
    if (v < best) {
      best = v;
      expected.push(e);
    }
  });
  assert.deepEqual(saves, expected, `windows ${windows.join(' ')}`);
  assert.ok(
    saves.every((e) => e < 3),
    'repeating an earlier value is not an improvement',
  );
});

test('a NaN loss stops fit with NaNLossError; the NaN step leaves weights and optimizer untouched', async () => {
  const rng = new Rng(12);
  const m = new Sequential(
    [
      layers.conv2d({ filters: 2, kernelSize: 2, activation: 'relu', inputShape: [3, 3, 1] }),
      layers.flatten(),
      layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
    { seed: 3, preprocessing: 'none', name: 'nan-model' },
  );
  m.compile({ optimizer: { adam: { learningRate: 0.01 } }, loss: 'binaryCrossentropy' });
  const x = rng.floats(16 * 9, -1, 1);
  x[2 * 4 * 9 + 5] = NaN; // the third batch (of 4) holds a NaN pixel
  const y = Float32Array.from({ length: 16 }, (_, i) => i % 2);
  const data = new ArrayDataset(x, [3, 3, 1], y, 4);
  let lastGood: Float32Array[][] = [];
  const saves: number[] = [];
  const cp = new ModelCheckpoint({ filepath: 'x', monitor: 'loss', save: async (_m, _d, e) => void saves.push(e) });
  await assert.rejects(
    m.fit(data, {
      epochs: 2,
      verbose: 0,
      callbacks: [cp, { onBatchEnd: () => void (lastGood = [0, 2].map((l) => m.getLayerWeights(l).map((w) => w.data))) }],
    }),
    (error: unknown) => {
      assert.ok(error instanceof NaNLossError, `a NaNLossError, got ${String(error)}`);
      assert.match(error.message, /'nan-model'/);
      assert.match(error.message, /loss became NaN at epoch 1, step 3/);
      assert.match(error.message, /not updated/);
      assert.match(error.message, /learning rate|NaN values/);
      return true;
    },
  );
  assert.equal(saves.length, 0, 'no checkpoint is written for the failed epoch');
  assert.equal(data.served.length, 3, 'training stopped at the NaN batch');
  const now = [0, 2].map((l) => m.getLayerWeights(l).map((w) => w.data));
  assert.deepEqual(now, lastGood, 'weights are those after the last good step');
  assert.ok(now.flat().every((w) => w.every(Number.isFinite)));
  const state = m.engine.getOptimizerState();
  assert.equal(state.iterations, 2, 'the NaN step is not counted');
  assert.ok(
    state.moments.every((s) => s.slots.length === 2 && s.slots.every((slot) => slot.every(Number.isFinite))),
    'moments stay finite',
  );
  // and training can go on with good data
  const r = await m.engine.trainStep(x.slice(0, 36), [4, 3, 3, 1], y.slice(0, 4), 0);
  assert.ok(Number.isFinite(r.loss));
  assert.ok(m.getLayerWeights(2)[0].data.every(Number.isFinite));
});
