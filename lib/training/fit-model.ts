import type { NativeModel } from '../engine/native.js';

/**
 * What `fit`, `evaluate` and the callbacks need of a model. Training depends on this, not on
 * Sequential, so Sequential can call `fit` without the two modules importing each other.
 */
export interface FitModel {
  readonly name: string;
  /** the compile settings (the loss decides which labels are valid); undefined until compiled. */
  readonly compiled: { readonly loss: string } | undefined;
  readonly outputShape: readonly number[];
  /** set by callbacks (EarlyStopping) to end `fit` after the current epoch, as in Keras. */
  stopTraining: boolean;
  /** the compiled optimizer's schedule (Keras LearningRateSchedule), which fit applies before every step. */
  readonly learningRateSchedule: { call(step: number): number } | undefined;
  /** Keras `optimizer.learning_rate`: the rate of the next step; setting it (ReduceLROnPlateau) needs a fixed rate. */
  learningRate: number;
  readonly engine: NativeModel;
  engineIndex(layer: number, atBoundary?: boolean): number;
  checkInput(shape: number[], fromLayer?: number): void;
}
