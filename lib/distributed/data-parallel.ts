import type { Shard } from '../data/types.js';
import { type NativeModel, native } from '../engine/native.js';
import { allreduceSum, distributedInfo, type ProcessGroupInfo } from './process-group.js';

/**
 * What `fit` consults when a process group exists: each rank reads and trains on its shard of every
 * global batch (`shard`, given to the datasets); the engine averages gradients (weighted by examples)
 * and fit the metrics over all ranks before the update, so every rank holds the weights and numbers
 * one process would on the whole batch.
 */
export class DataParallel {
  constructor(readonly group: ProcessGroupInfo) {}

  /** The strategy for this process's group; undefined when it runs alone. */
  static current(): DataParallel | undefined {
    const group = distributedInfo();
    return group ? new DataParallel(group) : undefined;
  }

  /** This rank's part of every global batch, as datasets take it (`batches({ shard })`). */
  get shard(): Shard {
    return { rank: this.group.rank, worldSize: this.group.worldSize };
  }

  /** Identical starting weights: rank 0's, broadcast to all. */
  async broadcastWeights(engine: NativeModel): Promise<void> {
    await native().distributed.broadcastModel(engine);
  }

  /** Sums of (loss * examples, correct, examples) over all ranks. */
  async reduceSums(lossSum: number, correct: number, count: number): Promise<[number, number, number]> {
    const [l, c, n] = await allreduceSum([lossSum, correct, count]);
    return [l!, c!, n!];
  }
}
