import { describeSourceRef, type SourceRef, thumbnailJpeg } from '../data/index.js';
import { binaryCurves } from '../reports/metrics.js';
import type { BinaryCurves, ConfusionMatrix, GalleryPrediction } from '../reports/types.js';
import type { EvaluateResult } from '../training/fit.js';

/**
 * The class a model output row stands for, and the probability given to it: threshold 0.5 for a
 * single sigmoid output (class 1 above it), argmax of a softmax otherwise.
 */
export function classify(row: ArrayLike<number>): { cls: number; probability: number } {
  if (row.length === 1) return row[0] > 0.5 ? { cls: 1, probability: row[0] } : { cls: 0, probability: 1 - row[0] };
  let best = 0;
  for (let k = 1; k < row.length; k++) if (row[k] > row[best]) best = k;
  return { cls: best, probability: row[best] };
}

/** Predicted class per example, with its probability. */
export function predictedClasses(result: EvaluateResult): { predicted: number[]; confidence: number[] } {
  const n = result.labels.length;
  const width = n ? result.outputs.length / n : 1;
  const predicted: number[] = [];
  const confidence: number[] = [];
  for (let i = 0; i < n; i++) {
    const { cls, probability } = classify(result.outputs.subarray(i * width, (i + 1) * width));
    predicted.push(cls);
    confidence.push(probability);
  }
  return { predicted, confidence };
}

export function confusionMatrix(result: EvaluateResult, classNames: string[]): ConfusionMatrix {
  const { predicted } = predictedClasses(result);
  const matrix = classNames.map(() => classNames.map(() => 0));
  predicted.forEach((p, i) => matrix[result.labels[i]][p]++);
  return { classNames, matrix };
}

/**
 * Scores for the positive class (class 1) of a binary task, one per example: the sigmoid output,
 * or the second softmax column; undefined for more than two classes.
 */
export function positiveScores(result: EvaluateResult): Float32Array | undefined {
  const n = result.labels.length;
  const width = n ? result.outputs.length / n : 1;
  if (width === 1) return result.outputs;
  if (width === 2) return Float32Array.from({ length: n }, (_, i) => result.outputs[i * 2 + 1]!);
  return undefined;
}

/** ROC and precision-recall curves of a binary task's validation outputs. */
export function validationCurves(result: EvaluateResult, classNames: string[]): BinaryCurves | undefined {
  const scores = classNames.length === 2 ? positiveScores(result) : undefined;
  return scores && binaryCurves(scores, result.labels);
}

export interface GalleryOptions {
  /** the most confident correct predictions, or the most confident wrong ones. */
  correct: boolean;
  count?: number;
  /** PNG overlays (Grad-CAM) of the picked images for their predicted classes; a missing entry leaves that image without one. */
  overlays?: (picks: { ref: SourceRef; cls: number }[]) => Promise<Buffer[]>;
}

/** The validation images predicted right (or wrong) with the most confidence, with thumbnails. */
export async function mostConfident(
  result: EvaluateResult,
  classNames: string[],
  sourceRef: (key: string) => SourceRef | undefined,
  options: GalleryOptions,
): Promise<GalleryPrediction[]> {
  const { predicted, confidence } = predictedClasses(result);
  const picked = predicted
    .map((p, i) => ({ i, p }))
    .filter(({ i, p }) => (p === result.labels[i]) === options.correct)
    .sort((a, b) => confidence[b.i] - confidence[a.i])
    .slice(0, options.count ?? 12);
  const out: GalleryPrediction[] = [];
  for (const { i, p } of picked) {
    const key = result.keys[i] ?? String(i);
    const ref = sourceRef(key);
    let thumbnailBase64: string | undefined;
    if (ref) thumbnailBase64 = (await thumbnailJpeg(ref, 128).catch(() => undefined))?.toString('base64');
    out.push({
      source: ref ? describeSourceRef(ref) : key,
      key,
      trueClass: classNames[result.labels[i]],
      predictedClass: classNames[p],
      confidence: confidence[i],
      thumbnailBase64,
    });
  }
  if (options.overlays) {
    const withImages = picked
      .map(({ i, p }, k) => ({ k, ref: sourceRef(result.keys[i] ?? String(i)), cls: p }))
      .filter((w) => w.ref && out[w.k]!.thumbnailBase64);
    const pngs = await options.overlays(withImages.map((w) => ({ ref: w.ref!, cls: w.cls })));
    withImages.forEach((w, j) => {
      out[w.k]!.gradCamBase64 = pngs[j]?.toString('base64');
    });
  }
  return out;
}
