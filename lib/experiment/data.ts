import { openCatsVsDogs, openImageFolder, type OpenedDatasets } from '../data/index.js';
import { fetchArtifact, locateArtifact, artifactPath } from '../net/artifacts.js';
import type { CompareConfig } from './config.js';

/**
 * The run's data: an image folder, or cats_vs_dogs from a folder, the archive, or (when allowed)
 * a download of the archive. No silent fallback from one source to another.
 */
export async function openExperimentData(config: CompareConfig): Promise<OpenedDatasets & { datasetName: string; source: string }> {
  const common = {
    imageSize: config.imageSize, batchSize: config.batchSize, splits: config.splits, limit: config.limit,
    cacheDir: config.cacheDir, shuffleSeed: config.shuffleSeed,
  };
  if (config.imageFolder) {
    const opened = await openImageFolder({ root: config.imageFolder, seed: config.seed, ...common });
    return { ...opened, datasetName: 'image folder', source: config.imageFolder };
  }
  if (config.dataDir || config.archive) {
    const opened = await openCatsVsDogs({ dataDir: config.dataDir, archive: config.archive, ...common });
    return { ...opened, datasetName: 'cats_vs_dogs', source: config.dataDir ?? config.archive! };
  }
  let archive = await locateArtifact('cats_vs_dogs', config.cacheDir);
  if (!archive) {
    if (!config.download) {
      throw new Error(
        `no data source: pass --data-dir (an extracted PetImages folder), --archive (kagglecatsanddogs_5340.zip) or ` +
          `--image-folder, or allow the download (the archive goes to ${artifactPath('cats_vs_dogs', config.cacheDir)}).`,
      );
    }
    try {
      archive = await fetchArtifact('cats_vs_dogs', { cacheDir: config.cacheDir });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`${message}\nOr give the data you have: --data-dir PATH (extracted PetImages), --archive PATH (the zip) or --image-folder PATH.`, { cause: error });
    }
  }
  const opened = await openCatsVsDogs({ archive, ...common });
  return { ...opened, datasetName: 'cats_vs_dogs', source: archive };
}
