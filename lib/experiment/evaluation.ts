import { describeSourceRef, type SourceRef, thumbnailJpeg } from '../data/index.js';
import type { ConfusionMatrix, WrongPrediction } from '../reports/types.js';
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

/** The validation images the model got wrong with the most confidence, with thumbnails. */
export async function mostConfidentlyWrong(
  result: EvaluateResult,
  classNames: string[],
  sourceRef: (key: string) => SourceRef | undefined,
  count = 12,
): Promise<WrongPrediction[]> {
  const { predicted, confidence } = predictedClasses(result);
  const wrong = predicted.map((p, i) => ({ i, p })).filter(({ i, p }) => p !== result.labels[i]);
  wrong.sort((a, b) => confidence[b.i] - confidence[a.i]);
  const out: WrongPrediction[] = [];
  for (const { i, p } of wrong.slice(0, count)) {
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
  return out;
}
