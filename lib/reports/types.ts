/** What a `compare` run records, and what plots and reports are rendered from. */
export interface EpochHistory {
  loss: number[];
  accuracy: number[];
  val_loss: number[];
  val_accuracy: number[];
}

export interface ConfusionMatrix {
  /** classNames[i] labels row i (true class) and column i (predicted class). */
  classNames: string[];
  /** matrix[true][predicted] = count */
  matrix: number[][];
}

export interface WrongPrediction {
  /** path of the source image as read (file path, or `archive.zip:PetImages/Cat/1.jpg`). */
  source: string;
  key: string;
  trueClass: string;
  predictedClass: string;
  /** probability the model gave to its (wrong) predicted class. */
  confidence: number;
  /** small JPEG thumbnail, base64, so the report stays self-contained. */
  thumbnailBase64?: string;
}

export interface ModelRunSummary {
  /** short id such as `cnn` or `transfer`, used in file names. */
  name: string;
  /** label shown in charts and tables, e.g. `CNN`, `TRANSFER`. */
  label: string;
  history: EpochHistory;
  best: { epoch: number; val_loss: number; val_accuracy: number };
  final: { val_loss: number; val_accuracy: number };
  params: { total: number; trainable: number; nonTrainable: number };
  /** seconds per epoch, one entry per epoch. */
  epochSeconds: number[];
  msPerStep?: number;
  /** Keras-style `summary()` text. */
  summaryText: string;
  confusion?: ConfusionMatrix;
  mostConfidentlyWrong?: WrongPrediction[];
  /** set when this model's training failed; the other model's results still stand. */
  error?: string;
}

export interface DatasetSummary {
  name: string;
  source: string;
  files: number;
  skippedByName: number;
  skippedByJfif: number;
  examples: number;
  splits: { train: number; validation: number };
  classNames: string[];
  classCounts?: { train: number[]; validation: number[] };
  decodeFailures: { path: string; reason: string }[];
}

export interface RunSummary {
  title: string;
  createdAt: string;
  config: Record<string, unknown>;
  environment: Record<string, unknown>;
  dataset: DatasetSummary;
  models: ModelRunSummary[];
}
