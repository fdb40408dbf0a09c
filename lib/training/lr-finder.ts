import type { Dataset } from '../data/types.js';
import type { LayerWeights } from '../keras-format/config.js';
import type { FitModel } from './fit-model.js';
import { checkLabels } from './labels.js';
import { RepeatingStream } from './stream.js';

/** What the range test needs besides fit's model: the weights, to put them back afterwards. */
export interface LrFindModel extends FitModel {
  getWeights(): LayerWeights[];
  setWeights(weights: LayerWeights[]): void;
}

export interface LrFindOptions {
  /** fastai's defaults: 1e-7, 10, 100 iterations. */
  startLr?: number;
  endLr?: number;
  numIt?: number;
  /** stop once the smoothed loss exceeds 4x its best (fastai's stop_div; default true). */
  stopDiv?: boolean;
  /** train from this layer on: batches are outputs of layer `fromLayer - 1` (cached features). */
  fromLayer?: number;
  onStep?: (step: number, lr: number, smoothedLoss: number) => void;
}

export interface LrFindResult {
  /** the rate of each iteration run. */
  learningRates: number[];
  losses: number[];
  /** losses smoothed as fastai's Recorder does (exponential average, beta 0.98, bias-corrected). */
  smoothedLosses: number[];
  /** true when the sweep stopped early because the loss diverged. */
  diverged: boolean;
  suggestion: LrSuggestion;
}

export interface LrSuggestion {
  /** fastai's `steep`: where the smoothed loss falls fastest against log(lr). */
  steep: number;
  /** fastai's `minimum`: the rate of the lowest smoothed loss, divided by 10. */
  minimum: number;
  /** indices into the sweep of the two points. */
  steepIndex: number;
  minimumIndex: number;
}

const BETA = 0.98;

/** Rate of iteration `i` of an exponential sweep from `start` towards `end` over `n` iterations (fastai's SchedExp). */
export function sweepRate(i: number, n: number, start: number, end: number): number {
  return start * (end / start) ** (i / n);
}

/**
 * fastai's suggestions over the smoothed losses, skipping the first tenth and the last 5 points as
 * `lr_find` does (the start is noise, the end is divergence). Undefined when too few points remain.
 */
export function suggestLearningRate(lrs: readonly number[], losses: readonly number[], numIt: number): LrSuggestion | undefined {
  const indices: number[] = [];
  for (let i = Math.floor(numIt / 10); i < lrs.length - 5; i++) if (Number.isFinite(losses[i])) indices.push(i);
  if (indices.length < 2) return undefined;
  let minimumIndex = indices[0];
  for (const i of indices) if (losses[i] < losses[minimumIndex]) minimumIndex = i;
  let steepIndex = indices[0];
  let steepest = Infinity;
  for (let k = 0; k + 1 < indices.length; k++) {
    const [a, b] = [indices[k], indices[k + 1]];
    const gradient = (losses[b] - losses[a]) / (Math.log(lrs[b]) - Math.log(lrs[a]));
    if (gradient < steepest) {
      steepest = gradient;
      steepIndex = a;
    }
  }
  return { steep: lrs[steepIndex], minimum: lrs[minimumIndex] / 10, steepIndex, minimumIndex };
}

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) throw new Error(`lr-find: ${name} must be a number > 0, got ${value}`);
  return value;
}

/**
 * fastai's learning-rate range test: trains one batch per iteration at exponentially growing rates,
 * records the smoothed loss, stops when it diverges, and puts the weights and optimizer state back,
 * so the model is as before. The model must be compiled with a fixed rate.
 */
export async function lrFind(model: LrFindModel, data: Dataset, options: LrFindOptions = {}): Promise<LrFindResult> {
  if (!model.compiled) throw new Error(`compile() model '${model.name}' before lr-find`);
  if (model.learningRateSchedule)
    throw new Error(`lr-find sets the rate itself: compile '${model.name}' with a fixed learningRate, not a schedule`);
  const startLr = positive('startLr', options.startLr ?? 1e-7);
  const endLr = positive('endLr', options.endLr ?? 10);
  if (endLr <= startLr) throw new Error(`lr-find: endLr (${endLr}) must be above startLr (${startLr})`);
  const numIt = options.numIt ?? 100;
  if (!Number.isInteger(numIt) || numIt < 8) throw new Error(`lr-find: numIt must be a whole number >= 8, got ${numIt}`);
  const fromLayer = options.fromLayer ?? 0;
  const entry = model.engineIndex(fromLayer, true);

  const weights = model.getWeights();
  const optimizerState = model.engine.getOptimizerState();
  const rate = model.learningRate;
  const stream = new RepeatingStream(data);
  const result: Omit<LrFindResult, 'suggestion'> = { learningRates: [], losses: [], smoothedLosses: [], diverged: false };
  try {
    let average = 0;
    let best = Infinity;
    for (let i = 0; i < numIt; i++) {
      const batch = await stream.next();
      model.checkInput(batch.shape, fromLayer);
      checkLabels(model, batch.y, batch.shape[0], `lr-find batch ${i + 1}`);
      const lr = sweepRate(i, numIt, startLr, endLr);
      model.learningRate = lr;
      const { loss } = await model.engine.trainStep(batch.x, batch.shape, batch.y, entry);
      average = BETA * average + (1 - BETA) * loss;
      const smoothed = average / (1 - BETA ** (i + 1));
      result.learningRates.push(lr);
      result.losses.push(loss);
      result.smoothedLosses.push(smoothed);
      options.onStep?.(i, lr, smoothed);
      if (smoothed < best) best = smoothed;
      if (!Number.isFinite(smoothed) || ((options.stopDiv ?? true) && smoothed > 4 * best)) {
        result.diverged = true;
        break;
      }
    }
  } finally {
    await stream.close();
    model.setWeights(weights);
    model.engine.setOptimizerState(optimizerState);
    model.learningRate = rate;
  }
  const suggestion = suggestLearningRate(result.learningRates, result.smoothedLosses, numIt);
  if (!suggestion)
    throw new Error(
      `lr-find: the loss diverged after ${result.learningRates.length} of ${numIt} iterations, too few to suggest a rate; ` +
        'lower the start rate (--start-lr) or the end rate (--end-lr), or run more iterations (--num-it)',
    );
  return { ...result, suggestion };
}
