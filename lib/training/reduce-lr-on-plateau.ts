import { type Callback, initialBest, isBetter, type Mode } from './callbacks.js';
import type { FitModel } from './fit-model.js';
import type { Logs } from './history.js';

export interface ReduceLROnPlateauOptions {
  /** default 'val_loss' */
  monitor?: string;
  /** the rate is multiplied by this on a plateau; must be < 1 (default 0.1) */
  factor?: number;
  /** epochs without improvement before the rate is reduced (default 10) */
  patience?: number;
  /** smallest change that counts as an improvement (default 1e-4) */
  minDelta?: number;
  /** epochs to wait after a reduction before counting again (default 0) */
  cooldown?: number;
  /** the rate is never reduced below this (default 0) */
  minLr?: number;
  /** 'auto' (default): 'max' for a monitor naming accuracy, else 'min' */
  mode?: Mode;
  /** print each reduction */
  verbose?: 0 | 1;
}

/** Keras ReduceLROnPlateau: multiplies the learning rate by `factor` after `patience` epochs without improvement. */
export class ReduceLROnPlateau implements Callback {
  readonly monitor: string;
  readonly factor: number;
  readonly patience: number;
  readonly minDelta: number;
  readonly cooldown: number;
  readonly minLr: number;
  readonly mode: Mode;
  private readonly verbose: 0 | 1;
  private model?: FitModel;
  private best: number;
  private wait = 0;
  private cooldownCounter = 0;

  constructor(options: ReduceLROnPlateauOptions = {}) {
    this.monitor = options.monitor ?? 'val_loss';
    this.factor = options.factor ?? 0.1;
    // as Keras: a factor >= 1 would never reduce the rate
    if (!(this.factor >= 0 && this.factor < 1)) throw new Error(`ReduceLROnPlateau: factor must be in [0, 1), got ${options.factor}`);
    this.patience = nonNegative('patience', options.patience ?? 10);
    this.minDelta = Math.abs(options.minDelta ?? 1e-4);
    this.cooldown = nonNegative('cooldown', options.cooldown ?? 0);
    this.minLr = nonNegative('minLr', options.minLr ?? 0);
    this.mode = options.mode ?? 'auto';
    if (!['auto', 'min', 'max'].includes(this.mode))
      throw new Error(`ReduceLROnPlateau: mode must be auto, min or max, got '${this.mode}'`);
    this.verbose = options.verbose ?? 0;
    this.best = initialBest(this.mode, this.monitor);
  }

  setModel(model: FitModel): void {
    this.model = model;
  }

  onTrainBegin(): void {
    this.best = initialBest(this.mode, this.monitor);
    this.wait = 0;
    this.cooldownCounter = 0;
  }

  onEpochEnd(epoch: number, logs: Logs): void {
    const current = logs[this.monitor];
    if (current === undefined)
      throw new Error(`ReduceLROnPlateau monitors '${this.monitor}', which is not among the logs (${Object.keys(logs).join(', ')})`);
    if (this.cooldownCounter > 0) {
      this.cooldownCounter -= 1;
      this.wait = 0;
    }
    if (isBetter(this.mode, this.monitor, current, this.best, this.minDelta)) {
      this.best = current;
      this.wait = 0;
      return;
    }
    if (this.cooldownCounter > 0) return;
    this.wait += 1;
    if (this.wait < this.patience) return;
    const model = this.model!;
    const old = model.learningRate;
    // Keras compares in float32, so a rate already at min_lr (up to float rounding) stays put
    if (old > Math.fround(this.minLr)) {
      model.learningRate = Math.max(old * this.factor, this.minLr);
      if (this.verbose) console.log(`\nEpoch ${epoch + 1}: ReduceLROnPlateau reducing learning rate to ${model.learningRate}.`);
      this.cooldownCounter = this.cooldown;
      this.wait = 0;
    }
  }
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new Error(`ReduceLROnPlateau: ${name} must be a number >= 0, got ${value}`);
  return value;
}
