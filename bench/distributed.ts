/**
 * `distributedStepOverhead`: what data parallelism costs and gives on one machine, over Gloo on
 * loopback, for the experiment's CNN: one all-reduce of a buffer of its ~3.4M gradients on its own
 * (median), the extra time of a data-parallel step over the same step alone, and 2 ranks x 1 thread
 * against 1 rank x 2 threads in img/s on the same batch.
 * The ranks are started by the built-in launcher, exactly as `compare --nproc-per-node` starts them.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../lib/cli/launcher.js';
import type { DistributedRequest } from './distributed-worker.js';
import type { BenchSizes } from './options.js';

const workerPath = path.join(path.dirname(fileURLToPath(import.meta.url)), 'distributed-worker.js');

async function runRanks(nproc: number, request: Omit<DistributedRequest, 'out'>, dir: string): Promise<Record<string, number>> {
  const out = path.join(dir, `ranks-${nproc}.json`);
  const result = await launch({ nproc, command: [process.execPath, workerPath, JSON.stringify({ ...request, out })] });
  if (result.exitCode !== 0) throw new Error(`${nproc} rank(s): rank ${result.failed?.rank ?? '?'} failed (exit ${result.exitCode})`);
  return JSON.parse(await readFile(out, 'utf8')) as Record<string, number>;
}

export async function benchDistributed(sizes: BenchSizes): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-bench-dist-'));
  try {
    const common = {
      batch: sizes.cnnBatch,
      warmup: sizes.cnnWarmup,
      steps: sizes.cnnRounds * sizes.cnnStepsPerRound,
      allreduces: sizes.allreduces,
    };
    const two = await runRanks(2, { ...common, threads: 1 }, dir);
    const one = await runRanks(1, { ...common, threads: 2 }, dir);
    return {
      gradients: two.gradients,
      allreduceMs: two.allreduceMs,
      stepOverheadMs: two.stepOverheadMs,
      twoRanksOneThreadImgPerSec: two.imgPerSec,
      oneRankTwoThreadsImgPerSec: one.imgPerSec,
      twoRanksVsOneRank: two.imgPerSec! / one.imgPerSec!,
      details: { twoRanks: two, oneRank: one },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
