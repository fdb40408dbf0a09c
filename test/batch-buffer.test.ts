/**
 * Batch memory from the engine's block cache (native().batchBuffer): uninitialized, reused once a
 * batch is collected, and filled whole by the record reader, so that a reused block's old bytes
 * never reach a batch.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { RecordDataset } from '../lib/data/record-dataset.js';
import { native } from '../lib/engine/native.js';
import { assertBitExact, prod } from './helpers/naive.js';
import { writeRecordFile } from './helpers/record-files.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** One collection, then a turn of the event loop for the finalizers it queued. */
async function collect(): Promise<void> {
  gc();
  await new Promise((resolve) => setImmediate(resolve));
}

/** Collects garbage until the block cache holds `bytes`. */
async function collectInto(bytes: number): Promise<void> {
  for (let i = 0; i < 20 && native().info().allocatorCachedBytes < bytes; i++) await collect();
  assert.equal(native().info().allocatorCachedBytes, bytes, 'the collected batch went back to the block cache');
}

test('batchBuffer gives the bytes asked for, writable; 0 gives an empty buffer; a bad size is a RangeError', () => {
  const b = native().batchBuffer(3 << 20);
  assert.equal(b.byteLength, 3 << 20);
  const view = new Uint32Array(b);
  view.fill(0xdeadbeef);
  assert.equal(view[view.length - 1], 0xdeadbeef);
  assert.equal(native().batchBuffer(0).byteLength, 0);
  for (const bad of [-1, 1.5, Number.NaN, '8' as unknown as number]) {
    assert.throws(
      () => native().batchBuffer(bad),
      (e: Error) => e instanceof RangeError && /batchBuffer\(bytes\)/.test(e.message),
    );
  }
});

test("a collected batch's block serves the next batch, and its old bytes never show in a batch read from records", async () => {
  const records = 12;
  const batch = 8;
  const shape = [64, 64, 16]; // 256 KiB of float32 per record: a batch's block (2 MiB) is a cached size
  const per = prod(shape);
  const values = Float32Array.from({ length: records * per }, (_, k) => (k % 9973) * 0.5 - 100);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-batch-buffer-'));
  try {
    const { file, manifest } = writeRecordFile(path.join(dir, 'records.bin'), values, {
      shape,
      keys: Array.from({ length: records }, (_, i) => `r${i}`),
      labels: Array.from({ length: records }, (_, i) => i % 2),
    });
    // the only cached block: a full batch's, poisoned and collected (earlier buffers collected first)
    for (let i = 0; i < 3; i++) await collect();
    native().emptyCache();
    new Uint8Array(native().batchBuffer(batch * per * 4)).fill(0xff);
    await collectInto(batch * per * 4);

    const { allocatorHits: hitsBefore } = native().info();
    const dataset = new RecordDataset(file, manifest, { batchSize: batch, classNames: ['a', 'b'], prefetch: 0 });
    const read: Float32Array[] = [];
    for await (const b of dataset.batches({ ordered: true })) read.push(b.x as Float32Array);
    assert.ok(native().info().allocatorHits > hitsBefore, 'the first batch reused the poisoned block');
    assert.deepEqual(
      read.map((x) => x.length),
      [batch * per, (records - batch) * per],
    );
    assertBitExact(read[0]!, values.subarray(0, batch * per), 'the first batch (in the reused block)');
    assertBitExact(read[1]!, values.subarray(batch * per), 'the last batch');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
