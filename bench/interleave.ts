import type { Session } from './session.js';

/**
 * Our engine and PyTorch timed in alternating rounds of a few steps each, both processes warm, so
 * that a neighbour's load hits both sides alike. Each round gives one ratio, PyTorch's seconds per
 * step over ours (above 1: we are faster); the median ratio and its spread are the result.
 */

export interface InterleaveSizes {
  warmup: number;
  rounds: number;
  steps: number;
}

export interface Interleaved {
  /** images per second from the median step of all rounds. */
  oursImgPerSec: number;
  theirsImgPerSec: number;
  ratioMedian: number;
  ratioMin: number;
  ratioMax: number;
  /** interquartile range of the per-round ratios: [25th, 75th percentile]. */
  ratioIqr: [number, number];
  roundRatios: number[];
  oursSeconds: number[];
  theirsSeconds: number[];
}

/** Linear-interpolated quantile of sorted values (q in [0, 1]). */
export function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

export async function interleave(
  ours: Session,
  theirs: Session,
  batch: number,
  sizes: InterleaveSizes,
  log: (msg: string) => void,
): Promise<Interleaved> {
  await ours.run(sizes.warmup);
  await theirs.run(sizes.warmup);
  const roundRatios: number[] = [];
  const oursSeconds: number[] = [];
  const theirsSeconds: number[] = [];
  for (let r = 0; r < sizes.rounds; r++) {
    // who goes first alternates, so a load that rises or falls over a round favours neither
    const first = r % 2 === 0 ? ours : theirs;
    const second = first === ours ? theirs : ours;
    const a = await first.run(sizes.steps);
    const b = await second.run(sizes.steps);
    const [o, t] = first === ours ? [a, b] : [b, a];
    oursSeconds.push(...o);
    theirsSeconds.push(...t);
    roundRatios.push(mean(t) / mean(o));
    log(
      `round ${r + 1}/${sizes.rounds}: ours ${mean(o).toFixed(3)} s/step, PyTorch ${mean(t).toFixed(3)} s/step, ratio ${roundRatios[r]!.toFixed(2)}`,
    );
  }
  const sorted = [...roundRatios].sort((x, y) => x - y);
  const median = (v: number[]) =>
    quantile(
      [...v].sort((x, y) => x - y),
      0.5,
    );
  return {
    oursImgPerSec: batch / median(oursSeconds),
    theirsImgPerSec: batch / median(theirsSeconds),
    ratioMedian: quantile(sorted, 0.5),
    ratioMin: sorted[0]!,
    ratioMax: sorted[sorted.length - 1]!,
    ratioIqr: [quantile(sorted, 0.25), quantile(sorted, 0.75)],
    roundRatios,
    oursSeconds,
    theirsSeconds,
  };
}
