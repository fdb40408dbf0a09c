import { isChief } from '../distributed/index.js';
import type { FitModel } from './fit-model.js';
import type { Logs } from './history.js';

/** What a callback restored before training (BackupAndRestore): fit continues from there. */
export interface Restored {
  /** epochs already done: fit runs the next one. */
  initialEpoch: number;
  /** their logs, which the returned History includes. */
  history: Record<string, number[]>;
}

/** Keras-style callback hooks; all optional. `epoch` is 0-based as in Keras. */
export interface Callback {
  setModel?(model: FitModel): void;
  /** Before training (and before the data streams are positioned): restore a saved state, if any. */
  restore?(initialEpoch: number): Promise<Restored | undefined>;
  onTrainBegin?(info: { epochs: number; initialEpoch: number }): void | Promise<void>;
  onEpochBegin?(epoch: number): void | Promise<void>;
  onBatchEnd?(step: number, logs: Logs, info?: { steps?: number }): void | Promise<void>;
  onEpochEnd?(epoch: number, logs: Logs): void | Promise<void>;
  onTrainEnd?(logs: Logs): void | Promise<void>;
}

type Mode = 'min' | 'max' | 'auto';

function isBetter(mode: Mode, monitor: string, value: number, best: number, minDelta = 0): boolean {
  const direction = mode === 'auto' ? (/acc/.test(monitor) ? 'max' : 'min') : mode;
  return direction === 'min' ? value < best - minDelta : value > best + minDelta;
}

function initialBest(mode: Mode, monitor: string): number {
  const direction = mode === 'auto' ? (/acc/.test(monitor) ? 'max' : 'min') : mode;
  return direction === 'min' ? Infinity : -Infinity;
}

/**
 * Keras ModelCheckpoint: saves the model (weights, config and optimizer state) to `filepath`
 * when the monitored value improves (or every epoch without `saveBestOnly`). Saves are atomic, so
 * a crash mid-save leaves the previous checkpoint intact. `M` is the model class `save` takes.
 */
export class ModelCheckpoint<M extends FitModel = FitModel> implements Callback {
  private model?: M;
  best: number;
  bestEpoch = -1;
  readonly filepath: string | ((epoch: number) => string);
  readonly monitor: string;
  readonly saveBestOnly: boolean;
  readonly mode: Mode;

  constructor(options: {
    filepath: string | ((epoch: number) => string);
    monitor?: string;
    saveBestOnly?: boolean;
    mode?: Mode;
    save: (model: M, dir: string, epoch: number) => Promise<void>;
  }) {
    this.filepath = options.filepath;
    this.monitor = options.monitor ?? 'val_loss';
    this.saveBestOnly = options.saveBestOnly ?? true;
    this.mode = options.mode ?? 'auto';
    this.best = initialBest(this.mode, this.monitor);
    this.save = options.save;
  }

  private readonly save: (model: M, dir: string, epoch: number) => Promise<void>;

  setModel(model: FitModel): void {
    // fit hands over the model it trains: the one the caller built this checkpoint (and its save) for
    this.model = model as M;
  }

  async onEpochEnd(epoch: number, logs: Logs): Promise<void> {
    const value = logs[this.monitor];
    const target = typeof this.filepath === 'function' ? this.filepath(epoch) : this.filepath;
    if (!this.saveBestOnly) {
      if (isChief()) await this.save(this.model!, target, epoch);
      return;
    }
    if (value === undefined)
      throw new Error(`ModelCheckpoint monitors '${this.monitor}', which is not among the logs (${Object.keys(logs).join(', ')})`);
    if (Number.isFinite(value) && isBetter(this.mode, this.monitor, value, this.best)) {
      this.best = value;
      this.bestEpoch = epoch;
      // every rank tracks the best epoch; only rank 0 of a data-parallel run writes
      if (isChief()) await this.save(this.model!, target, epoch);
    }
  }
}

/** Keras EarlyStopping: stops after `patience` epochs without improvement of `monitor`. */
export class EarlyStopping implements Callback {
  private model?: FitModel;
  private wait = 0;
  private best: number;
  stoppedEpoch = -1;

  constructor(private readonly options: { monitor?: string; patience?: number; minDelta?: number; mode?: Mode } = {}) {
    this.best = initialBest(options.mode ?? 'auto', options.monitor ?? 'val_loss');
  }

  setModel(model: FitModel): void {
    this.model = model;
  }

  onEpochEnd(epoch: number, logs: Logs): void {
    const monitor = this.options.monitor ?? 'val_loss';
    const value = logs[monitor];
    if (value === undefined) return;
    if (isBetter(this.options.mode ?? 'auto', monitor, value, this.best, Math.abs(this.options.minDelta ?? 0))) {
      this.best = value;
      this.wait = 0;
      return;
    }
    this.wait += 1;
    if (this.wait >= (this.options.patience ?? 0)) {
      this.stoppedEpoch = epoch;
      this.model!.stopTraining = true;
    }
  }
}
