import { resolveCacheDir } from '../util/cache-dir.js';
import type { ImageDecoder } from './decode.js';
import { type CacheItem, ensureDecodedCache } from './decoded-cache.js';
import { DecodedDataset } from './decoded-dataset.js';
import type { ImageSource, SourceRef } from './source.js';
import { resolveSplit } from './split.js';
import type { DatasetSummary } from './summary.js';

/** Options shared by every dataset opener. */
export interface OpenCommonOptions {
  /** [height, width] of the images after resizing (aspect ratio not kept). */
  imageSize: [number, number];
  batchSize: number;
  /** [training split, validation split], tfds syntax; default `train[:80%]`, `train[-20%:]`. */
  splits?: [string, string];
  /** keep only the first N examples of the ordered list, before splitting (quick runs). */
  limit?: number;
  /** root of the cache (see resolveCacheDir). */
  cacheDir?: string;
  /** shuffle the training split every pass with this seed; default: no shuffling (the experiment). */
  shuffleSeed?: number;
  /** progress bar on stderr while decoding; default true. */
  progress?: boolean;
  /** batches read ahead; default 2. */
  prefetch?: number;
  /** decodes in flight while building the cache; default max(2, CPU cores). */
  concurrency?: number;
  /** the decoder that fills the cache (e.g. one that counts or logs); default decodeImage. */
  decode?: ImageDecoder;
}

export const DEFAULT_SPLITS: [string, string] = ['train[:80%]', 'train[-20%:]'];

/** What is known about a dataset; fills the report's DatasetSummary (summary.ts). */
/** A folder beside the class folders that is not a class, and why. */
export interface IgnoredFolder {
  folder: string;
  reason: 'hidden' | 'no image files';
}

export interface DatasetInfo extends DatasetSummary {
  splitSpecs: [string, string];
  /** split sizes before decoding (the tfds figures); `splits` holds the same. */
  classCounts: { train: number[]; validation: number[] };
  /** first five keys of the ordered list and of each split. */
  firstKeys: string[];
  firstKeysBySplit: { train: string[]; validation: string[] };
  /** images in each Dataset (split size minus decode failures); undefined before decoding. */
  datasetSizes?: { train: number; validation: number };
  /** image folders only: sub-folders that are not classes (hidden, or without images). */
  ignoredFolders?: IgnoredFolder[];
  /** whether each split was decoded now or read from the cache. */
  cache?: { train: 'built' | 'hit'; validation: 'built' | 'hit'; dir: string };
}

export interface OpenedDatasets {
  train: DecodedDataset;
  validation: DecodedDataset;
  info: DatasetInfo;
}

export function validateCommon(opts: OpenCommonOptions): void {
  const [h, w] = opts.imageSize ?? [];
  for (const [name, v] of [
    ['imageSize height', h],
    ['imageSize width', w],
    ['batchSize', opts.batchSize],
  ] as const) {
    if (!Number.isInteger(v) || (v as number) < 1) throw new Error(`${name} must be a positive integer (got ${v}).`);
  }
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1)) {
    throw new Error(`limit must be a positive integer (got ${opts.limit}).`);
  }
}

/** Splits an ordered example list (decided before any decoding, so failures never shift it). */
export function splitExamples<T extends { label: number; key: string }>(
  ordered: readonly T[],
  specs: [string, string],
  classCount: number,
): { train: T[]; validation: T[]; counts: { train: number[]; validation: number[] } } {
  const [a, b] = specs.map((spec) => resolveSplit(spec, ordered.length)) as [
    { start: number; end: number },
    { start: number; end: number },
  ];
  // An example in both splits would be validated on after being trained on: the scores would lie.
  const shared = Math.min(a.end, b.end) - Math.max(a.start, b.start);
  if (shared > 0) {
    const range = (r: { start: number; end: number }) => `examples ${r.start}-${r.end - 1}`;
    throw new Error(
      `the splits "${specs[0]}" (${range(a)}) and "${specs[1]}" (${range(b)}) of ${ordered.length} examples overlap in ${shared} example(s): ` +
        'training and validation must not share examples. Give disjoint splits, e.g. "train[:80%],train[80%:]".',
    );
  }
  const train = ordered.slice(a.start, a.end);
  const validation = ordered.slice(b.start, b.end);
  const count = (xs: T[]): number[] => {
    const c = new Array<number>(classCount).fill(0);
    for (const x of xs) c[x.label]!++;
    return c;
  };
  return { train, validation, counts: { train: count(train), validation: count(validation) } };
}

/** Decodes (or reuses) both splits and wraps them as Datasets. */
export async function openDecodedSplits(
  source: ImageSource,
  datasetName: string,
  info: DatasetInfo,
  parts: { train: CacheItem[]; validation: CacheItem[] },
  opts: OpenCommonOptions,
): Promise<OpenedDatasets> {
  const cacheRoot = resolveCacheDir(opts.cacheDir);
  const [height, width] = opts.imageSize;
  const refs = new Map<string, SourceRef>();
  for (const item of [...parts.train, ...parts.validation]) refs.set(item.key, source.ref(item.name));
  const open = (items: CacheItem[], splitLabel: string) =>
    ensureDecodedCache({
      cacheRoot,
      datasetName,
      splitLabel,
      height,
      width,
      items,
      source,
      progress: opts.progress,
      concurrency: opts.concurrency,
      decode: opts.decode,
    });
  const trainCache = await open(parts.train, info.splitSpecs[0]);
  const validationCache = await open(parts.validation, info.splitSpecs[1]);
  const common = { batchSize: opts.batchSize, classNames: info.classNames, refs, prefetch: opts.prefetch };
  const train = new DecodedDataset(trainCache.pixelsPath, trainCache.manifest, { ...common, shuffleSeed: opts.shuffleSeed });
  const validation = new DecodedDataset(validationCache.pixelsPath, validationCache.manifest, common);
  return {
    train,
    validation,
    info: {
      ...info,
      decodeFailures: [...trainCache.manifest.skipped, ...validationCache.manifest.skipped].map(({ path, reason }) => ({ path, reason })),
      datasetSizes: { train: train.size, validation: validation.size },
      cache: { train: trainCache.built ? 'built' : 'hit', validation: validationCache.built ? 'built' : 'hit', dir: cacheRoot },
    },
  };
}
