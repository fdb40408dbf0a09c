import { DEFAULT_SEED } from '../config/defaults.js';
import type { ConvAlgorithm } from '../engine/native.js';
import type { MixedPrecisionFlag } from '../models/mixed-precision.js';
import type { Preprocessing } from '../models/preprocessing.js';
import type { DeviceName } from '../models/sequential.js';

/** One `--resume` that changed settings: `changed[flag] = [old, new]`. */
export interface ConfigChange {
  at: string;
  changed: Record<string, [unknown, unknown]>;
}

/** Everything a `compare` run depends on; written to `config.json` and read back by `--resume`. */
export interface CompareConfig {
  /** extracted PetImages folder (or its parent) */
  dataDir?: string;
  /** kagglecatsanddogs_5340.zip, read in place */
  archive?: string;
  /** any `root/<class>/*.jpg` folder instead of cats_vs_dogs */
  imageFolder?: string;
  /** download the cats_vs_dogs archive when no source is given */
  download: boolean;
  splits: [string, string];
  imageSize: [number, number];
  batchSize: number;
  epochs: number;
  limit?: number;
  models: ModelKind[];
  /** `vgg16` or the path of a TF.js layers model.json */
  backbone: string;
  backboneOutput?: string;
  /** Keras HDF5 weights for VGG16 */
  weights?: string;
  /** preprocessing of the transfer model's input (default: scale01 for VGG16 as in the experiment, tf for TF.js models) */
  preprocess?: Preprocessing;
  headUnits: number[];
  featureCache: boolean;
  /** augmentation policy (`--augment`, see augment-policy.ts); absent: none */
  augment?: string;
  /** with augment, cache the frozen base's features of this many augmented passes and cycle through them */
  augmentCacheEpochs?: number;
  /** bf16: the Keras policy 'mixed_bfloat16' for training, evaluation and feature extraction (float32 where the CPU lacks bf16) */
  mixedPrecision: MixedPrecisionFlag;
  fineTuneEpochs: number;
  fineTuneLayers: number;
  fineTuneLearningRate: number;
  learningRate: number;
  /** `--lr-schedule` as given, e.g. `exponential:decay_steps=1000,decay_rate=0.9` (parsed by learning-rate-options) */
  lrSchedule?: string;
  /** `--reduce-lr-on-plateau` settings as given ('' for Keras's defaults) */
  reduceLrOnPlateau?: string;
  seed: number;
  threads: number;
  /** float32 convolutions: auto (Winograd for 3x3 layers with >= 16 channels), direct or winograd (native().setConvAlgorithm); older runs' configs lack it (read as auto) */
  convAlgorithm: ConvAlgorithm;
  /** cpu, cuda (each worker's own GPU), cuda:N or auto; absent in runs from before devices (cpu) */
  device?: DeviceName;
  shuffleSeed?: number;
  faithful: boolean;
  cacheDir?: string;
  out: string;
  /** settings changed by `--resume`, oldest first */
  history?: ConfigChange[];
}

export type ModelKind = 'cnn' | 'transfer';

export const DEFAULT_CONFIG: Omit<CompareConfig, 'out'> = {
  download: true,
  splits: ['train[:80%]', 'train[-20%:]'],
  imageSize: [300, 300],
  batchSize: 64,
  epochs: 20,
  models: ['cnn', 'transfer'],
  backbone: 'vgg16',
  headUnits: [64],
  featureCache: true,
  mixedPrecision: 'fp32',
  fineTuneEpochs: 0,
  fineTuneLayers: 4,
  fineTuneLearningRate: 1e-5,
  learningRate: 1e-3,
  seed: DEFAULT_SEED,
  threads: 0,
  convAlgorithm: 'auto',
  device: 'cpu',
  faithful: false,
};

/**
 * The original's schedule: `steps_per_epoch = int(n_train * 0.8) // 64 + 1` and
 * `validation_steps = int(n_val * 0.2) // 64 + 1` over repeating streams (233 and 15 for the full
 * dataset), which docs/experiment.md documents as a quirk to reproduce, not a recommendation.
 */
export function faithfulSchedule(
  trainSize: number,
  validationSize: number,
  batchSize: number,
): { stepsPerEpoch: number; validationSteps: number } {
  return {
    stepsPerEpoch: Math.floor(Math.floor(trainSize * 0.8) / batchSize) + 1,
    validationSteps: Math.floor(Math.floor(validationSize * 0.2) / batchSize) + 1,
  };
}

export const MODEL_LABELS: Record<ModelKind, string> = { cnn: 'CNN', transfer: 'TRANSFER' };
