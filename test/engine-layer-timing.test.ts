/**
 * The engine's layer timing mode (used by the bench): one row per layer in model order with the
 * forward and backward passes counted, the optimizer's update, nothing recorded when it is off.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../lib/engine/native.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';

function model(): Sequential {
  const m = new Sequential(
    [
      layers.conv2d({ filters: 2, kernelSize: 3, activation: 'relu', inputShape: [8, 8, 1], name: 'c' }),
      layers.maxPooling2d({ poolSize: 2, name: 'p' }),
      layers.flatten({ name: 'f' }),
      layers.dense({ units: 1, activation: 'sigmoid', name: 'd' }),
    ],
    { seed: 1, preprocessing: 'none', name: 'timed' },
  );
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  return m;
}

const x = Float32Array.from({ length: 2 * 64 }, (_, i) => Math.sin(i));
const y = Float32Array.from([0, 1]);

test('layer timing records forward and backward of every layer, then the optimizer, per step', { timeout: 60_000 }, async () => {
  const m = model();
  const n = native();
  n.setLayerTiming(true);
  try {
    for (let i = 0; i < 3; i++) await m.engine.trainStep(x, [2, 8, 8, 1], y, 0);
    const rows = n.takeLayerTimes();
    assert.deepEqual(
      rows.map((r) => r.layer),
      ['c', 'p', 'f', 'd', '(loss)', '(optimizer)'],
    );
    for (const r of rows.slice(0, 4)) {
      assert.equal(r.forwardCalls, 3, `${r.layer} forward calls`);
      assert.equal(r.backwardCalls, 3, `${r.layer} backward calls`);
      assert.ok(r.forwardSeconds > 0 && r.backwardSeconds >= 0, `${r.layer}: ${JSON.stringify(r)}`);
    }
    assert.equal(rows[4]!.backwardCalls, 3);
    assert.equal(rows[5]!.forwardCalls, 3);
    assert.deepEqual(n.takeLayerTimes(), [], 'taking the times clears them');
  } finally {
    n.setLayerTiming(false);
  }
  await m.engine.trainStep(x, [2, 8, 8, 1], y, 0);
  assert.deepEqual(n.takeLayerTimes(), [], 'nothing is recorded with timing off');
});
