import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Artifact } from '../net/artifacts.js';
import { partPath, stampPath } from '../net/download.js';
import { FILL_LOCK, isBeingFilled, LAST_USED, type RecordManifest, removeEntry } from './record-cache.js';

/**
 * What the cache folder holds, entry by entry, for `transferlab cache`: record caches (decoded
 * images, features: folders with a manifest) and downloads (a file with its `.part` and stamp).
 */
export interface CacheEntry {
  kind: string;
  /** the entry's folder, or for a download its file. */
  path: string;
  /** bytes of all its files. */
  bytes: number;
  source?: string;
  imageSize?: [number, number];
  backbone?: string;
  lastUsed: Date;
  /** `filling`: a live process holds its lock (never removed); `partial`: an interrupted fill or download. */
  state: 'ready' | 'filling' | 'partial';
  /** why the entry no longer matches what it was made from; undefined when it does or cannot be told. */
  stale?: string;
}

/** A download's `.part` written to this recently counts as in progress. */
const DOWNLOAD_ACTIVE_MS = 60_000;

/** `known`: the downloadable files, so that a download is listed with its source URL. */
export async function listCache(root: string, known: readonly Artifact[] = []): Promise<CacheEntry[]> {
  const entries: CacheEntry[] = [];
  for (const kind of await subfolders(root)) {
    if (kind === 'downloads') entries.push(...(await downloadEntries(path.join(root, kind), known)));
    else entries.push(...(await recordEntries(path.join(root, kind), kind)));
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Removes an entry; false when it is being filled (then it is kept whole). */
export async function removeCacheEntry(entry: CacheEntry): Promise<boolean> {
  if (entry.kind !== 'downloads') return removeEntry(entry.path);
  if (entry.state === 'filling') return false;
  for (const file of [stampPath(entry.path), entry.path, partPath(entry.path)]) await fs.rm(file, { force: true });
  return true;
}

async function subfolders(dir: string): Promise<string[]> {
  const dirents = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  return dirents.filter((d) => d.isDirectory()).map((d) => d.name);
}

/** Folders under `dir` (at any depth) that hold a record cache's files. */
async function recordEntries(dir: string, kind: string): Promise<CacheEntry[]> {
  const names = (await fs.readdir(dir).catch(() => [])) as string[];
  const isEntry = names.some((n) => n === 'manifest.json' || n === 'progress.json' || n === FILL_LOCK || n.endsWith('.partial'));
  if (isEntry) return [await recordEntry(dir, kind, names)];
  const found: CacheEntry[] = [];
  for (const sub of await subfolders(dir)) found.push(...(await recordEntries(path.join(dir, sub), kind)));
  return found;
}

async function recordEntry(dir: string, kind: string, names: string[]): Promise<CacheEntry> {
  const stats = await Promise.all(names.map((n) => fs.stat(path.join(dir, n)).catch(() => undefined)));
  const bytes = stats.reduce((sum, st) => sum + (st?.isFile() ? st.size : 0), 0);
  const used = stats[names.indexOf(LAST_USED)] ?? stats[names.indexOf('manifest.json')];
  const lastUsed = new Date(used?.mtimeMs ?? Math.max(0, ...stats.map((st) => st?.mtimeMs ?? 0)));
  const manifest = await readManifest(path.join(dir, 'manifest.json'));
  const origin = manifest?.origin;
  const state = (await isBeingFilled(dir)) ? 'filling' : manifest ? 'ready' : 'partial';
  return {
    kind,
    path: dir,
    bytes,
    source: origin?.source,
    imageSize: origin?.imageSize,
    backbone: origin?.backbone,
    lastUsed,
    state,
    stale: origin && state === 'ready' ? await staleReason(origin.inputs) : undefined,
  };
}

async function readManifest(file: string): Promise<RecordManifest | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as RecordManifest;
  } catch {
    return undefined;
  }
}

/** The first recorded input that vanished or changed since the entry was made. */
async function staleReason(inputs: NonNullable<RecordManifest['origin']>['inputs']): Promise<string | undefined> {
  for (const input of inputs) {
    const st = await fs.stat(input.path).catch(() => undefined);
    if (!st) return `${input.path} is gone`;
    if (st.size !== input.size || st.mtimeMs !== input.mtimeMs) return `${input.path} changed`;
  }
  return undefined;
}

/** One entry per downloaded file, with its `.part` and verification stamp. */
async function downloadEntries(dir: string, known: readonly Artifact[]): Promise<CacheEntry[]> {
  const names = ((await fs.readdir(dir).catch(() => [])) as string[]).filter((n) => !n.startsWith('.'));
  const bases = new Set(names.map((n) => n.replace(/\.part$/, '').replace(/\.verified\.json$/, '')));
  const out: CacheEntry[] = [];
  for (const base of bases) {
    const file = path.join(dir, base);
    const [main, part, stamp] = await Promise.all([file, partPath(file), stampPath(file)].map((f) => fs.stat(f).catch(() => undefined)));
    const present = [main, part, stamp].filter((st) => st !== undefined);
    const artifact = known.find((a) => a.fileName === base);
    out.push({
      kind: 'downloads',
      path: file,
      bytes: present.reduce((sum, st) => sum + st.size, 0),
      source: artifact ? `${artifact.urls[0]}` : undefined,
      lastUsed: new Date(Math.max(...present.map((st) => st.mtimeMs))),
      state: main ? 'ready' : part && Date.now() - part.mtimeMs < DOWNLOAD_ACTIVE_MS ? 'filling' : 'partial',
    });
  }
  return out;
}
