/**
 * The record-file cache shared by decoded images and features: records round-trip in both dtypes,
 * an interrupted fill resumes to the same bytes, a damaged entry is rebuilt, concurrent fills of
 * one entry compute it once, and the reader's shuffled passes follow (seed, pass) for both dtypes.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { entryDir, type FillStep, openRecordCache, type RecordCacheRequest, type RecordDtype } from '../lib/data/record-cache.js';
import { RecordDataset } from '../lib/data/record-dataset.js';
import type { Batch } from '../lib/data/types.js';

const N = 23;
const SHAPES: Record<RecordDtype, number[]> = { uint8: [2, 3, 3], float32: [5] };
/** Inputs whose index is a multiple of 7 give no record (like images that fail to decode). */
const isSkipped = (i: number) => i % 7 === 3;

function elementsOf(dtype: RecordDtype): number {
  return SHAPES[dtype].reduce((a, b) => a * b, 1);
}

/** Record of input i, element j, written out naively. */
function value(dtype: RecordDtype, i: number, j: number): number {
  return dtype === 'uint8' ? (i * 37 + j * 11) % 256 : i * 0.5 - j / 3;
}

function expectedRecord(dtype: RecordDtype, i: number): number[] {
  const out = Array.from({ length: elementsOf(dtype) }, (_, j) => value(dtype, i, j));
  return dtype === 'float32' ? Array.from(Float32Array.from(out)) : out;
}

interface Log {
  starts: number[];
  produced: number;
}

/** Steps of up to three inputs each from `from` on; throws once `failAfter` inputs were produced by this call. */
async function* steps(dtype: RecordDtype, from: number, log: Log, failAfter?: number): AsyncGenerator<FillStep<{ input: number }>> {
  log.starts.push(from);
  let produced = 0;
  for (let start = from; start < N; start += 3) {
    const inputs = Array.from({ length: Math.min(3, N - start) }, (_, k) => start + k);
    const kept = inputs.filter((i) => !isSkipped(i));
    const values = kept.flatMap((i) => Array.from({ length: elementsOf(dtype) }, (_, j) => value(dtype, i, j)));
    const data = dtype === 'uint8' ? Uint8Array.from(values) : Float32Array.from(values);
    yield {
      records: { data, keys: kept.map((i) => `k${i}`), labels: kept.map((i) => i % 2) },
      skipped: inputs.filter(isSkipped).map((input) => ({ input })),
    };
    produced += inputs.length;
    log.produced += inputs.length;
    if (failAfter !== undefined && produced >= failAfter) throw new Error('simulated interruption');
  }
}

function request(root: string, dtype: RecordDtype, log: Log, failAfter?: number): RecordCacheRequest<{ input: number }> {
  const key = { test: 'records', dtype };
  return {
    dir: entryDir(root, 'test', key),
    fileName: `records.${dtype}`,
    key,
    dtype,
    shape: SHAPES[dtype],
    total: N,
    produce: (from) => steps(dtype, from, log, failAfter),
    label: 'test',
    itemName: 'inputs',
    progress: false,
  };
}

const newLog = (): Log => ({ starts: [], produced: 0 });
const kept = Array.from({ length: N }, (_, i) => i).filter((i) => !isSkipped(i));

