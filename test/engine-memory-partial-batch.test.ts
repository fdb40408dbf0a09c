// An epoch's last batch is usually smaller than the others (Keras keeps it). Its large buffers must
// come from the blocks the full batches left in the caching allocator: with exact-size reuse only,
// the experiment's CNN faulted in a second set of 3 GiB on its first partial step (45% slower) and
// kept both sets for the rest of the run.

import assert from 'node:assert/strict';
import test from 'node:test';
import { emptyCache } from '../lib/engine/memory.js';
import { native } from '../lib/engine/native.js';
import { memoryModel, SIZE } from './helpers/memory-model.js';

function batch(n: number): { x: Uint8Array; shape: number[]; y: Float32Array } {
  return {
    x: Uint8Array.from({ length: n * SIZE * SIZE * 3 }, (_, i) => (i * 31 + 7) % 256),
    shape: [n, SIZE, SIZE, 3],
    y: Float32Array.from({ length: n }, (_, i) => i % 2),
  };
}

test("a smaller last batch is served from the full batch's cached blocks", async () => {
  const m = memoryModel();
  const full = batch(8);
  const last = batch(6);
  await m.engine.trainStep(full.x, full.shape, full.y, 0);
  await m.engine.trainStep(full.x, full.shape, full.y, 0);
  const before = native().info();
  await m.engine.trainStep(last.x, last.shape, last.y, 0);
  await m.engine.evaluate(last.x, last.shape, last.y, 0);
  const after = native().info();
  // the conv output is 6 x 32 x 62 x 62 floats (2.9 MB) in the last batch, 3.9 MB in a full one: it and
  // its gradient (the train step) and the conv output again (evaluate) are large blocks
  assert.ok(after.allocatorHits - before.allocatorHits >= 3, `cache hits ${after.allocatorHits - before.allocatorHits}`);
  assert.equal(after.allocatorMisses - before.allocatorMisses, 0, 'the smaller batch allocated new large blocks');
  assert.ok(after.allocatorCachedBytes <= before.allocatorCachedBytes, 'the smaller batch grew the cache');
});

test("a smaller batch computed in a full batch's reused blocks gives that batch's rows", async () => {
  const m = memoryModel();
  const full = batch(8);
  const last = batch(5); // the first 5 examples of `full`
  const rows = await m.engine.evaluate(full.x, full.shape, full.y, 0);
  // the full batch's blocks, just written, are free again: the smaller batch computes in them
  const before = native().info();
  const part = await m.engine.evaluate(last.x, last.shape, last.y, 0);
  assert.equal(native().info().allocatorMisses - before.allocatorMisses, 0);
  assert.equal(part.output!.length, 5);
  for (let i = 0; i < 5; i++)
    assert.ok(Math.abs(part.output![i]! - rows.output![i]!) < 1e-5, `row ${i}: ${part.output![i]} vs ${rows.output![i]}`);
});

test('a far smaller batch gets blocks of its own, and emptyCache() hands every kept block back', async () => {
  const m = memoryModel();
  const full = batch(8);
  await m.engine.trainStep(full.x, full.shape, full.y, 0);
  const before = native().info();
  // 3 rows: its conv output (1.5 MB) is still a large block, but an 8-row block would waste most of itself
  const small = batch(3);
  await m.engine.trainStep(small.x, small.shape, small.y, 0);
  assert.ok(native().info().allocatorMisses > before.allocatorMisses, 'a much smaller batch took oversized cached blocks');

  emptyCache();
  assert.equal(native().info().allocatorCachedBytes, 0);
  // the next step finds nothing kept: its first large block is a new allocation (kept, it would be a hit)
  const misses = native().info().allocatorMisses;
  await m.engine.trainStep(full.x, full.shape, full.y, 0);
  assert.ok(native().info().allocatorMisses > misses, 'after emptyCache() a step still found its blocks kept');
});
