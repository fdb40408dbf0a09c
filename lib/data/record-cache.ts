import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic } from '../util/atomic.js';
import { ProgressBar } from '../util/progress-bar.js';

/**
 * An on-disk cache of fixed-size records, one per example (decoded pixels, a frozen base's
 * features), in one keyed folder:
 *   - `<file>`: the records back to back, in input order (inputs left out are not stored);
 *   - `manifest.json`, written last: key inputs, dtype, shape, count, keys, labels, inputs left out;
 *   - while filling: `<file>.partial`, `progress.json` (what the partial file holds) and `fill.lock`;
 *   - `last-used`, an empty file touched whenever the entry is opened (for `transferlab cache`).
 * Rules, the same for every user: an entry is read only when its manifest has this format, key,
 * dtype and shape and its file has exactly `count` records; otherwise it is filled again. A fill
 * syncs the partial file before recording its progress (at most once a second, and when the fill
 * fails), resumes from that record after an interruption, and renames the file into place only
 * when complete.
 */
export const RECORD_FORMAT = 'transferlab-records-v1';

export type RecordDtype = 'uint8' | 'float32';

export interface RecordManifest<S = unknown> {
  format: string;
  /** everything that changes the records, as given by the user of the cache. */
  key: unknown;
  dtype: RecordDtype;
  /** shape of one record. */
  shape: number[];
  count: number;
  keys: string[];
  labels: number[];
  /** inputs that gave no record (e.g. images that failed to decode), in input order. */
  skipped: S[];
  createdAt: string;
  /** what the records were made from (absent in entries of older versions). */
  origin?: CacheOrigin;
}

/** What an entry was made from, for `transferlab cache list` and its staleness check. */
export interface CacheOrigin {
  /** for people: the image folder, the archive, or the entry the records were computed from. */
  source: string;
  imageSize?: [number, number];
  backbone?: string;
  /** files and folders the records depend on, as they were: the entry is stale once one changed or vanished. */
  inputs: CacheInput[];
}

export interface CacheInput {
  path: string;
  size: number;
  mtimeMs: number;
}

export const FILL_LOCK = 'fill.lock';
export const LAST_USED = 'last-used';

/** What a fill produces for some inputs: records back to back with their keys and labels, or inputs left out. */
export interface FillStep<S> {
  records?: { data: Uint8Array | Float32Array; keys: string[]; labels: number[] };
  skipped?: S[];
}

export interface RecordCacheRequest<S> {
  /** the entry's folder (see entryDir). */
  dir: string;
  /** e.g. `pixels.u8`. */
  fileName: string;
  key: unknown;
  dtype: RecordDtype;
  shape: number[];
  /** inputs in all (records plus inputs left out), for the progress bar. */
  total: number;
  /** the steps for inputs `from` onwards, in order (the inputs before `from` are stored already). */
  produce(from: number): AsyncIterable<FillStep<S>>;
  /** progress bar label, e.g. `features (train)`; `itemName` names the inputs. */
  label: string;
  itemName: string;
  /** progress bar on stderr while filling; default true. */
  progress?: boolean;
  /** what the records are made from, recorded in the manifest when the fill completes. */
  origin?: () => Promise<CacheOrigin>;
}

export interface OpenedRecords<S> {
  file: string;
  manifest: RecordManifest<S>;
  /** records computed by this call: 0 when read from an earlier run, less than count after a resume. */
  computed: number;
  /** whether this call filled the entry (false: it was complete already). */
  filled: boolean;
}

interface Progress<S> {
  identity: string;
  done: number;
  keys: string[];
  labels: number[];
  skipped: S[];
}

const BYTES_PER: Record<RecordDtype, number> = { uint8: 1, float32: 4 };
const CHECKPOINT_MS = 1000;
const LOCK_POLL_MS = 200;

/** `<root>/<kind>/[<label>-]<hash of key>`: one folder per key, readable where a label is given. */
export function entryDir(root: string, kind: string, key: unknown, label?: string): string {
  const hash = createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 24);
  return path.join(root, kind, label ? `${label}-${hash}` : hash);
}

