import { isFiniteNumber } from './format.js';
import type { ModelRunSummary } from './types.js';

/** Per-epoch headline figures, read the same way by the HTML report and the terminal table. */

export interface EpochFigure {
  value: number;
  /** 1-based */
  epoch: number;
}

/** The first epoch with the lowest finite value, as ModelCheckpoint picks it. */
export function lowest(values: readonly number[]): EpochFigure | undefined {
  let best: EpochFigure | undefined;
  values.forEach((value, i) => {
    if (isFiniteNumber(value) && (!best || value < best.value)) best = { value, epoch: i + 1 };
  });
  return best;
}

/** The highest per-epoch val_accuracy and its epoch: recorded, or (older summaries) read off the history. */
export function bestAccuracy(m: ModelRunSummary): EpochFigure | undefined {
  if (m.bestAccuracy && isFiniteNumber(m.bestAccuracy.val_accuracy))
    return { value: m.bestAccuracy.val_accuracy, epoch: m.bestAccuracy.epoch };
  let best: EpochFigure | undefined;
  (m.history?.val_accuracy ?? []).forEach((value, i) => {
    if (isFiniteNumber(value) && (!best || value > best.value)) best = { value, epoch: i + 1 };
  });
  return best;
}
