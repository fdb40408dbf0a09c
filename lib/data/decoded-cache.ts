/**
 * One split decoded and resized, as a record cache (record-cache.ts): `pixels.u8` holds the images
 * (uint8 HWC, in split order); images that fail to decode are left out and listed in the manifest.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DecodeError, decodeImage, type ImageDecoder } from './decode.js';
import { mapPool } from './pool.js';
import { type CacheInput, type CacheOrigin, entryDir, type FillStep, openRecordCache, type RecordManifest } from './record-cache.js';
import { describeSourceRef, type ImageSource } from './source.js';

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
  /** default decodeImage. */
  decode?: ImageDecoder;
}

export interface OpenedCache {
  pixelsPath: string;
  manifest: RecordManifest<DecodeFailure>;
  /** whether this call decoded images (false: read from an earlier run). */
  built: boolean;
}

/** Returns a complete cache for the request, decoding (with a progress bar) what is missing. */
export async function ensureDecodedCache(req: CacheRequest): Promise<OpenedCache> {
  const key = {
    pipeline: PIXEL_PIPELINE,
    height: req.height,
    width: req.width,
    source: req.source.description,
    items: await itemsDigest(req),
  };
  const label = `${req.splitLabel.replace(/[^A-Za-z0-9%._-]+/g, '_')}-${req.height}x${req.width}`;
  const opened = await openRecordCache<DecodeFailure>({
    dir: entryDir(req.cacheRoot, path.join('decoded', req.datasetName.replace(/[^A-Za-z0-9._-]+/g, '_')), key, label),
    fileName: 'pixels.u8',
    key,
    dtype: 'uint8',
    shape: [req.height, req.width, 3],
    total: req.items.length,
    produce: (from) => decodeSteps(req, from),
    label: `decoding ${req.datasetName} ${req.splitLabel} to ${req.height}x${req.width}`,
    itemName: 'images',
    progress: req.progress,
    origin: () => decodedOrigin(req),
  });
  return { pixelsPath: opened.file, manifest: opened.manifest, built: opened.filled };
}

/**
 * The files decoded (or the archive holding them) and the folders holding them: a changed photo,
 * or a photo added to or removed from a folder, makes the entry stale.
 */
async function decodedOrigin(req: CacheRequest): Promise<CacheOrigin> {
  const paths = new Set<string>();
  for (const item of req.items) {
    const ref = req.source.ref(item.name);
    if (ref.kind === 'zip') paths.add(ref.archive);
    else paths.add(ref.path).add(path.dirname(ref.path));
  }
  const inputs = await mapPool([...paths], 32, async (p): Promise<CacheInput | undefined> => {
    const st = await fs.stat(p).catch(() => undefined);
    return st && { path: p, size: st.size, mtimeMs: st.mtimeMs };
  });
  return {
    source: req.source.description,
    imageSize: [req.height, req.width],
    inputs: inputs.filter((i): i is CacheInput => i !== undefined),
  };
}

/** Per image: its key, label and source identity (a changed photo makes a new key). */
async function itemsDigest(req: CacheRequest): Promise<string> {
  const ids = await mapPool(req.items, 32, (item) => req.source.identity(item.name));
  const hash = createHash('sha256');
  req.items.forEach((item, i) => hash.update(`\n${item.key}\t${item.label}\t${ids[i]}`));
  return hash.digest('hex');
}

/** Decodes run ahead in a window; results come strictly in split order. */
async function* decodeSteps(req: CacheRequest, from: number): AsyncGenerator<FillStep<DecodeFailure>> {
  const concurrency = req.concurrency ?? Math.max(2, os.availableParallelism());
  const decode = req.decode ?? decodeImage;
  const decodeOne = async (item: CacheItem): Promise<Uint8Array | DecodeFailure> => {
    try {
      const data = await req.source.readAll(item.name);
      return await decode(data, req.height, req.width);
    } catch (error) {
      const reason = error instanceof DecodeError ? error.reason : `cannot read: ${(error as Error).message}`;
      return { key: item.key, path: describeSourceRef(req.source.ref(item.name)), reason };
    }
  };
  const pending: Promise<Uint8Array | DecodeFailure>[] = [];
  let next = from;
  const fill = (): void => {
    while (pending.length < concurrency * 2 && next < req.items.length) pending.push(decodeOne(req.items[next++]!));
  };
  fill();
  for (let i = from; i < req.items.length; i++) {
    const result = await pending.shift()!;
    fill();
    const item = req.items[i]!;
    yield result instanceof Uint8Array ? { records: { data: result, keys: [item.key], labels: [item.label] } } : { skipped: [result] };
  }
}
