import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CATS_VS_DOGS_CLASSES, scanCatsVsDogs } from './cats-vs-dogs-scan.js';
import { FolderSource } from './folder-source.js';
import {
  type DatasetInfo,
  DEFAULT_SPLITS,
  type OpenCommonOptions,
  type OpenedDatasets,
  openDecodedSplits,
  splitExamples,
  validateCommon,
} from './open-splits.js';
import type { ImageSource } from './source.js';
import { ZipSource } from './zip-source.js';

export const CATS_VS_DOGS_ARCHIVE_NAME = 'kagglecatsanddogs_5340.zip';

/** Where cats_vs_dogs comes from: exactly one of the two. */
export interface CatsVsDogsSourceOptions {
  /** the extracted `PetImages` folder, or the folder that contains it. */
  dataDir?: string;
  /** `kagglecatsanddogs_5340.zip`, read in place. */
  archive?: string;
}

export interface CatsVsDogsOptions extends CatsVsDogsSourceOptions, OpenCommonOptions {}

export type CatsVsDogsInfo = DatasetInfo;

/** Opens the source named by the options; no fallback from one kind to the other. */
export async function openCatsVsDogsSource(opts: CatsVsDogsSourceOptions): Promise<ImageSource> {
  if (opts.dataDir && opts.archive) throw new Error('Give either dataDir (an extracted PetImages folder) or archive (the zip), not both.');
  if (opts.archive) return new ZipSource(opts.archive);
  if (!opts.dataDir) {
    throw new Error(
      `No cats_vs_dogs source: give dataDir (the extracted PetImages folder or its parent) or archive (${CATS_VS_DOGS_ARCHIVE_NAME}).`,
    );
  }
  const dir = path.resolve(opts.dataDir);
  const isDir = async (p: string) => (await fs.stat(p).catch(() => undefined))?.isDirectory() === true;
  if (!(await isDir(dir))) throw new Error(`Data folder not found: ${dir}. Give the extracted PetImages folder or its parent.`);
  if (await isDir(path.join(dir, 'PetImages'))) return new FolderSource(path.join(dir, 'PetImages'), 'PetImages');
  if ((await isDir(path.join(dir, 'Cat'))) || (await isDir(path.join(dir, 'Dog')))) return new FolderSource(dir, 'PetImages');
  throw new Error(`${dir} is neither a PetImages folder (with Cat/ and Dog/) nor a folder containing PetImages/.`);
}

/** The tfds figures (files, skips, split sizes, class balance, first keys) without decoding any image. */
export async function inspectCatsVsDogs(opts: CatsVsDogsSourceOptions & { splits?: [string, string]; limit?: number }): Promise<{
  info: CatsVsDogsInfo;
  parts: ReturnType<typeof splitExamples<import('./cats-vs-dogs-scan.js').CatsVsDogsExample>>;
  source: ImageSource;
}> {
  const source = await openCatsVsDogsSource(opts);
  try {
    const scan = await scanCatsVsDogs(source, { limit: opts.limit });
    const splitSpecs = opts.splits ?? DEFAULT_SPLITS;
    const parts = splitExamples(scan.examples, splitSpecs, 2);
    const info: CatsVsDogsInfo = {
      name: 'cats_vs_dogs',
      source: source.description,
      files: scan.files,
      skippedByName: scan.skippedByName,
      skippedByJfif: scan.skippedByJfif,
      examples: scan.examples.length,
      splits: { train: parts.train.length, validation: parts.validation.length },
      splitSpecs,
      classNames: [...CATS_VS_DOGS_CLASSES],
      classCounts: parts.counts,
      decodeFailures: [],
      firstKeys: scan.examples.slice(0, 5).map((e) => e.key),
      firstKeysBySplit: { train: parts.train.slice(0, 5).map((e) => e.key), validation: parts.validation.slice(0, 5).map((e) => e.key) },
    };
    return { info, parts, source };
  } catch (error) {
    await source.close();
    throw error;
  }
}

/**
 * cats_vs_dogs exactly as tfds 4.0.1 builds it (name rule, JFIF rule, md5 order, split rounding),
 * decoded and resized like `tf.image.resize` into an on-disk cache, as two Datasets.
 */
export async function openCatsVsDogs(opts: CatsVsDogsOptions): Promise<OpenedDatasets> {
  validateCommon(opts);
  const { info, parts, source } = await inspectCatsVsDogs(opts);
  try {
    return await openDecodedSplits(source, 'cats_vs_dogs', info, parts, opts);
  } finally {
    // Datasets read only the cache; thumbnails reopen the source by reference.
    await source.close();
  }
}
