// The engine keeps large freed blocks for the next step instead of returning them to the kernel
// (docs/architecture.md: the biggest CPU lever). After a warm-up step, a training step must be served
// entirely from the cache: no new large allocations, no page faults for them.

import assert from 'node:assert/strict';
import test from 'node:test';
import { emptyCache } from '../lib/engine/memory.js';
import { native } from '../lib/engine/native.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';

function smallCnn(): Sequential {
  return new Sequential(
    [
      layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', inputShape: [64, 64, 3] }),
      layers.maxPooling2d({ poolSize: 2 }),
      layers.flatten(),
      layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
    { seed: 1 },
  );
}

function trainStepOf(model: Sequential, n: number): () => Promise<unknown> {
  const x = Uint8Array.from({ length: n * 64 * 64 * 3 }, (_, i) => (i * 31) % 256);
  const y = Float32Array.from({ length: n }, (_, i) => i % 2);
  return () => model.engine.trainStep(x, [n, 64, 64, 3], y, 0);
}

test('after a warm-up step, training steps reuse every large buffer from the caching allocator', async () => {
  const model = smallCnn();
  model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  const step = trainStepOf(model, 8);
  await step();
  await step();
  const before = native().info();
  await step();
  await step();
  const after = native().info();
  // the conv output alone is 8 x 32 x 62 x 62 floats (3.9 MB): large blocks are allocated every step
  assert.ok(after.allocatorHits - before.allocatorHits >= 4, `cache hits ${after.allocatorHits - before.allocatorHits}`);
  assert.equal(after.allocatorMisses - before.allocatorMisses, 0, 'a warmed-up step allocated new large blocks');
  assert.ok(after.allocatorCachedBytes > 1 << 20, 'freed blocks are kept for reuse');
});

test("an epoch's smaller last batch reuses the full batches' buffers, and emptyCache() returns them", async () => {
  const model = smallCnn();
  model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  const full = trainStepOf(model, 8);
  await full();
  await full();
  const before = native().info();
  // 7 rows need slightly smaller buffers than 8: exact-size reuse would allocate (and keep) a second set
  await trainStepOf(model, 7)();
  await full();
  const after = native().info();
  assert.equal(after.allocatorMisses - before.allocatorMisses, 0, 'the smaller batch allocated new large blocks');
  assert.equal(after.allocatorCachedBytes, before.allocatorCachedBytes, 'the cache grew');
  // a batch of 3 is far smaller (its conv output, 1.5 MB, is still a large block): reusing 8-row blocks
  // would waste most of them, so it gets its own
  await trainStepOf(model, 3)();
  assert.ok(native().info().allocatorMisses > after.allocatorMisses, 'a much smaller batch took oversized cached blocks');

  emptyCache();
  assert.equal(native().info().allocatorCachedBytes, 0);
  const hitsBefore = native().info().allocatorHits;
  await full();
  assert.equal(native().info().allocatorHits, hitsBefore, 'an emptied cache served a block');
});
