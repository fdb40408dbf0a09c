import { readFileSync, writeFileSync } from 'node:fs';
import { native } from '../lib/engine/native.js';

export type LayerTimeRow = ReturnType<ReturnType<typeof native>['takeLayerTimes']>[number];

/** Wall-clock seconds of one call. */
export async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

/**
 * Peak resident memory of one stretch of work in this process (Linux): writing 5 to
 * /proc/self/clear_refs resets the kernel's high-water mark (VmHWM), so each loop's peak is its own
 * rather than the largest since the process started. Null where /proc does not offer it.
 */
export async function peakRssOf(fn: () => Promise<unknown>): Promise<number | null> {
  let resettable = true;
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    resettable = false;
  }
  await fn();
  if (!resettable) return null;
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return kb === undefined ? null : Number(kb) * 1024;
}

/** Seconds of each of `steps` calls after `warmup` untimed ones. */
export async function timedSteps(warmup: number, steps: number, fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const each: number[] = [];
  for (let i = 0; i < steps; i++) each.push(await seconds(fn));
  return each;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The engine's per-layer times of one stretch of work; layer timing is off again afterwards, even when the work fails. */
export async function layerTimesOf(fn: () => Promise<unknown>): Promise<LayerTimeRow[]> {
  const engine = native();
  engine.setLayerTiming(true);
  try {
    await fn();
    return engine.takeLayerTimes();
  } finally {
    engine.setLayerTiming(false);
  }
}
