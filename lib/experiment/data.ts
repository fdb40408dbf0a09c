import path from 'node:path';
import { CATS_VS_DOGS_ARCHIVE } from '../data/cats-vs-dogs-archive.js';
import type { CacheItem } from '../data/decoded-cache.js';
import { FolderSource } from '../data/folder-source.js';
import { inspectCatsVsDogs, inspectImageFolder, type OpenedDatasets } from '../data/index.js';
import { type DatasetInfo, openDecodedSplits, validateCommon } from '../data/open-splits.js';
import type { ImageSource } from '../data/source.js';
import { artifactPath, fetchArtifact, locateArtifact } from '../net/artifacts.js';
import type { CompareConfig } from './config.js';

/** The run's data listed and split, nothing decoded yet: what preflight checks. */
export interface InspectedData {
  datasetName: string;
  /** what the user gave (folder, archive), for the report. */
  source: string;
  /** names the decoded cache's folder. */
  cacheName: string;
  info: DatasetInfo;
  parts: { train: CacheItem[]; validation: CacheItem[] };
  /** open until `decodeExperimentData` (or `close`). */
  imageSource: ImageSource;
}

export type ExperimentData = OpenedDatasets & { datasetName: string; source: string };

/**
 * Lists the run's data: an image folder, or cats_vs_dogs from a folder, the archive, or (when
 * allowed) a download of the archive. No silent fallback from one source to another.
 */
export async function inspectExperimentData(config: CompareConfig): Promise<InspectedData> {
  validateCommon({ imageSize: config.imageSize, batchSize: config.batchSize, limit: config.limit });
  if (config.imageFolder) {
    const root = path.resolve(config.imageFolder);
    const { info, parts } = await inspectImageFolder({ root, seed: config.seed, splits: config.splits, limit: config.limit });
    const imageSource = new FolderSource(root);
    await imageSource.entries();
    return {
      datasetName: 'image folder',
      source: config.imageFolder,
      cacheName: `folder-${path.basename(root)}`,
      info,
      parts,
      imageSource,
    };
  }
  const archive = config.dataDir || config.archive ? config.archive : await defaultArchive(config);
  const { info, parts, source } = await inspectCatsVsDogs({ dataDir: config.dataDir, archive, splits: config.splits, limit: config.limit });
  return { datasetName: 'cats_vs_dogs', source: config.dataDir ?? archive!, cacheName: 'cats_vs_dogs', info, parts, imageSource: source };
}

/** The cached (or, when allowed, downloaded) cats_vs_dogs archive. */
async function defaultArchive(config: CompareConfig): Promise<string> {
  const found = await locateArtifact(CATS_VS_DOGS_ARCHIVE, config.cacheDir);
  if (found) return found;
  if (!config.download) {
    throw new Error(
      `no data source: pass --data-dir (an extracted PetImages folder), --archive (kagglecatsanddogs_5340.zip) or ` +
        `--image-folder, or allow the download (the archive goes to ${artifactPath(CATS_VS_DOGS_ARCHIVE, config.cacheDir)}).`,
    );
  }
  try {
    return await fetchArtifact(CATS_VS_DOGS_ARCHIVE, { cacheDir: config.cacheDir });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(
      `${message}\nOr give the data you have: --data-dir PATH (extracted PetImages), --archive PATH (the zip) or --image-folder PATH.`,
      { cause: error },
    );
  }
}

/** Decodes (or reuses) both splits into the cache and closes the source. */
export async function decodeExperimentData(data: InspectedData, config: CompareConfig): Promise<ExperimentData> {
  try {
    const opened = await openDecodedSplits(data.imageSource, data.cacheName, data.info, data.parts, {
      imageSize: config.imageSize,
      batchSize: config.batchSize,
      cacheDir: config.cacheDir,
      shuffleSeed: config.shuffleSeed,
    });
    return { ...opened, datasetName: data.datasetName, source: data.source };
  } finally {
    // Datasets read only the cache; thumbnails reopen the source by reference.
    await data.imageSource.close();
  }
}
