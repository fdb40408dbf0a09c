/**
 * Optimizers and loss checks: SGD (momentum, nesterov) and RMSprop (rho, momentum, centered) against
 * Keras's update formulas computed by hand in float64; their state saved and restored; old Adam
 * checkpoints still load; unknown names and out-of-range labels are errors.
 */

import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { layers } from '../lib/models/layers.js';
import { type OptimizerSpec, optimizers } from '../lib/models/optimizers.js';
import { Sequential } from '../lib/models/sequential.js';
import { loadModel, restoreCheckpoint, saveModel } from '../lib/saving/persistence.js';
import { ArrayDataset, assertClose, maxAbs, Rng, sigmoid } from './helpers/naive.js';

const FEATURES = 3;
const BATCH = 4;

/** Dense(1, sigmoid) on 3 features: its BCE gradient has a closed form, so the reference is exact. */
function linearModel(seed = 3): Sequential {
  const m = new Sequential([layers.dense({ units: 1, activation: 'sigmoid', inputShape: [FEATURES] })], {
    seed,
    preprocessing: 'none',
    name: 'linear',
  });
  m.setLayerWeights(0, [Float32Array.from([0.3, -0.2, 0.1]), Float32Array.from([0.05])]);
  return m;
}

function batches(count: number): { x: Float32Array; y: Float32Array }[] {
  const rng = new Rng(11);
  return Array.from({ length: count }, () => ({ x: rng.floats(BATCH * FEATURES, -2, 2), y: Float32Array.from([0, 1, 1, 0]) }));
}

/** d mean-BCE / d [kernel..., bias] for a sigmoid unit: X^T (sigmoid(z) - y) / n. */
function gradient(w: Float64Array, x: Float32Array, y: Float32Array): Float64Array {
  const g = new Float64Array(FEATURES + 1);
  for (let n = 0; n < BATCH; n++) {
    let z = w[FEATURES];
    for (let i = 0; i < FEATURES; i++) z += x[n * FEATURES + i] * w[i];
    const d = (sigmoid(z) - y[n]) / BATCH;
    for (let i = 0; i < FEATURES; i++) g[i] += d * x[n * FEATURES + i];
    g[FEATURES] += d;
  }
  return g;
}

interface Settings {
  learningRate: number;
  momentum: number;
  nesterov?: boolean;
  rho?: number;
  epsilon?: number;
  centered?: boolean;
}

/** Keras SGD: velocity = momentum*velocity - lr*g; w += velocity (nesterov: w += momentum*velocity - lr*g). */
function sgdReference(s: Settings) {
  let velocity: Float64Array | undefined;
  return (w: Float64Array, g: Float64Array) => {
    velocity ??= new Float64Array(w.length);
    for (let i = 0; i < w.length; i++) {
      velocity[i] = s.momentum * velocity[i] - s.learningRate * g[i];
      w[i] += s.nesterov ? s.momentum * velocity[i] - s.learningRate * g[i] : velocity[i];
    }
  };
}

/** Keras RMSprop: ms = rho*ms + (1-rho)g^2; denom = sqrt(ms [- mg^2]) + eps; v = momentum*v + lr*g/denom; w -= v. */
function rmspropReference(s: Settings) {
  const rho = s.rho ?? 0.9;
  const eps = s.epsilon ?? 1e-7;
  let ms: Float64Array | undefined;
  let mg: Float64Array | undefined;
  let v: Float64Array | undefined;
  return (w: Float64Array, g: Float64Array) => {
    ms ??= new Float64Array(w.length);
    mg ??= new Float64Array(w.length);
    v ??= new Float64Array(w.length);
    for (let i = 0; i < w.length; i++) {
      ms[i] = rho * ms[i] + (1 - rho) * g[i] * g[i];
      let denom = Math.sqrt(ms[i]) + eps;
      if (s.centered) {
        mg[i] = rho * mg[i] + (1 - rho) * g[i];
        denom = Math.sqrt(ms[i] - mg[i] * mg[i]) + eps;
      }
      v[i] = s.momentum * v[i] + (s.learningRate * g[i]) / denom;
      w[i] -= v[i];
    }
  };
}

function weightsOf(m: Sequential): Float64Array {
  const [kernel, bias] = m.getLayerWeights(0);
  return Float64Array.from([...kernel.data, ...bias.data]);
}

