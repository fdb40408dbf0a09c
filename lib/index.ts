/**
 * TransferLab: Keras-like transfer learning in TypeScript, computed by libtorch.
 *
 *   import { sequential, layers } from 'transferlab';
 */
export { sequential, Sequential, type CompileOptions, type SequentialOptions } from './models/sequential.js';
export { layers } from './models/layers.js';
export { optimizers, type OptimizerSpec, type AdamOptions, type SgdOptions, type RmspropOptions } from './models/optimizers.js';
export type { LayerConfig, LayerWeights, SequentialConfig, WeightTensor, Shape } from './keras-format/config.js';
export { experimentCnn, experimentCnnLayers, defaultHeadLayers } from './models/zoo.js';
export type { Backbone } from './applications/backbone.js';
export { vgg16, vgg16Layers, MissingWeightsError, VGG16_PREPROCESSING, type Vgg16Options } from './applications/vgg16.js';
export { fromTfjs, featureLayerCandidates, type FromTfjsOptions } from './applications/tfjs.js';
export { preprocessInput } from './applications/preprocess-input.js';
export { transferModel, TransferModel, type TransferModelOptions } from './applications/transfer-model.js';
export { OptionError } from './util/option-error.js';
export { saveModel, loadModel, restoreCheckpoint } from './saving/persistence.js';
export type { Preprocessing } from './models/preprocessing.js';
export { History } from './training/history.js';
export { ModelCheckpoint, EarlyStopping, type Callback } from './training/callbacks.js';
export { NaNLossError, type FitOptions, type EvaluateResult } from './training/fit.js';
export { cachedFeatures, FeatureDataset } from './training/feature-cache.js';
export * from './data/index.js';
export { runCompare } from './experiment/compare.js';
export { DEFAULT_CONFIG, type CompareConfig } from './experiment/config.js';
export { native } from './engine/native.js';
export { fetchArtifact, locateArtifact } from './net/artifacts.js';
export { writeRunReport } from './reports/write-report.js';
