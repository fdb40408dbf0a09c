/**
 * TransferLab: Keras-like transfer learning in TypeScript, computed by libtorch.
 *
 *   import { sequential, layers } from 'transferlab';
 */
export { sequential, Sequential, type CompileOptions, type SequentialOptions } from './models/sequential.js';
export { layers } from './models/layers.js';
export { optimizers, type OptimizerSpec, type AdamOptions, type SgdOptions, type RmspropOptions } from './models/optimizers.js';
export type { LayerConfig, LayerWeights, SequentialConfig, WeightTensor, Shape } from './models/config.js';
export { experimentCnn, experimentCnnLayers, vgg16BaseLayers, defaultHeadLayers } from './models/zoo.js';
export { loadVgg16Backbone, loadTfjsBackbone, type Backbone } from './models/backbones.js';
export { saveModel, loadModel, restoreCheckpoint } from './models/persistence.js';
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
