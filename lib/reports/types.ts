/** What a `compare` run records, and what plots and reports are rendered from. */
import type { DatasetSummary } from '../data/summary.js';

export type { DatasetSummary };

export interface EpochHistory {
  loss: number[];
  accuracy: number[];
  val_loss: number[];
  val_accuracy: number[];
}

/** A model's history with the optimizer's rate at the end of each epoch (Keras 3's `learning_rate`; absent in older runs). */
export interface RunHistory extends EpochHistory {
  learning_rate?: number[];
}

export interface ConfusionMatrix {
  /** classNames[i] labels row i (true class) and column i (predicted class). */
  classNames: string[];
  /** matrix[true][predicted] = count */
  matrix: number[][];
}

/** A validation image in a report gallery: the most confidently right or wrong. */
export interface GalleryPrediction {
  /** path of the source image as read (file path, or `archive.zip:PetImages/Cat/1.jpg`). */
  source: string;
  key: string;
  trueClass: string;
  predictedClass: string;
  /** probability the model gave to its predicted class. */
  confidence: number;
  /** small JPEG thumbnail, base64, so the report stays self-contained. */
  thumbnailBase64?: string;
  /** PNG, base64: the thumbnail under the Grad-CAM heat map of the predicted class (convolutional models). */
  gradCamBase64?: string;
}

export type WrongPrediction = GalleryPrediction;

/** ROC and precision-recall curves of a binary task, the positive class being class 1. */
export interface BinaryCurves {
  positives: number;
  negatives: number;
  roc: { fpr: number; tpr: number }[];
  /** area under the ROC curve, trapezoid rule. */
  rocAuc: number;
  pr: { recall: number; precision: number }[];
  /** scikit-learn's average_precision_score: sum of (R_n - R_n-1) * P_n. */
  averagePrecision: number;
}

export interface ModelRunSummary {
  /** short id such as `cnn` or `transfer`, used in file names. */
  name: string;
  /** label shown in charts and tables, e.g. `CNN`, `TRANSFER`. */
  label: string;
  history: RunHistory;
  /**
   * The lowest per-epoch val_loss and its (1-based) epoch: the epoch ModelCheckpoint saved as
   * `best/`. val_accuracy is that same epoch's, not the highest (see bestAccuracy).
   */
  best: { epoch: number; val_loss: number; val_accuracy: number };
  /** The highest per-epoch val_accuracy and its (1-based) epoch. */
  bestAccuracy?: { epoch: number; val_accuracy: number };
  /** The last epoch's per-epoch validation figures. */
  final: { val_loss: number; val_accuracy: number };
  /** `best/` evaluated on the whole validation split: the weights of predict, confusion and gallery. */
  checkpoint?: CheckpointEvaluation;
  timings?: ModelTimings;
  params: { total: number; trainable: number; nonTrainable: number };
  /** seconds per epoch, one entry per epoch. */
  epochSeconds: number[];
  msPerStep?: number;
  /** Keras-style `summary()` text. */
  summaryText: string;
  confusion?: ConfusionMatrix;
  mostConfidentlyWrong?: WrongPrediction[];
  /** the validation images the checkpoint got right with the most confidence. */
  mostConfidentlyCorrect?: GalleryPrediction[];
  /** binary tasks: ROC and precision-recall curves of the checkpoint on the whole validation split. */
  curves?: BinaryCurves;
  /** set when this model's training failed; the other model's results still stand. */
  error?: string;
}

/** The one checkpoint that `predict`, the confusion matrix and the gallery all use. */
export interface CheckpointEvaluation {
  /** folder in the model's run folder: `best` (chosen on val_loss, as Keras's ModelCheckpoint). */
  name: string;
  /** 1-based epoch whose weights these are. */
  epoch: number;
  val_loss: number;
  val_accuracy: number;
  /** validation images evaluated: the whole split. */
  examples: number;
}

/** Where a model's wall time went, in seconds; totalSeconds is the sum of the parts. */
export interface ModelTimings {
  /** listing and decoding the images (the decode cache): done once per run, counted in each model that needed it. */
  dataSeconds: number;
  /** the frozen base over both splits (transfer model with the feature cache); 0 otherwise. */
  featureExtractionSeconds: number;
  /** every epoch, its validation included. */
  trainingSeconds: number;
  /** the checkpoint on the whole validation split, confusion matrix and gallery. */
  evaluationSeconds: number;
  totalSeconds: number;
}

/**
 * What the per-epoch validation figures (history, best, bestAccuracy, final) were computed on:
 * the whole split, or with --faithful a window of `window.steps` batches drawn from a repeating
 * stream of it (Keras's validation_steps), a different window each epoch.
 */
export interface ValidationSummary {
  /** images in the validation split: what the checkpoint is evaluated on. */
  examples: number;
  window?: { steps: number; batchSize: number };
}

export interface RunSummary {
  title: string;
  createdAt: string;
  config: Record<string, unknown>;
  environment: Record<string, unknown>;
  dataset: DatasetSummary;
  validation?: ValidationSummary;
  models: ModelRunSummary[];
}
