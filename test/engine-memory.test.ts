// The engine keeps large freed blocks for the next step instead of returning them to the kernel
// (docs/architecture.md: the biggest CPU lever). After a warm-up step, a training step must be served
// entirely from the cache: no new large allocations, no page faults for them.

import assert from 'node:assert/strict';
import test from 'node:test';
import { native } from '../lib/engine/native.js';
import { memoryModel, SIZE } from './helpers/memory-model.js';

test('after a warm-up step, training steps reuse every large buffer from the caching allocator', async () => {
  const model = memoryModel();
  const n = 8;
  const x = Uint8Array.from({ length: n * SIZE * SIZE * 3 }, (_, i) => (i * 31) % 256);
  const y = Float32Array.from({ length: n }, (_, i) => i % 2);
  const step = () => model.engine.trainStep(x, [n, SIZE, SIZE, 3], y, 0);
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
