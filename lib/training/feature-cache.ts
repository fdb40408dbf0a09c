import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { type CacheOrigin, entryDir, type FillStep, openRecordCache } from '../data/record-cache.js';
import { RecordDataset } from '../data/record-dataset.js';
import type { Batch, BatchOptions, Dataset } from '../data/types.js';
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
  const opened = await openRecordCache<never>({
    dir: entryDir(options.cacheDir, 'features', options.key),
    fileName: 'features.f32',
    key: options.key,
    dtype: 'float32',
    shape: model.layers[options.baseLayers - 1].outputShape,
    total: data.size,
    produce: (from) => featureSteps(model, data, options, from),
    label: options.label ?? 'features',
    itemName: 'images',
    progress: options.progress,
    origin: () => featureOrigin(data, options.key),
  });
  const dataset = new RecordDataset(opened.file, opened.manifest, {
    batchSize: data.batchSize,
    classNames: data.classNames,
    shuffleSeed: options.shuffleSeed,
  });
  return { dataset, computed: opened.computed };
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

/** The base's output for the examples from `from` on, a batch at a time, in split order. */
async function* featureSteps(model: Sequential, data: Dataset, options: ExtractOptions, from: number): AsyncGenerator<FillStep<never>> {
  let seen = 0;
  for await (const batch of data.batches({ ordered: true })) {
    const n = batch.shape[0];
    const skip = Math.max(0, from - seen);
    if (skip < n) {
      const out = await model.predict(batch.x, batch.shape, {
        toLayer: options.baseLayers,
        augment: options.key.augmentation !== undefined,
      });
      const perExample = out.output.length / n;
      const keys = Array.from({ length: n - skip }, (_, i) => batch.keys?.[skip + i] ?? String(seen + skip + i));
      yield { records: { data: out.output.subarray(skip * perExample), keys, labels: Array.from(batch.y.subarray(skip)) } };
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
  constructor(private readonly passes: Dataset[]) {
    if (passes.length === 0) throw new Error('CyclingDataset needs at least one pass');
    ({ size: this.size, batchSize: this.batchSize, elementShape: this.elementShape, classNames: this.classNames } = passes[0]);
  }
  batches(options: BatchOptions = {}): AsyncIterable<Batch> {
    return this.passes[(options.pass ?? 0) % this.passes.length].batches(options);
  }
}
