import { readFileSync, writeFileSync } from 'node:fs';

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
