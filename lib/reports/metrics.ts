import type { BinaryCurves, ConfusionMatrix } from './types.js';

/**
 * Classification metrics as scikit-learn computes them: per-class precision, recall and F1 from a
 * confusion matrix; ROC (AUC by the trapezoid rule) and precision-recall curves (average precision,
 * a step sum, not interpolated) from binary scores. A ratio with a zero denominator is NaN (shown as
 * "—"), where sklearn warns and substitutes 0.
 */

export interface ClassMetrics {
  className: string;
  precision: number;
  recall: number;
  f1: number;
  /** true examples of the class. */
  support: number;
}

export function perClassMetrics(c: ConfusionMatrix): ClassMetrics[] {
  return c.classNames.map((className, k) => {
    const tp = c.matrix[k]?.[k] ?? 0;
    const support = (c.matrix[k] ?? []).reduce((a, b) => a + b, 0);
    const predicted = c.matrix.reduce((a, row) => a + (row[k] ?? 0), 0);
    const precision = predicted > 0 ? tp / predicted : NaN;
    const recall = support > 0 ? tp / support : NaN;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : NaN;
    return { className, precision, recall, f1, support };
  });
}

/**
 * ROC and precision-recall curves of scores for the positive class (label 1), one point per
 * distinct score, from the strictest threshold down. Undefined when a class is absent (no curve).
 */
export function binaryCurves(scores: ArrayLike<number>, labels: ArrayLike<number>): BinaryCurves | undefined {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const positives = order.reduce((n, i) => n + (labels[i] === 1 ? 1 : 0), 0);
  const negatives = order.length - positives;
  if (positives === 0 || negatives === 0) return undefined;
  const roc = [{ fpr: 0, tpr: 0 }];
  const pr: { recall: number; precision: number }[] = [];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < order.length; k++) {
    if (labels[order[k]] === 1) tp++;
    else fp++;
    // examples with equal scores fall on the same side of every threshold: one point for the tie
    if (k + 1 < order.length && scores[order[k + 1]] === scores[order[k]]) continue;
    roc.push({ fpr: fp / negatives, tpr: tp / positives });
    pr.push({ recall: tp / positives, precision: tp / (tp + fp) });
  }
  let rocAuc = 0;
  for (let k = 1; k < roc.length; k++) rocAuc += ((roc[k].fpr - roc[k - 1].fpr) * (roc[k].tpr + roc[k - 1].tpr)) / 2;
  let averagePrecision = 0;
  let previousRecall = 0;
  for (const p of pr) {
    averagePrecision += (p.recall - previousRecall) * p.precision;
    previousRecall = p.recall;
  }
  return { positives, negatives, roc, rocAuc, pr, averagePrecision };
}
