import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FolderSource } from './folder-source.js';
import { DEFAULT_SPLITS, openDecodedSplits, splitExamples, validateCommon, type DatasetInfo, type OpenCommonOptions, type OpenedDatasets } from './open-splits.js';
import { seededShuffle } from './prng.js';

/** Extensions accepted in class folders (case-insensitive). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.bmp', '.tif', '.tiff'];
export const DEFAULT_FOLDER_SEED = 1337;

export interface ImageFolderOptions extends OpenCommonOptions {
  /** `root/<class>/**\/*.{jpg,png,...}`; classes are the sorted sub-folder names. */
  root: string;
  /** seed of the shuffle that orders the files before splitting; default 1337. */
  seed?: number;
}

export interface ImageFolderExample {
  key: string;
  name: string;
  label: number;
}

/**
 * Lists `root/<class>/...` like Keras `image_dataset_from_directory`: classes are the sorted
 * sub-folder names, files found recursively inside each; then a seeded shuffle (mulberry32, not
 * numpy's generator, so the order differs from Keras but is the same on every run and platform).
 */
export async function scanImageFolder(root: string, seed = DEFAULT_FOLDER_SEED): Promise<{ classNames: string[]; files: number; ordered: ImageFolderExample[] }> {
  const dir = path.resolve(root);
  const dirents = await fs.readdir(dir, { withFileTypes: true }).catch(() => {
    throw new Error(`Image folder not found: ${dir}. Expected ${dir}/<class name>/<images>.`);
  });
  const classNames = dirents
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  if (classNames.length < 2) {
    throw new Error(`${dir} has ${classNames.length} class folder(s); put the images of each class in its own sub-folder (at least two).`);
  }
  const source = new FolderSource(dir);
  const entries = await source.entries();
  const classIndex = new Map(classNames.map((c, i) => [c, i]));
  const examples: ImageFolderExample[] = [];
  for (const e of entries) {
    const slash = e.name.indexOf('/');
    if (slash < 0) continue; // files directly in root belong to no class
    const label = classIndex.get(e.name.slice(0, slash));
    if (label === undefined) continue;
    if (!IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) continue;
    examples.push({ key: e.name, name: e.name, label });
  }
  if (examples.length === 0) throw new Error(`No images (${IMAGE_EXTENSIONS.join(', ')}) under ${dir}/<class>/.`);
  examples.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { classNames, files: entries.length, ordered: seededShuffle(examples, seed) };
}

export async function inspectImageFolder(opts: { root: string; seed?: number; splits?: [string, string]; limit?: number }) {
  const scan = await scanImageFolder(opts.root, opts.seed);
  const ordered = opts.limit === undefined ? scan.ordered : scan.ordered.slice(0, opts.limit);
  const splitSpecs = opts.splits ?? DEFAULT_SPLITS;
  const parts = splitExamples(ordered, splitSpecs, scan.classNames.length);
  const info: DatasetInfo = {
    name: `image folder ${path.basename(path.resolve(opts.root))}`,
    source: path.resolve(opts.root),
    files: scan.files,
    skippedByName: scan.files - scan.ordered.length,
    skippedByJfif: 0,
    examples: ordered.length,
    splits: { train: parts.train.length, validation: parts.validation.length },
    splitSpecs,
    classNames: scan.classNames,
    classCounts: parts.counts,
    decodeFailures: [],
    firstKeys: ordered.slice(0, 5).map((e) => e.key),
    firstKeysBySplit: { train: parts.train.slice(0, 5).map((e) => e.key), validation: parts.validation.slice(0, 5).map((e) => e.key) },
  };
  return { info, parts };
}

/** Any `root/<class>/*` image folder (binary or multi-class) as two Datasets; labels are class indices. */
export async function openImageFolder(opts: ImageFolderOptions): Promise<OpenedDatasets> {
  validateCommon(opts);
  const { info, parts } = await inspectImageFolder(opts);
  const source = new FolderSource(path.resolve(opts.root));
  await source.entries();
  const name = `folder-${path.basename(path.resolve(opts.root))}`;
  return openDecodedSplits(source, name, info, parts, opts);
}
