import type { RecordManifest } from './record-cache.js';
import { RecordDataset, type RecordDatasetOptions } from './record-dataset.js';
import type { SourceRef } from './source.js';

export interface DecodedDatasetOptions extends RecordDatasetOptions {
  /** source of each example, by key (for thumbnails and reports). */
  refs: ReadonlyMap<string, SourceRef>;
}

/** A split decoded into the on-disk cache (decoded-cache.ts), read back in batches. */
export class DecodedDataset extends RecordDataset {
  private readonly refs: ReadonlyMap<string, SourceRef>;

  constructor(
    readonly pixelsPath: string,
    manifest: RecordManifest,
    opts: DecodedDatasetOptions,
  ) {
    super(pixelsPath, manifest, opts);
    this.refs = opts.refs;
  }

  /** Where the image with this key was read from, for thumbnails (`thumbnailJpeg(ref, size)`). */
  sourceRef(key: string): SourceRef | undefined {
    return this.refs.get(key);
  }
}
