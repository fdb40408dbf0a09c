import { shardedBatches } from '../data/shard.js';
import type { Batch, Dataset, Shard } from '../data/types.js';

/**
 * tf.data's `.repeat()`: one endless stream of batches, each pass ending with its smaller last
 * batch. With Keras's `steps_per_epoch`, epochs take consecutive windows of this stream, so an
 * "epoch" continues where the previous one stopped (the experiment's 233/15 schedule relies on it).
 * With a `shard`, each global batch comes as this rank's (maybe empty) shard of it.
 */
export class RepeatingStream {
  private iterator?: AsyncIterator<Batch>;
  private pass = 0;

  constructor(
    private readonly dataset: Dataset,
    private readonly shard?: Shard,
  ) {}

  async next(): Promise<Batch> {
    for (let attempt = 0; attempt < 2; attempt++) {
      this.iterator ??= shardedBatches(this.dataset, { pass: this.pass++, shard: this.shard })[Symbol.asyncIterator]();
      const { value, done } = await this.iterator.next();
      if (!done) return value;
      this.iterator = undefined;
    }
    throw new Error('the dataset yielded no batches: it is empty');
  }

  /**
   * Moves the stream `n` (global) batches ahead, as if they had been read. Whole passes are skipped without
   * reading (each pass has ceil(size / batchSize) batches); at most one pass is read through.
   */
  async skip(n: number): Promise<void> {
    if (n <= 0) return;
    if (!this.iterator) {
      const perPass = Math.ceil(this.dataset.size / this.dataset.batchSize);
      this.pass += Math.floor(n / perPass);
      n %= perPass;
    }
    for (let i = 0; i < n; i++) await this.next();
  }

  async close(): Promise<void> {
    await this.iterator?.return?.();
    this.iterator = undefined;
  }
}

/**
 * `steps` batches from a stream, or pass number `pass` of the dataset when `steps` is undefined
 * (`shard`'s rows of each batch when given; a stream has its own).
 */
export async function* takeBatches(
  dataset: Dataset,
  stream: RepeatingStream | undefined,
  steps: number | undefined,
  pass = 0,
  shard?: Shard,
): AsyncGenerator<Batch> {
  if (stream && steps !== undefined) {
    for (let i = 0; i < steps; i++) yield await stream.next();
    return;
  }
  yield* shardedBatches(dataset, { pass, shard });
}
