/** Counts the engine's native record gathers (what record datasets read) while a piece of work runs. */
import { native } from '../../lib/engine/native.js';

export interface GatherCounts {
  /** gathers called */
  started: number;
  /** gathers whose promise has settled */
  settled: number;
  /** records asked for */
  records: number;
}

/** Counts native gathers started and settled, and the records they read, while `fn` runs; the engine's own gather is back afterwards, also on a throw. */
export async function countingGathers<T>(fn: (counts: GatherCounts) => Promise<T>): Promise<T> {
  const binding = native();
  const original = binding.gatherRecords;
  const counts = { started: 0, settled: 0, records: 0 };
  binding.gatherRecords = (...args) => {
    counts.started++;
    counts.records += args[1].length;
    return original(...args).finally(() => counts.settled++);
  };
  try {
    return await fn(counts);
  } finally {
    binding.gatherRecords = original;
  }
}