const CASES: { name: string; spec: OptimizerSpec; reference: (w: Float64Array, g: Float64Array) => void }[] = [
  { name: "'sgd' (Keras defaults: lr 0.01, no momentum)", spec: 'sgd', reference: sgdReference({ learningRate: 0.01, momentum: 0 }) },
  {
    name: 'sgd with momentum 0.9',
    spec: optimizers.sgd({ learningRate: 0.1, momentum: 0.9 }),
    reference: sgdReference({ learningRate: 0.1, momentum: 0.9 }),
  },
  {
    name: 'sgd nesterov',
    spec: { sgd: { learningRate: 0.1, momentum: 0.8, nesterov: true } },
    reference: sgdReference({ learningRate: 0.1, momentum: 0.8, nesterov: true }),
  },
  { name: "'rmsprop' (Keras defaults)", spec: 'rmsprop', reference: rmspropReference({ learningRate: 0.001, momentum: 0 }) },
  {
    name: 'rmsprop with momentum, epsilon 0.1',
    spec: optimizers.rmsprop({ learningRate: 0.01, momentum: 0.5, epsilon: 0.1, rho: 0.8 }),
    reference: rmspropReference({ learningRate: 0.01, momentum: 0.5, epsilon: 0.1, rho: 0.8 }),
  },
  {
    name: 'rmsprop centered with momentum',
    spec: { rmsprop: { learningRate: 0.01, momentum: 0.9, centered: true, epsilon: 0.01 } },
    reference: rmspropReference({ learningRate: 0.01, momentum: 0.9, centered: true, epsilon: 0.01 }),
  },
];

