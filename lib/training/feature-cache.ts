import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { type CacheOrigin, entryDir, type FillStep, openRecordCache, type RecordCacheRequest } from '../data/record-cache.js';
import { RecordDataset } from '../data/record-dataset.js';
import { shardedBatches } from '../data/shard.js';
import type { Batch, BatchOptions, Dataset } from '../data/types.js';
import { allreduceSum, barrier, DataParallel, distributedInfo, isChief, type ProcessGroupInfo, shardRange } from '../distributed/index.js';
import type { ConvAlgorithm } from '../engine/native.js';
import type { Sequential } from '../models/sequential.js';

/**
 * Features of a frozen base, computed once per image and kept on disk as a record cache
 * (record-cache.ts: keyed, resumable, validated), so the head trains from them: the experiment's
 * 20 passes through VGG16 become one. Keyed by everything that changes the features (weights,
 * cut, input size, preprocessing, precision, the data).
 */
export interface FeatureKey {
  weightsId: string;
  outputLayer: string;
  inputShape: number[];
  preprocessing: string;
  /** the base computed in bfloat16 (its dtype policy is 'mixed_bfloat16'). */
  bf16: boolean;
  /**
   * float32 bases: the convolution algorithm (native().setConvAlgorithm) the features came from, as
   * Winograd and direct convolution differ in the last bits; absent for bfloat16 (always direct).
   */
  convolutions?: ConvAlgorithm;
  /** identity of the images: source, size, file list (see datasetIdentity). */
  data: string;
  /** features of augmented images: the model's augmentation layers, its seed, and which augmented pass. */
  augmentation?: { layers: unknown[]; seed: number; pass: number };
}

/** Float32 features on disk, served in batches in the images' order (split order, or shuffled by (seed, pass)). */
export { RecordDataset as FeatureDataset };

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

export interface ExtractOptions {
  /** the base is layers [0, baseLayers) of `model`. */
  baseLayers: number;
  key: FeatureKey;
  cacheDir: string;
  label?: string;
  progress?: boolean;
  /** shuffle the features' passes like the images' dataset does (same seed, same order). */
  shuffleSeed?: number;
}

/**
 * Returns the features of `data` through the frozen base of `model`, computing (or finishing) the
 * cache entry first when needed.
 */
export async function cachedFeatures(
  model: Sequential,
  data: Dataset,
  options: ExtractOptions,
): Promise<{ dataset: RecordDataset; computed: number }> {
  const request = (key: unknown, total: number, produce: RecordCacheRequest<never>['produce']): RecordCacheRequest<never> => ({
    dir: entryDir(options.cacheDir, 'features', key),
    fileName: 'features.f32',
    key,
    dtype: 'float32',
    shape: model.layers[options.baseLayers - 1].outputShape,
    total,
    produce,
    label: options.label ?? 'features',
    itemName: 'images',
    progress: isChief() ? options.progress : false,
    origin: () => featureOrigin(data, options.key),
  });
  const whole = request(options.key, data.size, (from) => featureSteps(model, data, options, from, data.size));
  const group = distributedInfo();
  const computed = group ? await extractAcrossRanks(model, data, options, whole, request, group) : 0;
  const opened = await openRecordCache<never>(whole);
  const dataset = new RecordDataset(opened.file, opened.manifest, {
    batchSize: data.batchSize,
    classNames: data.classNames,
    shuffleSeed: options.shuffleSeed,
  });
  return { dataset, computed: computed + opened.computed };
}

/** Features come from decoded images: stale once that decoded entry changed or was cleared. */
async function featureOrigin(data: Dataset & { pixelsPath?: string }, key: FeatureKey): Promise<CacheOrigin> {
  const st = data.pixelsPath ? await fs.stat(data.pixelsPath).catch(() => undefined) : undefined;
  return {
    source: data.pixelsPath ? path.dirname(data.pixelsPath) : 'images in memory',
    imageSize: [key.inputShape[0]!, key.inputShape[1]!],
    backbone: `${key.weightsId} to ${key.outputLayer}`,
    inputs: st && data.pixelsPath ? [{ path: data.pixelsPath, size: st.size, mtimeMs: st.mtimeMs }] : [],
  };
}

/**
 * Data-parallel extraction: rank r of W computes the examples [r*n/W, (r+1)*n/W) into a cache entry
 * of its own (no communication, resumable like any entry); once all are done, rank 0 concatenates
 * them into the entry one process would have written, which every rank then reads. Returns the
 * examples this rank computed.
 */
