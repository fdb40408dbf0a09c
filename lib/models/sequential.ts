import type { Dataset } from '../data/types.js';
import { type DeviceName, type EngineLayerSpec, type NativeModel, native } from '../engine/native.js';
import type { LayerConfig, LayerWeights, SequentialConfig, Shape, WeightTensor } from '../keras-format/config.js';
import { type EvaluateResult, evaluate, type FitOptions, fit } from '../training/fit.js';
import type { History } from '../training/history.js';
import { nameLayers } from './layers.js';
import { type OptimizerSpec, resolveOptimizer } from './optimizers.js';
import { type Preprocessing, preprocessingSpec } from './preprocessing.js';
import { LayerConfigError, type ResolvedLayer, resolveChain } from './resolve.js';
import { countParams, formatSummary, type ParamCounts } from './summary.js';

export type { DeviceName };

/** Keras losses: categorical takes one-hot label rows, sparse categorical integer class indices. */
export type LossName =
  | 'binaryCrossentropy'
  | 'categoricalCrossentropy'
  | 'sparseCategoricalCrossentropy'
  | 'binary_crossentropy'
  | 'categorical_crossentropy'
  | 'sparse_categorical_crossentropy';

export interface CompileOptions {
  /** 'adam', 'sgd', 'rmsprop' (Keras defaults) or settings, e.g. `optimizers.sgd({ momentum: 0.9 })`. */
  optimizer: OptimizerSpec;
  loss: LossName;
  metrics?: 'accuracy'[];
}

export interface SequentialOptions {
  name?: string;
  /** What the engine does to raw 0-255 pixels first (default `scale01`, the experiment's x / 255). */
  preprocessing?: Preprocessing;
  /** Seed for the Keras initialisers and dropout. */
  seed?: number;
  /** Input shape when no layer carries `inputShape` / `batch_input_shape`. */
  inputShape?: Shape;
  /** Where the engine keeps the weights and runs batches: 'cpu' (default), 'cuda', 'cuda:N' or 'auto' (cuda when available). */
  device?: DeviceName;
}

const SNAKE_LOSS: Record<LossName, string> = {
  binaryCrossentropy: 'binary_crossentropy',
  binary_crossentropy: 'binary_crossentropy',
  categoricalCrossentropy: 'categorical_crossentropy',
  categorical_crossentropy: 'categorical_crossentropy',
  sparseCategoricalCrossentropy: 'sparse_categorical_crossentropy',
  sparse_categorical_crossentropy: 'sparse_categorical_crossentropy',
};

/**
 * A Keras-style Sequential model. The description (Keras layer configs) lives here, in TypeScript;
 * the tensors live in the native engine, created on first use.
 */
export class Sequential {
  readonly name: string;
  readonly inputShape: Shape;
  readonly preprocessing: Preprocessing;
  readonly seed: number;
  readonly device: DeviceName;
  /** set by callbacks (EarlyStopping) to end `fit` after the current epoch, as in Keras. */
  stopTraining = false;
  private resolved: ResolvedLayer[];
  private engineModel?: NativeModel;
  private compileOptions?: CompileOptions;

  constructor(configs: LayerConfig[], options: SequentialOptions = {}) {
    this.name = options.name ?? 'sequential';
    this.preprocessing = options.preprocessing ?? 'scale01';
    this.seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
    this.device = options.device ?? 'cpu';
    if (configs.length === 0) throw new LayerConfigError('a Sequential model needs at least one layer');
    const named = nameLayers(configs);
    const declared = named[0].config.batch_input_shape as (number | null)[] | undefined;
    const inputShape = options.inputShape ?? declared?.slice(1);
    if (!inputShape || inputShape.some((d) => typeof d !== 'number' || d <= 0)) {
      throw new LayerConfigError(
        `the first layer ('${named[0].config.name}') needs inputShape, e.g. [300, 300, 3]; got ${JSON.stringify(inputShape ?? null)}`,
      );
    }
    this.inputShape = inputShape as number[];
    const layers = named.filter((c) => c.class_name !== 'InputLayer');
    if (named[0].class_name !== 'InputLayer' || options.inputShape) {
      // keep batch_input_shape on the first real layer, where Keras's Sequential keeps it
      layers[0] = { class_name: layers[0].class_name, config: { ...layers[0].config, batch_input_shape: [null, ...this.inputShape] } };
    }
    this.resolved = resolveChain(layers, this.inputShape);
  }

  get layers(): readonly ResolvedLayer[] {
    return this.resolved;
  }

  get outputShape(): Shape {
    return this.resolved[this.resolved.length - 1].outputShape;
  }

  /** Index of a layer by name (Keras `model.get_layer(name)`). */
  layerIndex(name: string): number {
    const i = this.resolved.findIndex((l) => l.config.config.name === name);
    if (i < 0)
      throw new Error(`model '${this.name}' has no layer '${name}' (layers: ${this.resolved.map((l) => l.config.config.name).join(', ')})`);
    return i;
  }

  countParams(): ParamCounts {
    return countParams(this.resolved);
  }

  /** Keras-style summary table; printed unless `print` is false. */
  summary(print: ((line: string) => void) | false = console.log): string {
    const text = formatSummary(this.name, this.resolved);
    if (print) print(text);
    return text;
  }

  toConfig(): SequentialConfig {
    return { class_name: 'Sequential', config: { name: this.name, layers: this.resolved.map((l) => l.config) } };
  }

  /** Keras `layer.trainable = ...`; takes effect for the next `fit` (like Keras, recompile after). */
  setTrainable(layer: number | string, trainable: boolean): void {
    const i = typeof layer === 'number' ? layer : this.layerIndex(layer);
    const r = this.resolved[i];
    if (r.spec) this.engineModel?.setTrainable(this.engineIndex(i), trainable); // first: it refuses while a step runs
    r.config = { class_name: r.config.class_name, config: { ...r.config.config, trainable } };
    if (r.spec) r.spec = { ...r.spec, trainable };
  }

