import type { ModelRunSummary } from '../reports/types.js';

/**
 * Why a model that finished training has no usable result, in words (undefined when it has): no
 * epoch trained, or a loss that is not a number. Such a model is reported as failed, never ok.
 */
export function trainingProblem(model: ModelRunSummary): string | undefined {
  const problem = historyProblem(model.history);
  if (problem) return problem;
  if (!Number.isFinite(model.final.val_loss))
    return `the final evaluation gave val_loss ${model.final.val_loss}; the weights are unusable.`;
  return undefined;
}

/** The part of the verdict that the per-epoch history alone decides. */
export function historyProblem(history: Pick<ModelRunSummary['history'], 'loss' | 'val_loss'>): string | undefined {
  if (history.loss.length === 0) return 'trained no epoch: there was nothing to learn from.';
  for (const key of ['loss', 'val_loss'] as const) {
    const epoch = history[key].findIndex((v) => !Number.isFinite(v));
    if (epoch >= 0) {
      return (
        `${key} became ${history[key][epoch]} in epoch ${epoch + 1}, so the weights are unusable. ` +
        `Lower the learning rate (--learning-rate) and run again.`
      );
    }
  }
  return undefined;
}
