// Saves replace a model folder as a whole; a save killed midway never leaves a mix of two saves,
// and the last complete save is still found.

import assert from 'node:assert/strict';
import { mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { loadModel, saveModel } from '../lib/saving/persistence.js';

function tiny(seed: number): Sequential {
  const m = new Sequential([layers.flatten({ inputShape: [2, 2, 3] }), layers.dense({ units: 1, activation: 'sigmoid' })], {
    seed,
    preprocessing: 'scale01',
  });
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  return m;
}

test('save -> load round trip gives identical predictions and optimizer state; a save killed between its renames is recovered', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-persist-'));
  try {
    const x = Uint8Array.from({ length: 2 * 12 }, (_, i) => i * 9);
    const y = new Float32Array([0, 1]);
    const first = tiny(1);
    await first.engine.trainStep(x, [2, 2, 2, 3], y, 0);
    const target = path.join(dir, 'model');
    await saveModel(first, target, { includeOptimizer: true, classNames: ['cat', 'dog'] });

    const { model: loaded, metadata } = await loadModel(target);
    assert.deepEqual(metadata?.classNames, ['cat', 'dog']);
    assert.equal(loaded.preprocessing, 'scale01');
    assert.deepEqual((await loaded.predict(x, [2, 2, 2, 3])).output, (await first.predict(x, [2, 2, 2, 3])).output);
    // the optimizer continues where it was: the next step is the same in both
    const a = await first.engine.trainStep(x, [2, 2, 2, 3], y, 0);
    const b = await loaded.engine.trainStep(x, [2, 2, 2, 3], y, 0);
    assert.equal(a.loss, b.loss);
    assert.deepEqual(loaded.getLayerWeights(1)[0].data, first.getLayerWeights(1)[0].data);

    // A second save replaces the first; simulate a kill after the old copy was moved aside.
    const second = tiny(2);
    await saveModel(second, target);
    await rename(target, `${target}.previous-12345`);
    const { model: recovered } = await loadModel(target);
    assert.deepEqual(recovered.getLayerWeights(1)[0].data, second.getLayerWeights(1)[0].data);
    assert.deepEqual((await readdir(dir)).sort(), ['model'], 'no leftovers beside the model folder');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
