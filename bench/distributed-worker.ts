/**
 * One rank of the distributed bench (bench/distributed.ts): `node dist/bench/distributed-worker.js <json>`.
 * Trains the experiment's CNN on synthetic batches, data-parallel when torchrun's variables say so;
 * rank 0 (or the only process) writes its figures to the request's `out` file, nothing to stdout.
 */
import { writeFileSync } from 'node:fs';
import type { Batch } from '../lib/data/types.js';
import { DataParallel, destroyDistributed, initDistributed, shardBatch } from '../lib/distributed/index.js';
import { native } from '../lib/engine/native.js';
import { experimentCnn } from '../lib/models/zoo.js';
import { syntheticPixels } from './engine.js';
import { median, timedSteps } from './measure.js';

export interface DistributedRequest {
  threads: number;
  batch: number;
  warmup: number;
  steps: number;
  /** timed all-reduces of a gradient-sized buffer (ranks > 1) */
  allreduces: number;
  out: string;
}

const SIZE = 300;

function batchOf(n: number): Batch {
  return { x: syntheticPixels(n * SIZE * SIZE * 3), shape: [n, SIZE, SIZE, 3], y: Float32Array.from({ length: n }, (_, i) => i % 2) };
}

const req = JSON.parse(process.argv[2] ?? '{}') as DistributedRequest;
native().setThreads(req.threads);
const group = await initDistributed({ timeoutMs: 120_000 });
const dp = group && new DataParallel(group);
const model = experimentCnn([SIZE, SIZE, 3], { seed: 1 });
model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['accuracy'] });
if (dp) await dp.broadcastWeights(model.engine);
// a rank steps on its shard of the global batch (as fit's datasets yield it), alone on the whole batch
const mine = (b: Batch) => (dp ? shardBatch(b, dp.group.rank, dp.group.worldSize) : b);
const step = (b: Batch) => model.engine.trainStep(b.x, b.shape, b.y, 0, dp !== undefined);

const full = mine(batchOf(req.batch));
const each = await timedSteps(req.warmup, req.steps, () => step(full));
const result: Record<string, unknown> = {
  ranks: group?.worldSize ?? 1,
  threadsPerRank: native().info().threads,
  batch: req.batch,
  imgPerSec: req.batch / median(each),
  stepSeconds: each,
};
if (dp) {
  // one example per rank: the data-parallel step minus the same step alone is what the group adds,
  // mostly the all-reduce of every gradient
  const tiny = mine(batchOf(group.worldSize));
  const together = await timedSteps(1, req.steps, () => step(tiny));
  const alone = await timedSteps(1, req.steps, () => model.engine.trainStep(tiny.x, tiny.shape, tiny.y, 0));
  result.gradients = model.countParams().trainable;
  result.stepOverheadMs = (median(together) - median(alone)) * 1000;
  result.dataParallelStepMs = median(together) * 1000;
  result.localStepMs = median(alone) * 1000;
  // the all-reduce alone: one float32 buffer of the CNN's gradient count, summed over the ranks
  const gradients = new Float32Array(result.gradients as number).fill(1);
  const allreduce = await timedSteps(1, req.allreduces, () => native().distributed.allreduceSumInPlace(gradients));
  result.allreduceMs = median(allreduce) * 1000;
  result.allreduceSeconds = allreduce;
}
if ((group?.rank ?? 0) === 0) writeFileSync(req.out, JSON.stringify(result));
destroyDistributed();
