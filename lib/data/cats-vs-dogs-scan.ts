import path from 'node:path';
import { hasJfifMarker, JFIF_WINDOW } from './jfif.js';
import { mapPool } from './pool.js';
import type { ImageSource } from './source.js';
import { sortInTfdsOrder } from './tfds-order.js';

/** tfds cats_vs_dogs `_NAME_RE`. */
export const CATS_VS_DOGS_NAME_RE = /^PetImages[\\/](Cat|Dog)[\\/]\d+\.jpg$/;
export const CATS_VS_DOGS_CLASSES = ['cat', 'dog'] as const;

export interface CatsVsDogsExample {
  /** tfds key: the (normalised) archive entry name, e.g. `PetImages/Cat/0.jpg`. */
  key: string;
  /** name of the entry in its source (equal to key except for un-normalised zip names). */
  name: string;
  label: 0 | 1;
}

export interface CatsVsDogsScan {
  /** regular files seen (directories excluded). */
  files: number;
  skippedByName: number;
  skippedByJfif: number;
  /** kept examples in tfds order (after `limit`). */
  examples: CatsVsDogsExample[];
  /** examples before `limit`. */
  totalExamples: number;
}

/**
 * tfds `iter_archive` normalises zip member names and drops hidden, backup, absolute and
 * parent-relative ones (`_normpath`) before the dataset's own name rule sees them.
 */
export function tfdsNormpath(name: string): string | undefined {
  const p = path.posix.normalize(name);
  if (p.startsWith('.') || path.posix.isAbsolute(p) || p.endsWith('~') || path.posix.basename(p).startsWith('.')) return undefined;
  return p;
}

/** Applies the tfds cats_vs_dogs rules (name, JFIF, md5 order) to a source. Reads only 512 bytes per file. */
export async function scanCatsVsDogs(source: ImageSource, opts: { limit?: number } = {}): Promise<CatsVsDogsScan> {
  const entries = await source.entries();
  const candidates: CatsVsDogsExample[] = [];
  let skippedByName = 0;
  for (const e of entries) {
    const key = tfdsNormpath(e.name);
    const m = key === undefined ? null : CATS_VS_DOGS_NAME_RE.exec(key);
    if (!m || key === undefined) {
      skippedByName++;
      continue;
    }
    candidates.push({ key, name: e.name, label: m[1] === 'Cat' ? 0 : 1 });
  }
  const keep = await mapPool(candidates, 16, async (c) => {
    const head = await source.readHead(c.name, JFIF_WINDOW);
    return hasJfifMarker(head);
  });
  const kept = candidates.filter((_, i) => keep[i]);
  const ordered = sortInTfdsOrder(kept, (c) => c.key);
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1)) {
    throw new Error(`limit must be a positive integer (got ${opts.limit}).`);
  }
  return {
    files: entries.length,
    skippedByName,
    skippedByJfif: candidates.length - kept.length,
    examples: opts.limit === undefined ? ordered : ordered.slice(0, opts.limit),
    totalExamples: ordered.length,
  };
}
