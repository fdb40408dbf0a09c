/**
 * Learning-rate schedules against Keras 3's formulas (written out independently here), ReduceLROnPlateau
 * on a scripted val_loss sequence, and the engine following the schedule step by step with the rate
 * logged in History as `learning_rate`.
 */

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseLrSchedule, parsePlateau } from '../lib/experiment/learning-rate-options.js';
import { layers } from '../lib/models/layers.js';
import { CosineDecay, ExponentialDecay, PiecewiseConstantDecay, scheduleFromConfig } from '../lib/models/learning-rate-schedules.js';
import { optimizers } from '../lib/models/optimizers.js';
import { Sequential } from '../lib/models/sequential.js';
import { loadModel, saveModel } from '../lib/saving/persistence.js';
import type { FitModel } from '../lib/training/fit-model.js';
import { ReduceLROnPlateau } from '../lib/training/reduce-lr-on-plateau.js';
import { ArrayDataset, Rng } from './helpers/naive.js';

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

test('ExponentialDecay is initial * rate^(step/decay_steps), floored with staircase', () => {
  const smooth = new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 100, decayRate: 0.5 });
  const stairs = new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 100, decayRate: 0.5, staircase: true });
  // hand values: 0.1 * 0.5^(step/100)
  const expected: [number, number, number][] = [
    [0, 0.1, 0.1],
    [50, 0.1 * Math.SQRT1_2, 0.1],
    [100, 0.05, 0.05],
    [150, 0.05 * Math.SQRT1_2, 0.05],
    [250, 0.1 / 2 ** 2.5, 0.025],
  ];
  for (const [step, continuous, floored] of expected) {
    close(smooth.call(step), continuous, `continuous at ${step}`);
    close(stairs.call(step), floored, `staircase at ${step}`);
  }
  assert.throws(
    () => new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 0, decayRate: 0.5 }),
    /decaySteps must be a number > 0, got 0/,
  );
});

test('CosineDecay without warmup: 0.5 * (1 + cos(pi * step / decay_steps)), alpha floor, held after decay_steps', () => {
  const s = new CosineDecay({ initialLearningRate: 0.2, decaySteps: 1000, alpha: 0.1 });
  const keras = (step: number) => {
    const t = Math.min(step, 1000) / 1000;
    return 0.2 * (0.9 * 0.5 * (1 + Math.cos(Math.PI * t)) + 0.1);
  };
  close(s.call(0), 0.2, 'start');
  close(s.call(500), 0.2 * (0.9 * 0.5 + 0.1), 'half way: cos(pi/2) = 0');
  close(s.call(1000), 0.02, 'end: alpha * initial');
  for (const step of [1, 123, 777, 999, 5000]) close(s.call(step), keras(step), `step ${step}`);
});

test('CosineDecay with warmup (Keras 3): linear from initial to warmup_target, then cosine from the target', () => {
  const s = new CosineDecay({ initialLearningRate: 0, decaySteps: 100, warmupTarget: 0.01, warmupSteps: 10 });
  close(s.call(0), 0, 'warmup starts at the initial rate');
  close(s.call(5), 0.005, 'half the warmup');
  close(s.call(10), 0.01, 'the target after warmup_steps');
  close(s.call(60), 0.01 * 0.5, 'half way through the decay');
  close(s.call(110), 0, 'decayed to alpha = 0');
  close(s.call(500), 0, 'held after decay_steps + warmup_steps');
  const from = new CosineDecay({ initialLearningRate: 0.001, decaySteps: 50, warmupTarget: 0.003, warmupSteps: 4, alpha: 0.2 });
  close(from.call(3), 0.001 + (0.002 * 3) / 4, 'warmup from a non-zero initial rate');
  close(from.call(4 + 20), 0.003 * (0.8 * 0.5 * (1 + Math.cos((Math.PI * 20) / 50)) + 0.2), 'decay from the target');
  assert.throws(() => new CosineDecay({ initialLearningRate: 0.1, decaySteps: 10, warmupSteps: 5 }), /warmupSteps needs warmupTarget/);
});

test('PiecewiseConstantDecay: values[i] up to and including boundaries[i]', () => {
  const s = new PiecewiseConstantDecay({ boundaries: [100, 200], values: [1, 0.5, 0.1] });
  const expected: [number, number][] = [
    [0, 1],
    [100, 1],
    [101, 0.5],
    [200, 0.5],
    [201, 0.1],
    [10_000, 0.1],
  ];
  for (const [step, value] of expected) assert.equal(s.call(step), value, `step ${step}`);
  assert.throws(() => new PiecewiseConstantDecay({ boundaries: [1, 2], values: [1, 2] }), /one more entry than boundaries/);
  assert.throws(() => new PiecewiseConstantDecay({ boundaries: [5, 2], values: [1, 2, 3] }), /boundaries\[1\] must be an increasing step/);
});

