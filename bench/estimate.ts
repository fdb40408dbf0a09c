/**
 * The whole original experiment's wall time, estimated from measured rates (seconds):
 *
 *   T = D / decode                                   decode all D = 23,262 images once
 *     + E * (N / cnnTrain + V / cnnEval)             CNN: E = 20 epochs of N = 18,610, full validation of V = 4,652
 *     + D / vggFeatures                              VGG16 features once for all D images
 *     + E * (ceil(N / 64) * headStep + V / headEval) head: E epochs on cached features, batch 64
 *
 * cnnTrain is the real-epoch rate (fit from the decoded cache), headStep the real head step (fit
 * from the feature cache). For bf16, cnnTrain and vggFeatures are the bf16 rates; evaluation and
 * decoding keep their fp32 rates.
 */
export const SEED_EXPERIMENT = { images: 23_262, train: 18_610, validation: 4_652, epochs: 20, batch: 64 } as const;

export interface EstimateRates {
  decodeImgPerSec: number | null;
  cnnTrainImgPerSec: number | null;
  cnnEvalImgPerSec: number | null;
  vggFeaturesImgPerSec: number | null;
  headStepMs: number | null;
  headEvalImgPerSec: number | null;
}

/** Seconds, or null when a rate is missing. */
export function seedExperimentSeconds(r: EstimateRates): number | null {
  const rates = Object.values(r);
  if (rates.some((v) => v === null || !(v > 0))) return null;
  const { images: D, train: N, validation: V, epochs: E, batch } = SEED_EXPERIMENT;
  return (
    D / r.decodeImgPerSec! +
    E * (N / r.cnnTrainImgPerSec! + V / r.cnnEvalImgPerSec!) +
    D / r.vggFeaturesImgPerSec! +
    E * (Math.ceil(N / batch) * (r.headStepMs! / 1000) + V / r.headEvalImgPerSec!)
  );
}
