import type { Batch, BatchOptions, Dataset } from './types.js';

/**
 * Rank r of W takes examples [floor(r*n/W), floor((r+1)*n/W)) of every global batch of n: the
 * global batches (and their order, fixed by the seed) are the same for any W, and remainders
 * spread one example at a time, so a rank's shard may be empty when n < W.
 */
export function shardRange(n: number, rank: number, worldSize: number): [number, number] {
  return [Math.floor((rank * n) / worldSize), Math.floor(((rank + 1) * n) / worldSize)];
}

/** This rank's rows of a global batch (views, no copies). */
export function shardBatch(batch: Batch, rank: number, worldSize: number): Batch {
  const n = batch.shape[0]!;
  const [from, to] = shardRange(n, rank, worldSize);
  const xRow = n ? batch.x.length / n : 0;
  const yRow = n ? batch.y.length / n : 0;
  return {
    x: batch.x.subarray(from * xRow, to * xRow),
    shape: [to - from, ...batch.shape.slice(1)],
    y: batch.y.subarray(from * yRow, to * yRow),
    ...(batch.keys ? { keys: batch.keys.slice(from, to) } : {}),
    shardOf: { start: from, size: n },
  };
}

/**
 * One pass of `dataset`, as `shard`'s rows of every global batch when a shard is given: a dataset
 * that reads shards itself (`readsShards`) reads only those rows, any other is read whole and sliced.
 */
export function shardedBatches(dataset: Dataset, options: BatchOptions): AsyncIterable<Batch> {
  const { shard, ...whole } = options;
  if (!shard || dataset.readsShards) return dataset.batches(options);
  return {
    async *[Symbol.asyncIterator]() {
      for await (const batch of dataset.batches(whole)) yield shardBatch(batch, shard.rank, shard.worldSize);
    },
  };
}