async function collect(ds: RecordDataset, options: { pass?: number; ordered?: boolean } = {}): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of ds.batches(options)) out.push(b);
  return out;
}

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-records-'));
  try {
    await fn(root);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

for (const dtype of ['uint8', 'float32'] as const) {
  test(`${dtype} records round-trip in input order, with inputs left out listed, and are reused`, async () => {
    await withRoot(async (root) => {
      const log = newLog();
      const first = await openRecordCache(request(root, dtype, log));
      assert.equal(first.filled, true);
      assert.equal(first.computed, kept.length);
      assert.deepEqual(
        first.manifest.keys,
        kept.map((i) => `k${i}`),
      );
      assert.deepEqual(first.manifest.skipped, [{ input: 3 }, { input: 10 }, { input: 17 }]);
      assert.equal((await fs.stat(first.file)).size, kept.length * elementsOf(dtype) * (dtype === 'uint8' ? 1 : 4));

      const ds = new RecordDataset(first.file, first.manifest, { batchSize: 4, classNames: ['even', 'odd'] });
      const batches = await collect(ds);
      assert.deepEqual(
        batches.map((b) => b.shape),
        batches.map((_, i) => [Math.min(4, kept.length - i * 4), ...SHAPES[dtype]]),
      );
      const x = batches.flatMap((b) => Array.from(b.x));
      assert.ok(batches.every((b) => b.x instanceof (dtype === 'uint8' ? Uint8Array : Float32Array)));
      assert.deepEqual(
        x,
        kept.flatMap((i) => expectedRecord(dtype, i)),
      );
      assert.deepEqual(
        batches.flatMap((b) => Array.from(b.y)),
        kept.map((i) => i % 2),
      );
      assert.deepEqual(
        batches.flatMap((b) => b.keys!),
        kept.map((i) => `k${i}`),
      );

      const again = await openRecordCache(request(root, dtype, log));
      assert.equal(again.filled, false);
      assert.equal(again.computed, 0);
      assert.deepEqual(log.starts, [0], 'the second open computes nothing');
      assert.deepEqual((await fs.readdir(path.dirname(first.file))).sort(), ['last-used', 'manifest.json', `records.${dtype}`]);
    });
  });

  test(`${dtype}: an interrupted fill resumes where it stopped and ends byte-identical to an uninterrupted one`, async () => {
    await withRoot(async (root) => {
      const a = path.join(root, 'a');
      const b = path.join(root, 'b');
      const log = newLog();
      await assert.rejects(openRecordCache(request(a, dtype, log, 9)), /simulated interruption/);
      const dir = request(a, dtype, log).dir;
      const progress = JSON.parse(await fs.readFile(path.join(dir, 'progress.json'), 'utf8')) as { done: number; skipped: unknown[] };
      assert.equal(progress.done + progress.skipped.length, 9, 'the progress records the inputs written');
      await assert.rejects(fs.stat(path.join(dir, `records.${dtype}`)), 'no complete file before the fill ends');
      await assert.rejects(fs.stat(path.join(dir, 'manifest.json')));
      // A process killed between two progress records leaves bytes after the recorded ones (here
      // more than the rest of the file, so that keeping them would show).
      await fs.appendFile(path.join(dir, `records.${dtype}.partial`), Buffer.alloc(N * elementsOf(dtype) * 4 + 13, 0xee));

      const resumed = await openRecordCache(request(a, dtype, log));
      assert.deepEqual(log.starts, [0, 9], 'the second fill starts at the first input not recorded');
      assert.equal(resumed.computed, kept.length - progress.done, 'only the remainder is computed');
      assert.equal(log.produced, N, 'every input produced once over both fills');

      const whole = await openRecordCache(request(b, dtype, newLog()));
      assert.ok((await fs.readFile(resumed.file)).equals(await fs.readFile(whole.file)), 'same bytes');
      assert.deepEqual({ ...resumed.manifest, createdAt: '' }, { ...whole.manifest, createdAt: '' });
      await assert.rejects(fs.stat(path.join(dir, 'progress.json')), 'progress removed once complete');
    });
  });

  test(`${dtype}: a truncated file, a missing manifest or another shape is detected and filled again`, async () => {
    await withRoot(async (root) => {
      const log = newLog();
      const first = await openRecordCache(request(root, dtype, log));
      const reference = await fs.readFile(first.file);
      await fs.truncate(first.file, reference.length - 1);
      const rebuilt = await openRecordCache(request(root, dtype, log));
      assert.equal(rebuilt.filled, true);
      assert.equal(rebuilt.computed, kept.length);
      assert.ok((await fs.readFile(rebuilt.file)).equals(reference));

      await fs.rm(path.join(path.dirname(first.file), 'manifest.json'));
      assert.equal((await openRecordCache(request(root, dtype, log))).filled, true);

      // Same folder and key, records of another shape: the manifest no longer describes them.
      const other = { ...request(root, dtype, log), shape: [1, elementsOf(dtype)] };
      const reshaped = await openRecordCache(other);
      assert.equal(reshaped.filled, true);
      assert.deepEqual(reshaped.manifest.shape, [1, elementsOf(dtype)]);
      assert.ok((await fs.readFile(reshaped.file)).equals(reference), 'same bytes, another shape');
      assert.deepEqual(log.starts, [0, 0, 0, 0]);
    });
  });
}

test('two concurrent opens of one entry fill it once', async () => {
  await withRoot(async (root) => {
    const log = newLog();
    const [a, b] = await Promise.all([openRecordCache(request(root, 'uint8', log)), openRecordCache(request(root, 'uint8', log))]);
    assert.deepEqual(log.starts, [0]);
    assert.deepEqual([a.filled, b.filled].sort(), [false, true]);
    assert.ok((await fs.readFile(a.file)).equals(await fs.readFile(b.file)));
    await assert.rejects(fs.stat(path.join(path.dirname(a.file), 'fill.lock')), 'the lock is released');
  });
});

test('shuffled passes: the same (seed, pass) order for both dtypes, records following their keys', async () => {
  await withRoot(async (root) => {
    const sets = await Promise.all(
      (['uint8', 'float32'] as const).map(async (dtype) => {
        const opened = await openRecordCache(request(root, dtype, newLog()));
        return {
          dtype,
          ds: new RecordDataset(opened.file, opened.manifest, { batchSize: 5, classNames: ['even', 'odd'], shuffleSeed: 42 }),
        };
      }),
    );
    /** Independent reference: mulberry32-driven Fisher-Yates, seeded with seed + pass. */
    const reference = (pass: number): string[] => {
      let a = (42 + pass) >>> 0;
      const rand = (): number => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
      const order = kept.map((i) => `k${i}`);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      return order;
    };
    const orders: string[][] = [];
    for (const pass of [0, 1]) {
      for (const { dtype, ds } of sets) {
        const batches = await collect(ds, { pass });
        const keys = batches.flatMap((b) => b.keys!);
        assert.deepEqual(keys, reference(pass), `${dtype} pass ${pass}`);
        const inputs = keys.map((k) => Number(k.slice(1)));
        assert.deepEqual(
          batches.flatMap((b) => Array.from(b.x)),
          inputs.flatMap((i) => expectedRecord(dtype, i)),
          `${dtype} records follow keys`,
        );
        assert.deepEqual(
          batches.flatMap((b) => Array.from(b.y)),
          inputs.map((i) => i % 2),
          `${dtype} labels follow keys`,
        );
        orders.push(keys);
      }
      const ordered = await collect(sets[0]!.ds, { pass, ordered: true });
      assert.deepEqual(
        ordered.flatMap((b) => b.keys!),
        kept.map((i) => `k${i}`),
        'ordered ignores the seed',
      );
    }
    assert.notDeepEqual(orders[0], orders[2], 'another pass, another order');
  });
});
