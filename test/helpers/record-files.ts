/**
 * Record files written by hand, as a complete cache entry holds them (records back to back, and the
 * manifest RecordDataset reads), for tests of the reader that should not go through the cache's fill.
 */
import { writeFileSync } from 'node:fs';
import { RECORD_FORMAT, type RecordManifest, recordBytes } from '../../lib/data/record-cache.js';

export interface RecordFile {
  file: string;
  manifest: RecordManifest;
}

/** What a test chooses about its records; the rest of the manifest follows from them. */
export type RecordContents = Pick<RecordManifest, 'shape' | 'keys' | 'labels'>;

/**
 * Writes `records` to `file` (float32 records for a Float32Array, uint8 for a Uint8Array), one per
 * key, and returns the file with its manifest. Sizes that disagree throw here, not later as a short read.
 */
export function writeRecordFile(file: string, records: Float32Array | Uint8Array, { shape, keys, labels }: RecordContents): RecordFile {
  const dtype = records instanceof Float32Array ? 'float32' : 'uint8';
  const count = keys.length;
  if (labels.length !== count || records.byteLength !== count * recordBytes(dtype, shape))
    throw new Error(`keys, labels and records disagree: ${count}, ${labels.length}, ${records.byteLength} bytes of ${dtype} [${shape}]`);
  writeFileSync(file, records);
  const manifest: RecordManifest = {
    format: RECORD_FORMAT,
    key: file,
    dtype,
    shape,
    count,
    keys,
    labels,
    skipped: [],
    createdAt: new Date(0).toISOString(),
  };
  return { file, manifest };
}
