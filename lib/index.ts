/**
 * TransferLab: Keras-like transfer learning in TypeScript, computed by libtorch.
 *
 *   import { sequential, layers } from 'transferlab';
 */

export type { Backbone } from './applications/backbone.js';
export { preprocessInput } from './applications/preprocess-input.js';
export { type FromTfjsOptions, featureLayerCandidates, fromTfjs } from './applications/tfjs.js';
export { TransferModel, type TransferModelOptions, transferModel } from './applications/transfer-model.js';
export {
  MissingWeightsError,
  VGG16_PREPROCESSING,
  VGG16_WEIGHTS_ARTIFACT,
  type Vgg16Options,
  vgg16,
  vgg16Layers,
} from './applications/vgg16.js';
export { APPLICATION_WEIGHTS } from './applications/weights-registry.js';
export * from './data/index.js';
export {
  barrier,
  DataParallel,
  destroyDistributed,
  distributedInfo,
  type InitDistributedOptions,
  initDistributed,
  isChief,
  type ProcessGroupInfo,
} from './distributed/index.js';
export { emptyCache } from './engine/memory.js';
export { native } from './engine/native.js';
export { runCompare } from './experiment/compare.js';
export { type CompareConfig, DEFAULT_CONFIG } from './experiment/config.js';
export type { LayerConfig, LayerWeights, SequentialConfig, Shape, WeightTensor } from './keras-format/config.js';
export { layers } from './models/layers.js';
export {
  CosineDecay,
  ExponentialDecay,
  LearningRateSchedule,
  PiecewiseConstantDecay,
  schedules,
} from './models/learning-rate-schedules.js';
export { type Bf16Support, type DtypePolicy, type DtypePolicyName, mixedPrecision } from './models/mixed-precision.js';
export {
  type AdamOptions,
  type LearningRate,
  type OptimizerSpec,
  optimizers,
  type RmspropOptions,
  type SgdOptions,
} from './models/optimizers.js';
export type { Preprocessing } from './models/preprocessing.js';
export { type CompileOptions, type DeviceName, Sequential, type SequentialOptions, sequential } from './models/sequential.js';
export { defaultHeadLayers, experimentCnn, experimentCnnLayers } from './models/zoo.js';
export { type Artifact, fetchArtifact, locateArtifact } from './net/artifacts.js';
export { writeRunReport } from './reports/write-report.js';
export { loadModel, restoreCheckpoint, saveModel } from './saving/persistence.js';
export { type Callback, EarlyStopping, ModelCheckpoint } from './training/callbacks.js';
export { cachedFeatures, FeatureDataset } from './training/feature-cache.js';
export { type EvaluateResult, type FitOptions, NaNLossError } from './training/fit.js';
export { History } from './training/history.js';
export { type LrFindOptions, type LrFindResult, lrFind } from './training/lr-finder.js';
export { ReduceLROnPlateau, type ReduceLROnPlateauOptions } from './training/reduce-lr-on-plateau.js';
export { OptionError } from './util/option-error.js';