for (const c of CASES) {
  test(`${c.name}: three engine steps match Keras's formula in float64`, async () => {
    const m = linearModel();
    m.compile({ optimizer: c.spec, loss: 'binaryCrossentropy' });
    const expected = weightsOf(m);
    for (const [t, b] of batches(3).entries()) {
      const before = weightsOf(m);
      c.reference(expected, gradient(expected, b.x, b.y));
      await m.engine.trainStep(b.x, [BATCH, FEATURES], b.y, 0);
      const after = weightsOf(m);
      const wanted = expected.map((v, i) => v - before[i]);
      assert.ok(maxAbs(wanted) > 1e-4, `step ${t + 1}: the expected update is measurable`);
      assertClose(
        after.map((v, i) => v - before[i]),
        wanted,
        { atol: 1e-6, rtol: 1e-3, what: `step ${t + 1} update` },
      );
    }
    assert.equal(m.engine.getOptimizerState().iterations, 3);
  });
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-optim-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function continuesLikeUninterrupted(
  t: { after: (fn: () => Promise<void>) => void },
  spec: OptimizerSpec,
  edit?: (dir: string) => Promise<void>,
): Promise<void> {
  const data = batches(4);
  const original = linearModel();
  original.compile({ optimizer: spec, loss: 'binaryCrossentropy' });
  for (const b of data.slice(0, 2)) await original.engine.trainStep(b.x, [BATCH, FEATURES], b.y, 0);
  const dir = path.join(await tempDir(t), 'checkpoint');
  await saveModel(original, dir, { includeOptimizer: true });
  await edit?.(dir);
  const { model: loaded } = await loadModel(dir);
  for (const b of data.slice(2)) {
    await original.engine.trainStep(b.x, [BATCH, FEATURES], b.y, 0);
    await loaded.engine.trainStep(b.x, [BATCH, FEATURES], b.y, 0);
  }
  assert.deepEqual(weightsOf(loaded), weightsOf(original), 'a restored optimizer continues exactly where the saved one was');
  assert.equal(loaded.engine.getOptimizerState().iterations, 4);
}

test('SGD momentum and centered RMSprop state is saved and restored: training continues identically', async (t) => {
  await continuesLikeUninterrupted(t, optimizers.sgd({ learningRate: 0.1, momentum: 0.9, nesterov: true }));
  await continuesLikeUninterrupted(t, optimizers.rmsprop({ momentum: 0.5, centered: true }));
});

test('an Adam checkpoint in the old format (no optimizer name, two moments per weight) still loads and continues', async (t) => {
  await continuesLikeUninterrupted(t, 'adam', async (dir) => {
    const file = path.join(dir, 'optimizer.json');
    const header = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
    assert.equal(header.optimizer, 'adam');
    assert.equal(header.slots, 2);
    delete header.optimizer;
    delete header.slots;
    await fs.writeFile(file, JSON.stringify(header));
  });
});

test('restoring an optimizer state into a model compiled with another optimizer is refused', async (t) => {
  const m = linearModel();
  m.compile({ optimizer: optimizers.sgd({ momentum: 0.9 }), loss: 'binaryCrossentropy' });
  const b = batches(1)[0];
  await m.engine.trainStep(b.x, [BATCH, FEATURES], b.y, 0);
  const dir = path.join(await tempDir(t), 'checkpoint');
  await saveModel(m, dir, { includeOptimizer: true });
  const other = linearModel();
  other.compile({ optimizer: 'rmsprop', loss: 'binaryCrossentropy' });
  await assert.rejects(restoreCheckpoint(other, dir), /optimizer state is sgd's but the model is compiled with rmsprop/);
  const plain = linearModel();
  plain.compile({ optimizer: 'sgd', loss: 'binaryCrossentropy' });
  await assert.rejects(restoreCheckpoint(plain, dir), /has 1 slots, the compiled optimizer keeps 0/);
});

test('unknown optimizer, option or loss names are errors that list what exists', () => {
  const m = linearModel();
  assert.throws(
    () => m.compile({ optimizer: 'adagrad' as never, loss: 'binaryCrossentropy' }),
    /unknown optimizer 'adagrad': use one of adam, sgd, rmsprop/,
  );
  assert.throws(
    () => m.compile({ optimizer: { sgd: { momentun: 0.9 } as never }, loss: 'binaryCrossentropy' }),
    /optimizer sgd has no option 'momentun': its options are learningRate, momentum, nesterov/,
  );
  assert.throws(
    () => m.compile({ optimizer: optimizers.rmsprop({ rho: 1.5 }), loss: 'binaryCrossentropy' }),
    /rmsprop: rho must be a number in \[0, 1\), got 1.5/,
  );
  assert.throws(
    () => m.compile({ optimizer: 'sgd', loss: 'hinge' as never }),
    /unknown loss 'hinge': use one of binaryCrossentropy, .*sparse_categorical_crossentropy/,
  );
  assert.equal(m.compiled, undefined, 'a refused compile leaves the model uncompiled');
});

test('binary crossentropy refuses a label outside [0, 1] and names the batch', async () => {
  const m = linearModel();
  m.compile({ optimizer: 'sgd', loss: 'binaryCrossentropy' });
  const rng = new Rng(5);
  const y = Float32Array.from([0, 1, 1, 0, 1, 0, 2, 1]);
  const data = new ArrayDataset(rng.floats(8 * FEATURES, -1, 1), [FEATURES], y, 4);
  await assert.rejects(
    m.fit(data, { epochs: 1, verbose: 0 }),
    /label 2 of example 2 in training batch 2 of epoch 1 is out of range: binaryCrossentropy needs labels in \[0, 1\]/,
  );
  await assert.rejects(m.evaluate(data), /label 2 of example 2 in evaluation batch 2/);
  const valid = new ArrayDataset(rng.floats(4 * FEATURES, -1, 1), [FEATURES], Float32Array.from([0, -1, 1, 0]), 4);
  await assert.rejects(
    m.fit(new ArrayDataset(rng.floats(4 * FEATURES, -1, 1), [FEATURES], Float32Array.from([0, 1, 1, 0]), 4), {
      epochs: 1,
      verbose: 0,
      validationData: valid,
    }),
    /label -1 of example 1 in validation of epoch 1, batch 1/,
  );
});

test('sparse categorical crossentropy refuses labels that are not class indices of the model', async () => {
  const m = new Sequential([layers.dense({ units: 3, activation: 'softmax', inputShape: [FEATURES] })], { seed: 1, preprocessing: 'none' });
  m.compile({ optimizer: 'adam', loss: 'sparse_categorical_crossentropy' });
  const rng = new Rng(6);
  const ok = new ArrayDataset(rng.floats(4 * FEATURES, -1, 1), [FEATURES], Float32Array.from([0, 1, 2, 1]), 4, ['a', 'b', 'c']);
  await m.fit(ok, { epochs: 1, verbose: 0 });
  for (const bad of [3, 1.5]) {
    const data = new ArrayDataset(rng.floats(4 * FEATURES, -1, 1), [FEATURES], Float32Array.from([0, 1, bad, 1]), 4, ['a', 'b', 'c']);
    await assert.rejects(
      m.fit(data, { epochs: 1, verbose: 0 }),
      new RegExp(`label ${bad} of example 2 in training batch 1 of epoch 1 is out of range: .*integer class indices in \\[0, 3\\)`),
    );
  }
});