export function recordBytes(dtype: RecordDtype, shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1) * BYTES_PER[dtype];
}

/** Returns the complete entry for the request, filling (or finishing) it first when needed. */
export async function openRecordCache<S>(req: RecordCacheRequest<S>): Promise<OpenedRecords<S>> {
  const file = path.join(req.dir, req.fileName);
  const ready = await readValidManifest(req, file);
  if (ready) {
    await touchLastUsed(req.dir);
    return { file, manifest: ready, computed: 0, filled: false };
  }
  await fs.mkdir(req.dir, { recursive: true });
  const opened = await withFillLock(req.dir, async () => {
    const filledMeanwhile = await readValidManifest(req, file);
    if (filledMeanwhile) return { file, manifest: filledMeanwhile, computed: 0, filled: false };
    // A stale manifest must never describe the new file, even for a moment.
    await fs.rm(path.join(req.dir, 'manifest.json'), { force: true });
    await fs.rm(file, { force: true });
    return fill(req, file);
  });
  await touchLastUsed(req.dir);
  return opened;
}

/** Marks the entry as used now; a read-only cache is still readable, so failing to mark is ignored. */
async function touchLastUsed(dir: string): Promise<void> {
  await fs.writeFile(path.join(dir, LAST_USED), '').catch(() => {});
}

/**
 * Deletes an entry unless a live process is filling it: takes its fill lock first, so that no fill
 * starts meanwhile, and removes the manifest before the data, so that a reader never sees a
 * manifest without its records. Returns false (nothing deleted) for an entry being filled.
 */