  compile(options: CompileOptions): void {
    const loss = Object.hasOwn(SNAKE_LOSS, options.loss) ? SNAKE_LOSS[options.loss] : undefined;
    if (!loss) throw new Error(`unknown loss '${String(options.loss)}': use one of ${Object.keys(SNAKE_LOSS).join(', ')}`);
    const optimizer = resolveOptimizer(options.optimizer);
    if (options.metrics?.some((m) => m !== 'accuracy')) throw new Error(`only the 'accuracy' metric is supported`);
    this.engine.compile({ loss, ...optimizer });
    this.compileOptions = options;
  }

  get compiled(): CompileOptions | undefined {
    return this.compileOptions;
  }

  fit(data: Dataset, options: FitOptions = {}): Promise<History> {
    return fit(this, data, options);
  }

  evaluate(data: Dataset, options: { fromLayer?: number; steps?: number } = {}): Promise<EvaluateResult> {
    return evaluate(this, data, options);
  }

  /**
   * Outputs for a batch of NHWC inputs (uint8 pixels, or float32 outputs of layer `fromLayer - 1`).
   * `toLayer` (exclusive) cuts the model, e.g. to extract features of a frozen base.
   */
  async predict(
    x: Uint8Array | Float32Array,
    shape: Shape,
    options: { fromLayer?: number; toLayer?: number; bf16?: boolean } = {},
  ): Promise<{ output: Float32Array; shape: Shape }> {
    const from = options.fromLayer ?? 0;
    const to = options.toLayer ?? this.resolved.length;
    this.checkInput(shape, from);
    return this.engine.predict(x, shape, this.engineIndex(from, true), this.engineIndex(to, true), options.bf16 ?? false);
  }

  /** Throws a clear error when a batch does not fit the layer it enters at. */
  checkInput(shape: Shape, fromLayer = 0): void {
    const expected = fromLayer === 0 ? this.inputShape : this.resolved[fromLayer - 1].outputShape;
    const got = shape.slice(1);
    if (got.length !== expected.length || got.some((d, i) => d !== expected[i])) {
      const where = fromLayer === 0 ? `model '${this.name}'` : `layer '${this.resolved[fromLayer].config.config.name}'`;
      throw new Error(`${where} expects inputs of shape (None, ${expected.join(', ')}) but got (${shape.join(', ')})`);
    }
  }

  getLayerWeights(layer: number | string): WeightTensor[] {
    const i = typeof layer === 'number' ? layer : this.layerIndex(layer);
    const r = this.resolved[i];
    if (r.weights.length === 0) return [];
    const data = this.engine.getWeights(this.engineIndex(i));
    return r.weights.map((w, k) => ({ name: `${r.config.config.name}/${w.name}`, shape: w.shape, data: data[k] }));
  }

  setLayerWeights(layer: number | string, values: Float32Array[]): void {
    const i = typeof layer === 'number' ? layer : this.layerIndex(layer);
    const r = this.resolved[i];
    if (values.length !== r.weights.length) {
      throw new Error(
        `layer '${r.config.config.name}' has ${r.weights.length} weights (${r.weights.map((w) => w.name).join(', ') || 'none'}), got ${values.length}`,
      );
    }
    values.forEach((v, k) => {
      const expected = r.weights[k].shape.reduce((a, b) => a * b, 1);
      if (v.length !== expected) {
        throw new Error(
          `layer '${r.config.config.name}' weight '${r.weights[k].name}' needs shape [${r.weights[k].shape.join(', ')}] (${expected} values), got ${v.length} values`,
        );
      }
    });
    this.engine.setWeights(this.engineIndex(i), values);
  }

  /** All weights, grouped by layer, in Keras layout and order. */
  getWeights(): LayerWeights[] {
    return this.resolved
      .map((r, i) => ({ layerName: r.config.config.name, weights: this.getLayerWeights(i) }))
      .filter((l) => l.weights.length > 0);
  }

  /** Loads weights by layer name (shapes checked); layers not mentioned keep their values. */
  setWeights(layers: LayerWeights[]): void {
    for (const l of layers)
      this.setLayerWeights(
        l.layerName,
        l.weights.map((w) => w.data),
      );
  }

  /** The native model (created on first use). */
  get engine(): NativeModel {
    if (!this.engineModel) {
      const specs: EngineLayerSpec[] = [];
      const pre = preprocessingSpec(this.preprocessing);
      if (pre) specs.push({ ...pre, inputShape: this.inputShape });
      for (const r of this.resolved) if (r.spec) specs.push(r.spec);
      this.engineModel = new (native().NativeModel)(specs, { seed: this.seed, device: this.device });
    }
    return this.engineModel;
  }

  /**
   * Engine index of Keras layer `i`. The preprocessing step is engine layer 0; with `atBoundary`,
   * entering at layer 0 includes it, and index `length` means "after the last layer".
   */
  engineIndex(i: number, atBoundary = false): number {
    if (i < 0 || i > this.resolved.length || (!atBoundary && i === this.resolved.length)) {
      throw new RangeError(`layer index ${i} is outside 0..${this.resolved.length - 1}`);
    }
    const offset = preprocessingSpec(this.preprocessing) ? 1 : 0;
    if (atBoundary && i === 0) return 0;
    const skipped = this.resolved.slice(0, i).filter((r) => !r.spec).length;
    return i + offset - skipped;
  }
}

export function sequential(layers: LayerConfig[], options?: SequentialOptions): Sequential {
  return new Sequential(layers, options);
}
