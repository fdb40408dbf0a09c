import { promises as fs } from 'node:fs';
import { native } from '../engine/native.js';
import { passOrder } from './prng.js';
import { type RecordDtype, type RecordManifest, recordBytes } from './record-cache.js';
import { shardRange } from './shard.js';
import type { Batch, BatchOptions, Dataset, Shard } from './types.js';

/** native reads per batch: parallel enough to copy at the pool's speed, few enough to leave the engine's step a thread. */
const GATHER_PARTS = 2;

export interface RecordDatasetOptions {
  batchSize: number;
  classNames: string[];
  /** shuffle each pass with (seed, pass number); undefined keeps the input order (as the experiment). */
  shuffleSeed?: number;
  /** batches read ahead while the consumer works on the current one; default 2, 0 reads on demand. */
  prefetch?: number;
}

/**
 * The records of a complete cache entry (see record-cache.ts) as a Dataset. Batches are read with
 * positioned reads, so the records never have to fit in the JS heap (4,003 images at 300x300 are
 * 1.08 GB).
 */
export class RecordDataset implements Dataset {
  readonly size: number;
  readonly batchSize: number;
  readonly elementShape: number[];
  readonly classNames: string[];
  /** keys in input order (inputs left out removed). */
  readonly keys: readonly string[];
  readonly labels: readonly number[];
  /** with `shard`, only the shard's records are read (by index), not the whole global batch. */
  readonly readsShards = true;
  private readonly dtype: RecordDtype;
  private readonly elementBytes: number;
  private readonly prefetch: number;
  private readonly shuffleSeed?: number;

  constructor(
    readonly file: string,
    manifest: RecordManifest,
    opts: RecordDatasetOptions,
  ) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1)
      throw new Error(`batchSize must be a positive integer (got ${opts.batchSize}).`);
    this.size = manifest.count;
    this.batchSize = opts.batchSize;
    this.elementShape = manifest.shape;
    this.classNames = opts.classNames;
    this.keys = manifest.keys;
    this.labels = manifest.labels;
    this.dtype = manifest.dtype;
    this.elementBytes = recordBytes(manifest.dtype, manifest.shape);
    this.prefetch = Math.max(0, opts.prefetch ?? 2);
    this.shuffleSeed = opts.shuffleSeed;
  }

  batches(options: BatchOptions = {}): AsyncIterable<Batch> {
    return { [Symbol.asyncIterator]: () => this.iterate(options) };
  }

  private async *iterate(options: BatchOptions): AsyncGenerator<Batch> {
    const order = options.ordered ? undefined : passOrder(this.size, this.shuffleSeed, options.pass ?? 0);
    const handle = await fs.open(this.file, 'r');
    const { shard } = options;
    const inFlight: Promise<Batch>[] = [];
    let nextStart = 0;
    const launch = (depth: number): void => {
      while (inFlight.length < depth && nextStart < this.size) {
        const start = nextStart;
        nextStart = Math.min(this.size, start + this.batchSize);
        const p = shard ? this.readShard(handle, start, nextStart, shard, order) : this.readBatch(handle, start, nextStart, order);
        p.catch(() => {}); // surfaced when awaited; avoids an unhandled rejection if the consumer stops early
        inFlight.push(p);
      }
    };
    try {
      for (;;) {
        launch(1); // the batch asked for
        const next = inFlight.shift();
        if (!next) break;
        const batch = await next;
        launch(this.prefetch); // read ahead while the consumer works on this one
        yield batch;
      }
    } finally {
      await Promise.allSettled(inFlight);
      await handle.close();
    }
  }

  /** The shard's rows of the global batch [start, end): one (maybe empty) shard per global batch. */
  private async readShard(handle: fs.FileHandle, start: number, end: number, shard: Shard, order?: number[]): Promise<Batch> {
    const [from, to] = shardRange(end - start, shard.rank, shard.worldSize);
    const batch = await this.readBatch(handle, start + from, start + to, order);
    return { ...batch, shardOf: { start: from, size: end - start } };
  }

  private async readBatch(handle: fs.FileHandle, start: number, end: number, order?: number[]): Promise<Batch> {
    const n = end - start;
    const per = this.elementBytes;
    // every byte is read from the file before the batch is handed out (or the read fails)
    const memory = native().batchBuffer(n * per);
    const x = this.dtype === 'float32' ? new Float32Array(memory) : new Uint8Array(memory);
    const indices = Array.from({ length: n }, (_, i) => (order ? order[start + i]! : start + i));
    // a few native calls gather the batch off the JS thread (runs of adjacent records in one read);
    // parts read in parallel, since one pool thread alone copies slower than the pool does
    const offsets = Float64Array.from(indices, (i) => i * per);
    const partSize = Math.ceil(n / Math.min(n, GATHER_PARTS));
    const parts: Promise<void>[] = [];
    for (let from = 0; from < n; from += partSize) {
      const to = Math.min(n, from + partSize);
      const part = x.subarray((from * per) / x.BYTES_PER_ELEMENT, (to * per) / x.BYTES_PER_ELEMENT);
      parts.push(native().gatherRecords(handle.fd, offsets.subarray(from, to), per, part));
    }
    // every part settles before the batch fails: none may still read the fd when the file is closed,
    // and the first failing part in file order names the byte, whichever part failed first in time
    const failed = (await Promise.allSettled(parts)).find((r) => r.status === 'rejected');
    if (failed) {
      const error: unknown = failed.reason;
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`cache file ${this.file} ${reason}; delete it to rebuild it`, { cause: error });
    }
    return {
      x,
      shape: [n, ...this.elementShape],
      y: Float32Array.from(indices, (i) => this.labels[i]!),
      keys: indices.map((i) => this.keys[i]!),
    };
  }
}
