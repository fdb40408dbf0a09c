import type { ConfusionMatrix, WrongPrediction } from '../reports/types.js';
import type { EvaluateResult } from '../training/fit.js';
import { thumbnailJpeg, describeSourceRef, type SourceRef } from '../data/index.js';

/** Predicted class per example: threshold 0.5 for one sigmoid output, argmax otherwise. */
export function predictedClasses(result: EvaluateResult): { predicted: number[]; confidence: number[] } {
  const n = result.labels.length;
  const width = n ? result.outputs.length / n : 1;
  const predicted: number[] = [];
  const confidence: number[] = [];
  for (let i = 0; i < n; i++) {
    if (width === 1) {
      const p = result.outputs[i];
      predicted.push(p > 0.5 ? 1 : 0);
      confidence.push(p > 0.5 ? p : 1 - p);
    } else {
      let best = 0;
      for (let k = 1; k < width; k++) if (result.outputs[i * width + k] > result.outputs[i * width + best]) best = k;
      predicted.push(best);
      confidence.push(result.outputs[i * width + best]);
    }
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
  result: EvaluateResult, classNames: string[], sourceRef: (key: string) => SourceRef | undefined, count = 12,
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
      source: ref ? describeSourceRef(ref) : key, key, trueClass: classNames[result.labels[i]], predictedClass: classNames[p],
      confidence: confidence[i], thumbnailBase64,
    });
  }
  return out;
}
