import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { temporarySibling, writeJsonAtomic } from '../util/atomic.js';
import { decodeImage, DecodeError } from './decode.js';
import { mapPool } from './pool.js';
import { ProgressBar } from '../util/progress-bar.js';
import { describeSourceRef, type ImageSource } from './source.js';

/**
 * On-disk cache of one split decoded and resized: `pixels.u8` holds the images back to back
 * (uint8 HWC, in split order, failures left out) and `manifest.json`, written last, lists them.
 * A cache without a manifest, or whose pixel file is not exactly the recorded length, is an
 * interrupted or damaged build: it is rebuilt, never read.
 */
export const CACHE_FORMAT = 'transferlab-decoded-v1';
/** Bump when decoding or resizing changes, so old caches are not reused. */
const PIXEL_PIPELINE = 'tf-bilinear-half-pixel;sharp-0.35;rgb-uchar;jpeg-eoi-check';

export interface CacheItem {
  key: string;
  /** entry name in the source. */
  name: string;
  label: number;
}

export interface DecodeFailure {
  key: string;
  /** file path or `archive.zip:entry`. */
  path: string;
  reason: string;
}

export interface CacheManifest {
  format: string;
  identity: string;
  height: number;
  width: number;
  /** images stored (items minus failures), in order. */
  count: number;
  bytes: number;
  sha256: string;
  keys: string[];
  labels: number[];
  failures: DecodeFailure[];
  createdAt: string;
}

export interface CacheRequest {
  cacheRoot: string;
  /** e.g. `cats_vs_dogs`; names the folder. */
  datasetName: string;
  /** e.g. `train[:80%]`; names the folder. */
  splitLabel: string;
  height: number;
  width: number;
  items: readonly CacheItem[];
  source: ImageSource;
  progress?: boolean;
  /** decodes in flight (sharp runs them on libuv's threadpool). */
  concurrency?: number;
}

export interface OpenedCache {
  pixelsPath: string;
  manifest: CacheManifest;
  /** whether this call decoded the images (false: read from an earlier run). */
  built: boolean;
}

/** Returns a complete cache for the request, building it (with a progress bar) when needed. */
export async function ensureDecodedCache(req: CacheRequest): Promise<OpenedCache> {
  const identity = await cacheIdentity(req);
  const slug = `${req.splitLabel.replace(/[^A-Za-z0-9%._-]+/g, '_')}-${req.height}x${req.width}-${identity.slice(0, 16)}`;
  const dir = path.join(req.cacheRoot, 'decoded', req.datasetName.replace(/[^A-Za-z0-9._-]+/g, '_'), slug);
  const pixelsPath = path.join(dir, 'pixels.u8');
  const manifestPath = path.join(dir, 'manifest.json');
  const existing = await readValidManifest(manifestPath, pixelsPath, identity);
  if (existing) return { pixelsPath, manifest: existing, built: false };
  await fs.mkdir(dir, { recursive: true });
  // A stale manifest must never describe the new pixel file, even for a moment.
  await fs.rm(manifestPath, { force: true });
  await removeOrphanTemporaries(dir);
  const manifest = await buildPixels(req, pixelsPath, identity);
  await writeJsonAtomic(manifestPath, manifest);
  return { pixelsPath, manifest, built: true };
}

async function cacheIdentity(req: CacheRequest): Promise<string> {
  const ids = await mapPool(req.items, 32, (item) => req.source.identity(item.name));
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ CACHE_FORMAT, PIXEL_PIPELINE, h: req.height, w: req.width, source: req.source.description }));
  req.items.forEach((item, i) => hash.update(`\n${item.key}\t${item.label}\t${ids[i]}`));
  return hash.digest('hex');
}

async function readValidManifest(manifestPath: string, pixelsPath: string, identity: string): Promise<CacheManifest | undefined> {
  try {
    const manifest = JSON.parse(await fs.readFile(manifestPath, 'utf8')) as CacheManifest;
    if (manifest.format !== CACHE_FORMAT || manifest.identity !== identity) return undefined;
    const st = await fs.stat(pixelsPath);
    if (st.size !== manifest.bytes || manifest.bytes !== manifest.count * manifest.height * manifest.width * 3) return undefined;
    if (manifest.keys.length !== manifest.count || manifest.labels.length !== manifest.count) return undefined;
    return manifest;
  } catch {
    return undefined;
  }
}

/** Temporaries left by killed builds (their pid no longer runs). */
async function removeOrphanTemporaries(dir: string): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    const m = /^\..*\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = pid === process.pid;
    if (!alive) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (error) {
        alive = (error as NodeJS.ErrnoException).code === 'EPERM';
      }
    }
    if (!alive) await fs.rm(path.join(dir, name), { force: true });
  }
}

async function buildPixels(req: CacheRequest, pixelsPath: string, identity: string): Promise<CacheManifest> {
  const tmp = temporarySibling(pixelsPath);
  const handle = await fs.open(tmp, 'w');
  const hash = createHash('sha256');
  const keys: string[] = [];
  const labels: number[] = [];
  const failures: DecodeFailure[] = [];
  let bytes = 0;
  const progress = req.progress === false || req.items.length === 0 ? undefined
    : new ProgressBar({ label: `decoding ${req.datasetName} ${req.splitLabel} to ${req.height}x${req.width}`, total: req.items.length, itemName: 'images' });
  const concurrency = req.concurrency ?? Math.max(2, os.availableParallelism());
  const decodeOne = async (item: CacheItem): Promise<Uint8Array | DecodeFailure> => {
    try {
      const data = await req.source.readAll(item.name);
      return await decodeImage(data, req.height, req.width);
    } catch (error) {
      const reason = error instanceof DecodeError ? error.reason : `cannot read: ${(error as Error).message}`;
      return { key: item.key, path: describeSourceRef(req.source.ref(item.name)), reason };
    }
  };
  try {
    // Decodes run ahead in a window; results are written strictly in split order.
    const pending: Promise<Uint8Array | DecodeFailure>[] = [];
    let next = 0;
    const fill = (): void => {
      while (pending.length < concurrency * 2 && next < req.items.length) pending.push(decodeOne(req.items[next++]!));
    };
    fill();
    for (let i = 0; i < req.items.length; i++) {
      const result = await pending.shift()!;
      fill();
      const item = req.items[i]!;
      if (result instanceof Uint8Array) {
        await handle.write(result, 0, result.length, bytes);
        hash.update(result);
        bytes += result.length;
        keys.push(item.key);
        labels.push(item.label);
      } else {
        failures.push(result);
      }
      progress?.tick();
    }
    await handle.sync();
    await handle.close();
  } catch (error) {
    await handle.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw error;
  }
  progress?.finish();
  await fs.rename(tmp, pixelsPath);
  return {
    format: CACHE_FORMAT,
    identity,
    height: req.height,
    width: req.width,
    count: keys.length,
    bytes,
    sha256: hash.digest('hex'),
    keys,
    labels,
    failures,
    createdAt: new Date().toISOString(),
  };
}
