/**
 * The contract between datasets and training: a dataset yields batches of images in NHWC layout
 * (uint8 pixels, or float32 features when a frozen base's output is cached) with labels as class
 * indices (0/1 for binary). `fit` repeats `batches()` itself to emulate tf.data's `.repeat()`.
 */
export interface Batch {
  /** NHWC pixels (uint8, 0-255) or features (float32), row-major. */
  x: Uint8Array | Float32Array;
  /** [N, ...elementShape] */
  shape: number[];
  /** class index per example (binary: 0 = first class, 1 = second). */
  y: Float32Array;
  /** keys (e.g. `PetImages/Cat/1.jpg`) of the examples in this batch, for reports. */
  keys?: string[];
  /** set on a shard (`BatchOptions.shard`): where its rows start in the global batch, and that batch's size. */
  shardOf?: { start: number; size: number };
}

/** One rank's part of a data-parallel run (see shardRange in shard.ts). */
export interface Shard {
  rank: number;
  worldSize: number;
}

export interface BatchOptions {
  pass?: number;
  ordered?: boolean;
  /**
   * Only this rank's rows of every global batch (shard.ts's rule), one (maybe empty) shard per
   * global batch; datasets that can read them (`readsShards`) do so, others are sliced by shardedBatches.
   */
  shard?: Shard;
}

export interface Dataset {
  /** examples in one pass (after removing images that failed to decode). */
  readonly size: number;
  readonly batchSize: number;
  /** shape of one example, e.g. [300, 300, 3]. */
  readonly elementShape: number[];
  readonly classNames: string[];
  /** `batches` honours `shard`, reading only the shard's rows (other datasets ignore it). */
  readonly readsShards?: boolean;
  /**
   * One pass; the last batch may be smaller, as with tf.data `.batch(n)`. A dataset that shuffles
   * orders pass `pass` (default 0) by its seed and the pass number, so any pass can be replayed
   * (resume) and two models see the same order; `ordered` asks for the split order.
   */
  batches(options?: BatchOptions): AsyncIterable<Batch>;
}
