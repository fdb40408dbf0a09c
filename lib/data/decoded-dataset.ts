import { promises as fs } from 'node:fs';
import type { Batch, BatchOptions, Dataset } from './types.js';
import type { CacheManifest } from './decoded-cache.js';
import { passOrder } from './prng.js';
import { readExactly } from '../util/read-exactly.js';
import type { SourceRef } from './source.js';

export interface DecodedDatasetOptions {
  batchSize: number;
  classNames: string[];
  /** source of each example, by key (for thumbnails and reports). */
  refs: ReadonlyMap<string, SourceRef>;
  /** shuffle each pass with (seed, pass number); undefined keeps the split order (as the experiment). */
  shuffleSeed?: number;
  /** batches read ahead while the consumer works on the current one. */
  prefetch?: number;
}

/**
 * A split decoded into the on-disk cache. Batches are read with positioned reads, so the split
 * never has to fit in the JS heap (4,003 images at 300x300 are 1.08 GB).
 */
export class DecodedDataset implements Dataset {
  readonly size: number;
  readonly batchSize: number;
  readonly elementShape: number[];
  readonly classNames: string[];
  /** keys in split order (failed decodes removed). */
  readonly keys: readonly string[];
  readonly labels: readonly number[];
  private readonly elementBytes: number;
  private readonly prefetch: number;

  constructor(
    readonly pixelsPath: string,
    manifest: CacheManifest,
    private readonly opts: DecodedDatasetOptions,
  ) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new Error(`batchSize must be a positive integer (got ${opts.batchSize}).`);
    this.size = manifest.count;
    this.batchSize = opts.batchSize;
    this.elementShape = [manifest.height, manifest.width, 3];
    this.elementBytes = manifest.height * manifest.width * 3;
    this.classNames = opts.classNames;
    this.keys = manifest.keys;
    this.labels = manifest.labels;
    this.prefetch = Math.max(1, opts.prefetch ?? 2);
  }

  /** Where the image with this key was read from, for thumbnails (`thumbnailJpeg(ref, size)`). */
  sourceRef(key: string): SourceRef | undefined {
    return this.opts.refs.get(key);
  }

  batches(options: BatchOptions = {}): AsyncIterable<Batch> {
    return { [Symbol.asyncIterator]: () => this.iterate(options) };
  }

  private async *iterate(options: BatchOptions): AsyncGenerator<Batch> {
    const order = options.ordered ? undefined : passOrder(this.size, this.opts.shuffleSeed, options.pass ?? 0);
    const handle = await fs.open(this.pixelsPath, 'r');
    const inFlight: Promise<Batch>[] = [];
    let nextStart = 0;
    const launch = (): void => {
      while (inFlight.length < this.prefetch && nextStart < this.size) {
        const start = nextStart;
        nextStart = Math.min(this.size, start + this.batchSize);
        const p = this.readBatch(handle, start, nextStart, order);
        p.catch(() => {}); // surfaced when awaited; avoids an unhandled rejection if the consumer stops early
        inFlight.push(p);
      }
    };
    try {
      launch();
      while (inFlight.length > 0) {
        const batch = await inFlight.shift()!;
        launch();
        yield batch;
      }
    } finally {
      await Promise.allSettled(inFlight);
      await handle.close();
    }
  }

  private async readBatch(handle: fs.FileHandle, start: number, end: number, order?: number[]): Promise<Batch> {
    const n = end - start;
    const x = new Uint8Array(n * this.elementBytes);
    const y = new Float32Array(n);
    const keys: string[] = new Array(n);
    if (!order) {
      await readExactly(handle, x, 0, x.length, start * this.elementBytes, `decoded-image cache ${this.pixelsPath}`);
      for (let i = 0; i < n; i++) {
        y[i] = this.labels[start + i]!;
        keys[i] = this.keys[start + i]!;
      }
    } else {
      await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const index = order[start + i]!;
          y[i] = this.labels[index]!;
          keys[i] = this.keys[index]!;
          await readExactly(handle, x, i * this.elementBytes, this.elementBytes, index * this.elementBytes, `decoded-image cache ${this.pixelsPath}`);
        }),
      );
    }
    return { x, shape: [n, ...this.elementShape], y, keys };
  }
}

