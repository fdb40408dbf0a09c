/**
 * Shards of a record dataset: with `shard`, a rank reads (native gathers) only its rows of every
 * global batch, which are the rows sliced naively out of the whole batch; datasets that cannot read
 * shards are read whole and sliced by shardedBatches.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { RecordDataset } from '../lib/data/record-dataset.js';
import { shardedBatches } from '../lib/data/shard.js';
import type { Batch, BatchOptions } from '../lib/data/types.js';
import { CyclingDataset } from '../lib/training/feature-cache.js';
import { countingGathers } from './helpers/counting-gathers.js';
import { ArrayDataset } from './helpers/naive.js';
import { writeRecordFile } from './helpers/record-files.js';

const N = 11;
const BATCH = 4;
const SHAPE = [2, 3];

/** Records k = 0..N-1 whose values are k*10 + element, labels k % 2. */
function writeRecords(dir: string): RecordDataset {
  const x = Float32Array.from({ length: N * 6 }, (_, i) => Math.floor(i / 6) * 10 + (i % 6));
  const { file, manifest } = writeRecordFile(path.join(dir, 'records.f32'), x, {
    shape: SHAPE,
    keys: Array.from({ length: N }, (_, i) => `k${i}`),
    labels: Array.from({ length: N }, (_, i) => i % 2),
  });
  return new RecordDataset(file, manifest, { batchSize: BATCH, classNames: ['a', 'b'], shuffleSeed: 9 });
}

function plain(b: Batch) {
  return { x: [...b.x], shape: b.shape, y: [...b.y], keys: b.keys, shardOf: b.shardOf };
}

async function collect(batches: AsyncIterable<Batch>) {
  const out = [];
  for await (const b of batches) out.push(plain(b));
  return out;
}

/** Rows [floor(r*n/W), floor((r+1)*n/W)) of each whole batch, sliced element by element. */
function naiveShards(whole: ReturnType<typeof plain>[], rank: number, worldSize: number) {
  return whole.map((b) => {
    const n = b.shape[0]!;
    const [from, to] = [Math.floor((rank * n) / worldSize), Math.floor(((rank + 1) * n) / worldSize)];
    return {
      x: b.x.slice(from * 6, to * 6),
      shape: [to - from, ...SHAPE],
      y: b.y.slice(from, to),
      keys: b.keys!.slice(from, to),
      shardOf: { start: from, size: n },
    };
  });
}

test('each rank of 1 to 5 reads only its rows of every global batch (empty shards included), as sliced from the whole batch', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-shards-'));
  try {
    const ds = writeRecords(dir);
    for (const pass of [0, 1]) {
      const whole = await collect(ds.batches({ pass }));
      assert.deepEqual(
        whole.map((b) => b.shape[0]),
        [4, 4, 3],
      );
      for (let worldSize = 1; worldSize <= 5; worldSize++) {
        let total = 0;
        for (let rank = 0; rank < worldSize; rank++) {
          const options: BatchOptions = { pass, shard: { rank, worldSize } };
          let shards: ReturnType<typeof plain>[] = [];
          const read = await countingGathers(async (counts) => {
            shards = await collect(ds.batches(options));
            return counts.records;
          });
          const expected = naiveShards(whole, rank, worldSize);
          assert.deepEqual(shards, expected, `pass ${pass}, rank ${rank} of ${worldSize}`);
          assert.equal(
            read,
            expected.reduce((a, b) => a + b.shape[0]!, 0),
            `records read by rank ${rank} of ${worldSize}`,
          );
          total += read;
        }
        assert.equal(total, N, `${worldSize} ranks read each record once`);
      }
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('datasets that cannot read shards are read whole and sliced; a cycle of record datasets reads shards', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-shards-'));
  try {
    const ds = writeRecords(dir);
    const whole = await collect(ds.batches({ ordered: true }));
    const x = Float32Array.from(whole.flatMap((b) => b.x));
    const y = Float32Array.from(whole.flatMap((b) => b.y));
    const shard = { rank: 1, worldSize: 3 };
    const inMemory = new ArrayDataset(x, SHAPE, y, BATCH);
    const sliced = await collect(shardedBatches(inMemory, { shard }));
    const expected = naiveShards(whole, 1, 3);
    assert.deepEqual(
      sliced.map(({ keys: _, ...b }) => b),
      expected.map(({ keys: _, ...b }) => b),
    );
    assert.deepEqual(
      inMemory.served.map((s) => s.size),
      [4, 4, 3],
      'read whole',
    );

    const cycle = new CyclingDataset([ds, ds]);
    assert.equal(cycle.readsShards, true);
    let shards: ReturnType<typeof plain>[] = [];
    const read = await countingGathers(async (counts) => {
      shards = await collect(shardedBatches(cycle, { pass: 1, shard }));
      return counts.records;
    });
    assert.deepEqual(shards, naiveShards(await collect(ds.batches({ pass: 1 })), 1, 3));
    assert.equal(read, 3, 'one row of each of the 3 global batches');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
