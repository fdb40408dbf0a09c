import { createHash } from 'node:crypto';
import { promises as fs, existsSync } from 'node:fs';
import path from 'node:path';
import type { Batch, Dataset } from '../data/types.js';
import type { Sequential } from '../models/sequential.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { ProgressBar } from '../util/progress-bar.js';
import { readExactly } from '../util/read-exactly.js';
import { passOrder } from '../data/prng.js';
import type { BatchOptions } from '../data/types.js';

/**
 * Features of a frozen base, computed once per image and kept on disk, so the head trains from
 * them: the experiment's 20 passes through VGG16 become one. Keyed by everything that changes the
 * features (weights, cut, input size, preprocessing, precision, the data); extraction writes to a
 * `.partial` file with a progress record, resumes after an interruption, and is renamed into place
 * only when complete, so a half-written file is never read as features.
 */
export interface FeatureKey {
  weightsId: string;
  outputLayer: string;
  inputShape: number[];
  preprocessing: string;
  bf16: boolean;
  /** identity of the images: source, size, file list (see datasetIdentity). */
  data: string;
}

interface FeatureManifest {
  key: FeatureKey;
  count: number;
  featureShape: number[];
  labels: number[];
  keys: string[];
  classNames: string[];
}

/** What identifies a dataset's content: its file list, plus the decoded cache file when there is one. */
export async function datasetIdentity(data: Dataset & { keys?: readonly string[]; pixelsPath?: string }): Promise<string> {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ size: data.size, shape: data.elementShape, classes: data.classNames }));
  if (data.keys) hash.update(data.keys.join('\n'));
  if (data.pixelsPath) {
    const stat = await fs.stat(data.pixelsPath);
    hash.update(`${data.pixelsPath}:${stat.size}:${stat.mtimeMs}`);
  }
  return hash.digest('hex');
}

export function featureKeyHash(key: FeatureKey): string {
  return createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 24);
}

/** Float32 features on disk, served in batches with positioned reads. */
export class FeatureDataset implements Dataset {
  readonly size: number;
  readonly elementShape: number[];
  readonly classNames: string[];
  readonly keys: readonly string[];
  private readonly elementFloats: number;

  constructor(readonly file: string, private readonly manifest: FeatureManifest, readonly batchSize: number, private readonly shuffleSeed?: number) {
    this.size = manifest.count;
    this.elementShape = manifest.featureShape;
    this.classNames = manifest.classNames;
    this.keys = manifest.keys;
    this.elementFloats = manifest.featureShape.reduce((a, b) => a * b, 1);
  }

  /** Same order as the images' dataset: split order, or shuffled by (seed, pass) like DecodedDataset. */
  batches(options: BatchOptions = {}): AsyncIterable<Batch> {
    return { [Symbol.asyncIterator]: () => this.iterate(options) };
  }

  private async *iterate(options: BatchOptions): AsyncGenerator<Batch> {
    const order = options.ordered ? undefined : passOrder(this.size, this.shuffleSeed, options.pass ?? 0);
    const bytesPer = this.elementFloats * 4;
    const handle = await fs.open(this.file, 'r');
    const what = `feature cache ${this.file}`;
    const readAt = (target: Uint8Array, offset: number, length: number, position: number) => readExactly(handle, target, offset, length, position, what);
    try {
      for (let start = 0; start < this.size; start += this.batchSize) {
        const n = Math.min(this.batchSize, this.size - start);
        const indices = Array.from({ length: n }, (_, i) => order ? order[start + i] : start + i);
        const x = new Float32Array(n * this.elementFloats);
        const bytes = new Uint8Array(x.buffer);
        if (order) await Promise.all(indices.map((index, i) => readAt(bytes, i * bytesPer, bytesPer, index * bytesPer)));
        else await readAt(bytes, 0, bytes.length, start * bytesPer);
        const y = Float32Array.from(indices.map((i) => this.manifest.labels[i]));
        yield { x, shape: [n, ...this.elementShape], y, keys: indices.map((i) => this.manifest.keys[i]) };
      }
    } finally {
      await handle.close();
    }
  }
}