export async function removeEntry(dir: string): Promise<boolean> {
  const lock = path.join(dir, FILL_LOCK);
  for (;;) {
    try {
      await fs.writeFile(lock, `${process.pid}`, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true; // removed by someone else
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (!(await lockIsStale(lock))) return false;
    await fs.rm(lock, { force: true });
  }
  await fs.rm(path.join(dir, 'manifest.json'), { force: true });
  for (const name of await fs.readdir(dir)) if (name !== FILL_LOCK) await fs.rm(path.join(dir, name), { recursive: true, force: true });
  await fs.rm(lock, { force: true });
  // A fill that took the lock just now keeps the folder.
  await fs.rmdir(dir).catch(() => {});
  return true;
}

/** Whether a live process holds the entry's fill lock. */
export async function isBeingFilled(dir: string): Promise<boolean> {
  const lock = path.join(dir, FILL_LOCK);
  try {
    await fs.access(lock);
  } catch {
    return false;
  }
  return !(await lockIsStale(lock));
}

function identityOf(req: RecordCacheRequest<unknown>): string {
  return JSON.stringify([RECORD_FORMAT, req.key, req.dtype, req.shape]);
}

async function readValidManifest<S>(req: RecordCacheRequest<S>, file: string): Promise<RecordManifest<S> | undefined> {
  try {
    const m = JSON.parse(await fs.readFile(path.join(req.dir, 'manifest.json'), 'utf8')) as RecordManifest<S>;
    if (JSON.stringify([m.format, m.key, m.dtype, m.shape]) !== identityOf(req)) return undefined;
    if (m.keys.length !== m.count || m.labels.length !== m.count || !Array.isArray(m.skipped)) return undefined;
    if ((await fs.stat(file)).size !== m.count * recordBytes(req.dtype, req.shape)) return undefined;
    return m;
  } catch {
    return undefined;
  }
}

/** The progress of an interrupted fill of this very entry, when its partial file holds what it records. */
async function readProgress<S>(req: RecordCacheRequest<S>, partial: string): Promise<Progress<S> | undefined> {
  try {
    const p = JSON.parse(await fs.readFile(path.join(req.dir, 'progress.json'), 'utf8')) as Progress<S>;
    if (p.identity !== identityOf(req) || p.keys.length !== p.done || p.labels.length !== p.done) return undefined;
    if ((await fs.stat(partial)).size < p.done * recordBytes(req.dtype, req.shape)) return undefined;
    return p;
  } catch {
    return undefined;
  }
}

async function fill<S>(req: RecordCacheRequest<S>, file: string): Promise<OpenedRecords<S>> {
  const partial = `${file}.partial`;
  const progressPath = path.join(req.dir, 'progress.json');
  const bytesPer = recordBytes(req.dtype, req.shape);
  const resumed = await readProgress(req, partial);
  const state: Progress<S> = resumed ?? { identity: identityOf(req), done: 0, keys: [], labels: [], skipped: [] };
  // A progress record that does not describe the partial file must not outlive this fill's start.
  if (!resumed) await fs.rm(progressPath, { force: true });
  const handle = await fs.open(partial, resumed ? 'r+' : 'w');
  const from = state.done + state.skipped.length;
  const bar =
    req.progress === false || req.total === 0
      ? undefined
      : new ProgressBar({ label: req.label, total: req.total, unit: 'items', itemName: req.itemName, initial: from });
  const checkpoint = async (): Promise<void> => {
    await handle.sync();
    await writeJsonAtomic(progressPath, state);
  };
  let computed = 0;
  let savedAt = Date.now();
  try {
    // Bytes written after the last recorded progress are cut off: they may be half a record.
    await handle.truncate(state.done * bytesPer);
    for await (const step of req.produce(from)) {
      if (step.records) {
        const { data, keys, labels } = step.records;
        if (data.byteLength !== keys.length * bytesPer || labels.length !== keys.length) {
          throw new Error(
            `record cache ${req.dir}: a step gave ${data.byteLength} bytes, ${keys.length} keys and ${labels.length} labels for records of ${bytesPer} bytes`,
          );
        }
        await handle.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 0, data.byteLength, state.done * bytesPer);
        state.done += keys.length;
        state.keys.push(...keys);
        state.labels.push(...labels);
        computed += keys.length;
      }
      if (step.skipped) state.skipped.push(...step.skipped);
      bar?.update(state.done + state.skipped.length);
      if (Date.now() - savedAt >= CHECKPOINT_MS) {
        await checkpoint();
        savedAt = Date.now();
      }
    }
    await handle.sync();
  } catch (error) {
    bar?.stop();
    // Keep what was written for the next attempt to resume from.
    await checkpoint().catch(() => {});
    await handle.close();
    throw error;
  }
  await handle.close();
  bar?.finish();
  const manifest: RecordManifest<S> = {
    format: RECORD_FORMAT,
    key: req.key,
    dtype: req.dtype,
    shape: req.shape,
    count: state.done,
    keys: state.keys,
    labels: state.labels,
    skipped: state.skipped,
    createdAt: new Date().toISOString(),
    ...(req.origin ? { origin: await req.origin() } : {}),
  };
  await fs.rename(partial, file);
  await writeJsonAtomic(path.join(req.dir, 'manifest.json'), manifest);
  await fs.rm(progressPath, { force: true });
  return { file, manifest, computed, filled: true };
}

/**
 * Runs `work` holding `fill.lock`, so that two fills (two processes, or two calls in one) never
 * write one partial file: a live holder is waited for, a dead one's lock is taken over.
 */
async function withFillLock<T>(dir: string, work: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, FILL_LOCK);
  const token = `${process.pid}`;
  for (;;) {
    try {
      await fs.writeFile(lock, token, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (await lockIsStale(lock)) await fs.rm(lock, { force: true });
    else await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
  try {
    return await work();
  } finally {
    await fs.rm(lock, { force: true });
  }
}

/** A lock whose process no longer runs (a lock still empty is being written, unless it is old). */
async function lockIsStale(lock: string): Promise<boolean> {
  try {
    const [text, st] = await Promise.all([fs.readFile(lock, 'utf8'), fs.stat(lock)]);
    const pid = Number(text);
    if (!text || !Number.isInteger(pid) || pid <= 0) return Date.now() - st.mtimeMs > 10_000;
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // ENOENT: released meanwhile (retry at once); ESRCH: its process is gone; EPERM: alive, another user's.
    return (error as NodeJS.ErrnoException).code !== 'EPERM';
  }
}