async function extractAcrossRanks(
  model: Sequential,
  data: Dataset,
  options: ExtractOptions,
  whole: RecordCacheRequest<never>,
  request: (key: unknown, total: number, produce: RecordCacheRequest<never>['produce']) => RecordCacheRequest<never>,
  group: ProcessGroupInfo,
): Promise<number> {
  // decided together, so no rank extracts while another already reads the finished entry; the
  // key's hash (three 20-bit parts, exact in float64 sums) shows whether all ranks share the entry
  const hash = createHash('sha256').update(JSON.stringify(options.key)).digest();
  const parts = [0, 3, 6].map((o) => hash.readUIntBE(o, 3) & 0xfffff);
  const [ready, ...sums] = await allreduceSum([existsSync(path.join(whole.dir, 'manifest.json')) ? 1 : 0, ...parts]);
  if (sums.some((sum, i) => sum !== parts[i]! * group.worldSize)) {
    process.emitWarning(
      `features cache: the ranks' keys for ${options.label ?? 'the features'} differ (other data, weights or settings on some rank), ` +
        'so each rank extracts all features itself. Give every rank the same data and options to split the extraction.',
      { code: 'TRANSFERLAB_DISTRIBUTED_CACHE' },
    );
    return 0;
  }
  if (ready === group.worldSize) return 0;
  // the base's weights as rank 0 has them, whatever each rank loaded or initialised
  await new DataParallel(group).broadcastWeights(model.engine);
  const partOf = (rank: number) => {
    const [start, end] = shardRange(data.size, rank, group.worldSize);
    const part = request({ ...options.key, part: [rank, group.worldSize] }, end - start, (from) =>
      featureSteps(model, data, options, start + from, end),
    );
    return { part, start, end };
  };
  const mine = await openRecordCache<never>(partOf(group.rank).part);
  await barrier();
  if (isChief()) {
    const parts = Array.from({ length: group.worldSize }, (_, r) => partOf(r).part);
    await openRecordCache<never>({ ...whole, produce: (from) => concatenated(parts, from) });
    for (const part of parts) await fs.rm(part.dir, { recursive: true, force: true });
  }
  await barrier();
  return mine.computed;
}

/** The records of the (complete) part entries in order, from record `from` of the whole on. */
async function* concatenated(parts: RecordCacheRequest<never>[], from: number): AsyncGenerator<FillStep<never>> {
  let seen = 0;
  for (const part of parts) {
    const opened = await openRecordCache<never>(part);
    const records = new RecordDataset(opened.file, opened.manifest, { batchSize: 256, classNames: [] });
    for await (const batch of records.batches({ ordered: true })) {
      const n = batch.shape[0]!;
      const skip = Math.max(0, from - seen);
      seen += n;
      if (skip >= n) continue;
      const perExample = batch.x.length / n;
      yield {
        records: { data: batch.x.subarray(skip * perExample), keys: batch.keys!.slice(skip), labels: Array.from(batch.y.subarray(skip)) },
      };
    }
  }
}

/** The base's output for the examples [from, end), a batch at a time, in split order. */
async function* featureSteps(
  model: Sequential,
  data: Dataset,
  options: ExtractOptions,
  from: number,
  end: number,
): AsyncGenerator<FillStep<never>> {
  let seen = 0;
  for await (const batch of data.batches({ ordered: true })) {
    if (seen >= end) break;
    const n = batch.shape[0];
    const skip = Math.max(0, from - seen);
    const take = Math.min(n, end - seen);
    if (skip < take) {
      const shape = [take - skip, ...batch.shape.slice(1)];
      const perInput = batch.x.length / n;
      const out = await model.predict(batch.x.subarray(skip * perInput, take * perInput), shape, {
        toLayer: options.baseLayers,
        augment: options.key.augmentation !== undefined,
      });
      const keys = Array.from({ length: take - skip }, (_, i) => batch.keys?.[skip + i] ?? String(seen + skip + i));
      yield { records: { data: out.output, keys, labels: Array.from(batch.y.subarray(skip, take)) } };
    }
    seen += n;
  }
}

/**
 * The features of K augmented passes, one per epoch in turn (epoch e reads pass e mod K): the
 * trade-off between a feature cache (fast, but of unaugmented images) and running the frozen base
 * on every augmented batch (new draws every epoch, a full pass of the base per epoch).
 */
export class CyclingDataset implements Dataset {
  readonly size: number;
  readonly batchSize: number;
  readonly elementShape: number[];
  readonly classNames: string[];
  /** each pass is read through shardedBatches, which slices the passes that cannot read shards themselves */
  readonly readsShards = true;
  constructor(private readonly passes: Dataset[]) {
    if (passes.length === 0) throw new Error('CyclingDataset needs at least one pass');
    ({ size: this.size, batchSize: this.batchSize, elementShape: this.elementShape, classNames: this.classNames } = passes[0]);
  }
  batches(options: BatchOptions = {}): AsyncIterable<Batch> {
    return shardedBatches(this.passes[(options.pass ?? 0) % this.passes.length]!, options);
  }
}
