import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DEFAULT_SEED } from '../config/defaults.js';
import { FolderSource } from './folder-source.js';
import {
  type DatasetInfo,
  DEFAULT_SPLITS,
  type IgnoredFolder,
  type OpenCommonOptions,
  type OpenedDatasets,
  openDecodedSplits,
  splitExamples,
  validateCommon,
} from './open-splits.js';
import { seededShuffle } from './prng.js';

/** Extensions accepted in class folders (case-insensitive). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.bmp', '.tif', '.tiff'];

export interface ImageFolderOptions extends OpenCommonOptions {
  /** `root/<class>/**\/*.{jpg,png,...}`; classes are the sorted sub-folder names. */
  root: string;
  /** seed of the shuffle that orders the files before splitting; default DEFAULT_SEED, as compare's. */
  seed?: number;
}

export interface ImageFolderExample {
  key: string;
  name: string;
  label: number;
}

/** A sub-folder that did not become a class, and why. */
/**
 * Lists `root/<class>/...` like Keras `image_dataset_from_directory`: classes are the sorted
 * sub-folder names, files found recursively inside each; then a seeded shuffle (mulberry32, not
 * numpy's generator, so the order differs from Keras but is the same on every run and platform).
 * Hidden folders (`.ipynb_checkpoints`, any dot-folder) and folders without images are not
 * classes: they would add output units, or make a one-class "binary" model look perfect.
 */
export async function scanImageFolder(
  root: string,
  seed = DEFAULT_SEED,
): Promise<{ classNames: string[]; files: number; ordered: ImageFolderExample[]; ignored: IgnoredFolder[] }> {
  const dir = path.resolve(root);
  const dirents = await fs.readdir(dir, { withFileTypes: true }).catch(() => {
    throw new Error(`Image folder not found: ${dir}. Expected ${dir}/<class name>/<images>.`);
  });
  const folders = dirents
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const ignored: IgnoredFolder[] = folders.filter((f) => f.startsWith('.')).map((folder) => ({ folder, reason: 'hidden' }));
  const source = new FolderSource(dir);
  const entries = await source.entries();
  const imagesOf = new Map<string, string[]>(folders.filter((f) => !f.startsWith('.')).map((f) => [f, []]));
  for (const e of entries) {
    const slash = e.name.indexOf('/');
    if (slash < 0) continue; // files directly in root belong to no class
    if (!IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) continue;
    imagesOf.get(e.name.slice(0, slash))?.push(e.name);
  }
  for (const [folder, images] of imagesOf) if (images.length === 0) ignored.push({ folder, reason: 'no image files' });
  const classNames = [...imagesOf.keys()].filter((f) => imagesOf.get(f)!.length > 0);
  if (classNames.length < 2) {
    const found = classNames.map((c) => `${c}/ (${imagesOf.get(c)!.length} images)`).join(', ') || 'none';
    throw new Error(
      `${dir} needs at least two class folders with images (${IMAGE_EXTENSIONS.join(', ')}); found ${classNames.length}: ${found}` +
        (ignored.length ? `; not classes: ${describeIgnored(ignored)}` : '') +
        `. Put the images of each class in its own sub-folder: ${dir}/<class name>/<images>.`,
    );
  }
  const examples: ImageFolderExample[] = classNames.flatMap((c, label) => imagesOf.get(c)!.map((name) => ({ key: name, name, label })));
  examples.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { classNames, files: entries.length, ordered: seededShuffle(examples, seed), ignored };
}

/** e.g. ".ipynb_checkpoints/ (hidden), empty/ (no image files)" */
export function describeIgnored(ignored: readonly IgnoredFolder[]): string {
  return ignored.map((i) => `${i.folder}/ (${i.reason})`).join(', ');
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
    ignoredFolders: scan.ignored,
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