test('schedules survive their Keras serialized form (saved compile settings)', () => {
  for (const s of [
    new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 7, decayRate: 0.9, staircase: true }),
    new CosineDecay({ initialLearningRate: 0.1, decaySteps: 7, alpha: 0.3, warmupTarget: 0.2, warmupSteps: 3 }),
    new PiecewiseConstantDecay({ boundaries: [2, 4], values: [3, 2, 1] }),
  ]) {
    const json = JSON.parse(JSON.stringify(s));
    assert.equal(json.class_name, s.constructor.name);
    const back = scheduleFromConfig(json);
    for (const step of [0, 1, 3, 5, 9, 20]) assert.equal(back.call(step), s.call(step), `${json.class_name} at ${step}`);
  }
});

test('--lr-schedule and --reduce-lr-on-plateau syntax', () => {
  const e = parseLrSchedule('exponential:decay_steps=10,decay_rate=0.5,staircase', 0.1);
  assert.ok(e instanceof ExponentialDecay);
  assert.equal(e.call(19), 0.05);
  const c = parseLrSchedule('cosine:decay_steps=100,warmup_target=0.01,warmup_steps=10', 0);
  close(c.call(5), 0.005, 'cosine warmup from --learning-rate');
  const p = parseLrSchedule('piecewise:boundaries=10/20,values=1e-3/5e-4/1e-4', 0.1);
  assert.equal(p.call(15), 5e-4);
  assert.throws(() => parseLrSchedule('linear:decay_steps=1', 0.1), /unknown schedule 'linear'/);
  assert.throws(() => parseLrSchedule('exponential:decay_steps=10', 0.1), /decay_rate=\.\.\. is required/);
  assert.throws(() => parseLrSchedule('exponential:decay_steps=10,decay_rate=x', 0.1), /decay_rate must be a number/);
  assert.throws(() => parseLrSchedule('cosine:decay_steps=10,gamma=2', 0.1), /unknown setting 'gamma'/);
  assert.deepEqual(parsePlateau('patience=2,factor=0.5,min_lr=1e-6'), {
    monitor: undefined,
    factor: 0.5,
    patience: 2,
    minDelta: undefined,
    cooldown: undefined,
    minLr: 1e-6,
    mode: undefined,
    verbose: 1,
  });
  assert.equal(parsePlateau('').patience, undefined, 'empty: Keras defaults');
  assert.throws(() => new ReduceLROnPlateau({ factor: 1 }), /factor must be in \[0, 1\), got 1/);
});

/** A FitModel with only a learning rate, enough for ReduceLROnPlateau. */
function rateHolder(rate: number): FitModel {
  return { learningRate: rate } as FitModel;
}

test('ReduceLROnPlateau on a scripted val_loss: patience, min_delta, cooldown and min_lr as Keras', () => {
  const model = rateHolder(1);
  const cb = new ReduceLROnPlateau({ factor: 0.5, patience: 2, minDelta: 0.01, cooldown: 2, minLr: 0.2 });
  cb.setModel(model);
  cb.onTrainBegin();
  // Keras's steps, by hand: 1.0 best | 0.995 within min_delta: wait 1 | 0.99 wait 2 -> lr 0.5, cooldown 2
  // | cooldown 1 | cooldown 0, and that epoch counts: wait 1 | 0.5 improves | 0.6 wait 1 | wait 2 -> 0.25
  // | cooldown 1 | wait 1 | wait 2 -> max(0.125, min_lr) = 0.2 | cooldown 1 | wait 1 | wait 2: at min_lr, stays
  const losses = [1.0, 0.995, 0.99, 0.99, 0.99, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6];
  const rates = [1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2];
  losses.forEach((val_loss, epoch) => {
    cb.onEpochEnd(epoch, { loss: 0, val_loss });
    assert.equal(model.learningRate, rates[epoch], `after epoch ${epoch + 1}`);
  });
  const accuracy = new ReduceLROnPlateau({ monitor: 'val_accuracy', factor: 0.1, patience: 1, minDelta: 0 });
  const m2 = rateHolder(0.01);
  accuracy.setModel(m2);
  accuracy.onEpochEnd(0, { val_accuracy: 0.5 });
  accuracy.onEpochEnd(1, { val_accuracy: 0.6 });
  assert.equal(m2.learningRate, 0.01, 'accuracy going up is an improvement (auto mode: max)');
  accuracy.onEpochEnd(2, { val_accuracy: 0.55 });
  close(m2.learningRate, 0.001, 'reduced after one epoch without a new maximum');
  assert.throws(() => accuracy.onEpochEnd(3, { loss: 1 }), /monitors 'val_accuracy', which is not among the logs \(loss\)/);
});

// ------------------------------------------------------------------------------ engine and fit

function tinyData(n: number, batch: number): ArrayDataset {
  const rng = new Rng(3);
  const x = new Float32Array(n * 4).map(() => rng.next() * 2 - 1);
  const y = new Float32Array(n).map((_, i) => (x[i * 4] + x[i * 4 + 1] > 0 ? 1 : 0));
  return new ArrayDataset(x, [4], y, batch);
}