export interface ExtractOptions {
  /** the base is layers [0, baseLayers) of `model`. */
  baseLayers: number;
  key: FeatureKey;
  cacheDir: string;
  label?: string;
  progress?: boolean;
  /** shuffle the features' passes like the images' dataset does (same seed, same order). */
  shuffleSeed?: number;
  /** stop after this many examples (tests use it to simulate an interruption). */
  stopAfter?: number;
}

/**
 * Returns the features of `data` through the frozen base of `model`, computing (or finishing) the
 * cache entry first when needed.
 */
export async function cachedFeatures(model: Sequential, data: Dataset, options: ExtractOptions): Promise<{ dataset: FeatureDataset; computed: number }> {
  const dir = path.join(options.cacheDir, 'features', featureKeyHash(options.key));
  const file = path.join(dir, 'features.f32');
  const manifestPath = path.join(dir, 'manifest.json');
  const featureShape = model.layers[options.baseLayers - 1].outputShape;
  const elementBytes = featureShape.reduce((a, b) => a * b, 1) * 4;
  if (existsSync(manifestPath) && existsSync(file)) {
    const manifest = JSON.parse(await fs.readFile(manifestPath, 'utf8')) as FeatureManifest;
    const stat = await fs.stat(file);
    if (JSON.stringify(manifest.key) === JSON.stringify(options.key) && stat.size === manifest.count * elementBytes) {
      return { dataset: new FeatureDataset(file, manifest, data.batchSize, options.shuffleSeed), computed: 0 };
    }
    await fs.rm(dir, { recursive: true, force: true }); // damaged or stale: rebuild
  }
  await fs.mkdir(dir, { recursive: true });
  const partial = `${file}.partial`;
  const progressPath = path.join(dir, 'progress.json');
  // Resume: keep the examples recorded as done, drop any bytes written after that record. The
  // record is just a count: labels and keys come again from the (ordered) batches passed over.
  let done = 0;
  if (existsSync(partial) && existsSync(progressPath)) {
    const saved = JSON.parse(await fs.readFile(progressPath, 'utf8')) as { done: number; key: FeatureKey };
    if (JSON.stringify(saved.key) === JSON.stringify(options.key)) done = saved.done;
  }
  const labels: number[] = [];
  const keys: string[] = [];
  const handle = await fs.open(partial, done > 0 ? 'r+' : 'w');
  let computed = 0;
  const bar = options.progress === false ? undefined : new ProgressBar({ label: options.label ?? 'features', total: data.size, unit: 'items', itemName: 'images', initial: done });
  try {
    await handle.truncate(done * elementBytes);
    let seen = 0;
    for await (const batch of data.batches({ ordered: true })) {
      const n = batch.shape[0];
      for (let i = 0; i < n; i++) {
        labels.push(batch.y[i]);
        keys.push(batch.keys?.[i] ?? String(seen + i));
      }
      if (seen + n <= done) { seen += n; continue; }
      const skip = Math.max(0, done - seen);
      const out = await model.predict(batch.x, batch.shape, { toLayer: options.baseLayers, bf16: options.key.bf16 });
      const bytes = new Uint8Array(out.output.buffer, out.output.byteOffset + skip * elementBytes, (n - skip) * elementBytes);
      await handle.write(bytes, 0, bytes.length, done * elementBytes);
      await handle.sync();
      done += n - skip;
      computed += n - skip;
      seen += n;
      await writeJsonAtomic(progressPath, { done, key: options.key });
      bar?.update(done);
      if (options.stopAfter !== undefined && computed >= options.stopAfter) {
        bar?.stop();
        throw new Error(`feature extraction stopped after ${computed} examples (stopAfter)`);
      }
    }
  } finally {
    await handle.close();
  }
  bar?.finish();
  const manifest: FeatureManifest = { key: options.key, count: done, featureShape, labels, keys, classNames: data.classNames };
  await fs.rename(partial, file);
  await writeJsonAtomic(manifestPath, manifest);
  await fs.rm(progressPath, { force: true });
  return { dataset: new FeatureDataset(file, manifest, data.batchSize, options.shuffleSeed), computed };
}
