/**
 * The record reader's read-ahead: batches read ahead (native gather) are exactly the batches read
 * on demand and the batches sliced naively out of the whole file, for both dtypes; a consumer that
 * stops early leaves no read running and the file closed; a failed read surfaces on its own batch.
 */
import assert from 'node:assert/strict';
import { promises as fs, readdirSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { passOrder } from '../lib/data/prng.js';
import type { RecordDtype } from '../lib/data/record-cache.js';
import { RecordDataset } from '../lib/data/record-dataset.js';
import type { Batch } from '../lib/data/types.js';
import { countingGathers } from './helpers/counting-gathers.js';
import { type RecordFile, writeRecordFile } from './helpers/record-files.js';

const N = 23;
const BATCH = 5;
const SHAPE = [2, 3, 2];
const ELEMENTS = 12;
const DTYPES: RecordDtype[] = ['uint8', 'float32'];

interface Cache extends RecordFile {
  bytes: Uint8Array;
  per: number;
}

function writeCache(dir: string, dtype: RecordDtype): Cache {
  const values = Array.from({ length: N * ELEMENTS }, (_, k) => (dtype === 'uint8' ? (k * 37) % 256 : k * 0.25 - 7));
  const records = dtype === 'uint8' ? Uint8Array.from(values) : Float32Array.from(values);
  const bytes = new Uint8Array(records.buffer);
  const written = writeRecordFile(path.join(dir, `${dtype}.bin`), records, {
    shape: SHAPE,
    keys: Array.from({ length: N }, (_, i) => `k${i}`),
    labels: Array.from({ length: N }, (_, i) => ((i * 5) % 3 === 0 ? 1 : 0)),
  });
  return { ...written, bytes, per: bytes.length / N };
}

/** Batches sliced out of the whole file in memory, record by record. */
function naiveBatches(cache: Cache, order: number[] | undefined): { bytes: number[]; y: number[]; keys: string[]; shape: number[] }[] {
  const out = [];
  for (let start = 0; start < N; start += BATCH) {
    const idx = Array.from({ length: Math.min(BATCH, N - start) }, (_, i) => (order ? order[start + i]! : start + i));
    const bytes: number[] = [];
    for (const i of idx) bytes.push(...cache.bytes.subarray(i * cache.per, (i + 1) * cache.per));
    out.push({ bytes, y: idx.map((i) => cache.manifest.labels[i]!), keys: idx.map((i) => `k${i}`), shape: [idx.length, ...SHAPE] });
  }
  return out;
}

function plain(b: Batch) {
  return { bytes: [...new Uint8Array(b.x.buffer, b.x.byteOffset, b.x.byteLength)], y: [...b.y], keys: b.keys!, shape: b.shape };
}

async function collect(ds: RecordDataset, options: { pass?: number; ordered?: boolean }) {
  const out = [];
  for await (const b of ds.batches(options)) out.push(plain(b));
  return out;
}

function openFdsTo(file: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false;
    }
  }).length;
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-prefetch-'));
  try {
    return await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

for (const dtype of DTYPES) {
  test(`${dtype}: read-ahead batches equal on-demand batches and naive slices (bytes, labels, keys, order)`, () =>
    withDir(async (dir) => {
      const cache = writeCache(dir, dtype);
      const ahead = new RecordDataset(cache.file, cache.manifest, { batchSize: BATCH, classNames: ['a', 'b'], shuffleSeed: 9 });
      const onDemand = new RecordDataset(cache.file, cache.manifest, {
        batchSize: BATCH,
        classNames: ['a', 'b'],
        shuffleSeed: 9,
        prefetch: 0,
      });
      for (const pass of [0, 1, 4]) {
        const expected = naiveBatches(cache, passOrder(N, 9, pass));
        assert.deepEqual(await collect(ahead, { pass }), expected, `pass ${pass}`);
        assert.deepEqual(await collect(onDemand, { pass }), expected, `pass ${pass} on demand`);
      }
      assert.deepEqual(await collect(ahead, { ordered: true }), naiveBatches(cache, undefined));
      const first = (await collect(ahead, { pass: 0 }))[0]!;
      assert.equal(first.bytes.length, BATCH * cache.per);
      assert.ok(
        first.keys.some((k, i) => k !== `k${i}`),
        'pass 0 is shuffled',
      );
      if (dtype === 'float32') {
        for await (const b of ahead.batches({ pass: 0 })) assert.ok(b.x instanceof Float32Array);
      }
    }));

  test(`${dtype}: a consumer that stops early leaves no read running and the file closed`, () =>
    withDir(async (dir) => {
      const cache = writeCache(dir, dtype);
      const ds = new RecordDataset(cache.file, cache.manifest, { batchSize: BATCH, classNames: ['a', 'b'], shuffleSeed: 2, prefetch: 2 });
      await countingGathers(async (counts) => {
        let seen = 0;
        for await (const b of ds.batches({ pass: 3 })) {
          assert.deepEqual(plain(b), naiveBatches(cache, passOrder(N, 2, 3))[0]);
          assert.equal(openFdsTo(cache.file), 1);
          seen++;
          break;
        }
        assert.equal(seen, 1);
        assert.equal(counts.records, 3 * BATCH, 'the batch asked for and two read ahead');
        assert.equal(counts.settled, counts.started, 'every read finished before the iterator returned');
      });
      assert.equal(openFdsTo(cache.file), 0);
    }));

  test(`${dtype}: a failed read surfaces on the batch it belongs to, after the batches before it`, () =>
    withDir(async (dir) => {
      const cache = writeCache(dir, dtype);
      // the file ends inside record 16: in file order, batches 0-2 (records 0-14) are whole and batch 3 is not
      await fs.truncate(cache.file, 16 * cache.per + 3);
      const ds = new RecordDataset(cache.file, cache.manifest, { batchSize: BATCH, classNames: ['a', 'b'], prefetch: 2 });
      const expected = naiveBatches(cache, undefined);
      const got: ReturnType<typeof plain>[] = [];
      await assert.rejects(
        async () => {
          for await (const b of ds.batches({ ordered: true })) got.push(plain(b));
        },
        (error: Error) => {
          assert.ok(error.message.includes(`cache file ${cache.file} ended early (at byte ${16 * cache.per + 3})`), error.message);
          assert.match(error.message, /delete it to rebuild it/);
          return true;
        },
      );
      assert.deepEqual(got, expected.slice(0, 3));
      assert.equal(openFdsTo(cache.file), 0);
    }));
}