function tinyModel(): Sequential {
  return new Sequential(
    [layers.dense({ units: 3, activation: 'tanh', inputShape: [4] }), layers.dense({ units: 1, activation: 'sigmoid' })],
    {
      seed: 11,
      preprocessing: 'none',
    },
  );
}

test('the engine takes the scheduled rate at every step (SGD: zero rate leaves the weights, then the same step as a fixed rate)', async () => {
  const data = tinyData(8, 8); // one batch per epoch
  const scheduled = tinyModel();
  scheduled.compile({
    optimizer: optimizers.sgd({ learningRate: new PiecewiseConstantDecay({ boundaries: [1], values: [0, 0.5] }) }),
    loss: 'binaryCrossentropy',
  });
  const start = scheduled.getWeights();
  const history = await scheduled.fit(data, { epochs: 2, verbose: 0 });
  // steps 0 and 1 run at rate 0: nothing moves
  assert.deepEqual(scheduled.getWeights(), start);
  assert.deepEqual(history.history.learning_rate, [0, 0.5], 'logged: the rate of the next step (iterations 1, then 2)');
  await scheduled.fit(data, { epochs: 1, verbose: 0 }); // step 2 at rate 0.5

  const fixed = tinyModel();
  fixed.compile({ optimizer: optimizers.sgd({ learningRate: 0.5 }), loss: 'binaryCrossentropy' });
  fixed.setWeights(start);
  await fixed.fit(data, { epochs: 1, verbose: 0 });
  const a = scheduled.getWeights().flatMap((l) => l.weights.flatMap((w) => [...w.data]));
  const b = fixed.getWeights().flatMap((l) => l.weights.flatMap((w) => [...w.data]));
  assert.ok(
    a.some((v, i) => v !== start.flatMap((l) => l.weights.flatMap((w) => [...w.data]))[i]),
    'step 2 moved the weights',
  );
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-6, `weight ${i}: ${v} vs ${b[i]}`));
});

test('History logs learning_rate per epoch: a schedule at the epoch-end iteration, ReduceLROnPlateau the epoch rate', async () => {
  const data = tinyData(12, 4); // 3 steps per epoch
  const model = tinyModel();
  model.compile({
    optimizer: optimizers.adam({ learningRate: new ExponentialDecay({ initialLearningRate: 0.01, decaySteps: 3, decayRate: 0.5 }) }),
    loss: 'binaryCrossentropy',
  });
  const history = await model.fit(data, { epochs: 3, verbose: 0 });
  const logged = history.history.learning_rate!;
  [0.005, 0.0025, 0.00125].forEach((v, e) => close(logged[e], v, `epoch ${e + 1}`));
  assert.throws(() => {
    model.learningRate = 0.1;
  }, /compiled with a learning-rate schedule \(ExponentialDecay\): its rate cannot be set/);

  const plateau = tinyModel();
  plateau.compile({ optimizer: optimizers.adam({ learningRate: 0.01 }), loss: 'binaryCrossentropy' });
  // monitoring a value that never improves after the first epoch: halve after every epoch from the second on
  const never = { onEpochEnd: (_e: number, logs: Record<string, number>) => void (logs.stuck = 1) };
  const h = await plateau.fit(data, {
    epochs: 4,
    verbose: 0,
    callbacks: [never, new ReduceLROnPlateau({ monitor: 'stuck', factor: 0.5, patience: 1 })],
  });
  assert.deepEqual(h.history.learning_rate, [0.01, 0.01, 0.005, 0.0025]);
  assert.equal(plateau.learningRate, 0.00125);
});

test('a saved model keeps its schedule and, with the optimizer state, its place in it or its lowered rate', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'transferlab-lr-save-'));
  try {
    const model = tinyModel();
    model.compile({
      optimizer: optimizers.sgd({ learningRate: new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 2, decayRate: 0.5 }) }),
      loss: 'binaryCrossentropy',
    });
    await model.fit(tinyData(12, 4), { epochs: 1, verbose: 0 });
    await saveModel(model, path.join(dir, 'm'), { includeOptimizer: true });
    const { model: loaded } = await loadModel(path.join(dir, 'm'));
    assert.ok(loaded.learningRateSchedule instanceof ExponentialDecay);
    assert.equal(loaded.engine.iterations(), 3);
    close(loaded.learningRate, 0.1 * 0.5 ** 1.5, 'the rate of step 3');

    // a fixed rate lowered by ReduceLROnPlateau comes back with the optimizer state, as Keras's optimizer variable
    const lowered = tinyModel();
    lowered.compile({ optimizer: optimizers.adam({ learningRate: 0.01 }), loss: 'binaryCrossentropy' });
    lowered.learningRate = 0.0025;
    await saveModel(lowered, path.join(dir, 'fixed'), { includeOptimizer: true });
    assert.equal((await loadModel(path.join(dir, 'fixed'))).model.learningRate, 0.0025);
    await saveModel(lowered, path.join(dir, 'fixed-no-optimizer'));
    assert.equal((await loadModel(path.join(dir, 'fixed-no-optimizer'))).model.learningRate, 0.01, 'without it: the compiled rate');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
