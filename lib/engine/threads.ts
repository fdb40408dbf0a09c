import os from 'node:os';

/**
 * Threads beyond the machine's cores only compete for the same cores (training ran 15x slower
 * with 999): a request above `os.availableParallelism()` is capped, with a warning to show.
 * 0 means all cores.
 */
export function capThreads(requested: number, cores = os.availableParallelism()): { threads: number; warning?: string } {
  if (requested <= cores) return { threads: requested };
  return { threads: cores, warning: `${requested} threads requested but this machine has ${cores} cores: using ${cores}` };
}
