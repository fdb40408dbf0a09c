import type { Dataset } from '../data/types.js';
import { type DeviceName, type EngineLayerSpec, type NativeModel, native } from '../engine/native.js';
import type { LayerConfig, LayerWeights, SequentialConfig, Shape, WeightTensor } from '../keras-format/config.js';
import { type EvaluateResult, evaluate, type FitOptions, fit } from '../training/fit.js';
import type { History } from '../training/history.js';
import { nameLayers } from './layers.js';
import type { LearningRateSchedule } from './learning-rate-schedules.js';
import {
  checkPolicyName,
  configPolicy,
  type DtypePolicy,
  type DtypePolicyName,
  dtypePolicy,
  mixedPrecision,
  runnablePolicy,
} from './mixed-precision.js';
import { learningRateSchedule, type OptimizerSpec, resolveOptimizer } from './optimizers.js';
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
  /** Dtype policy of the layers that choose none themselves (default: the global policy). */
  dtype?: DtypePolicyName;
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
  private policy: DtypePolicyName;
  private engineModel?: NativeModel;
  private compileOptions?: CompileOptions;
  private schedule?: LearningRateSchedule;
  private fixedRate = 0;

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
    this.policy = options.dtype ? checkPolicyName(options.dtype, `model '${this.name}'`) : mixedPrecision.globalPolicy().name;
    this.layerDtypePolicies(); // an unknown policy in a layer config fails here, not at the first step
  }

  /** The model's dtype policy: its layers' unless they choose their own (Keras `dtype_policy`). */
  get dtypePolicy(): DtypePolicy {
    return dtypePolicy(this.policy);
  }

  /** Changes the policy of the layers that choose none themselves, for the next step or prediction. */
  setDtypePolicy(name: DtypePolicyName): void {
    const policy = checkPolicyName(name, `model '${this.name}'`);
    if (this.engineModel) {
      const layers = this.layerDtypePolicies(policy);
      const runnable = runnablePolicy(policy);
      this.resolved.forEach((r, i) => {
        if (r.spec) this.engineModel?.setDtypePolicy(this.engineIndex(i), layers[i] === policy ? runnable : runnablePolicy(layers[i]));
      });
    }
    this.policy = policy;
  }

  /** Each layer's policy: its config's own choice, else the model's. */
  layerDtypePolicies(modelPolicy = this.policy): DtypePolicyName[] {
    return this.resolved.map((r) => configPolicy(r.config.config.dtype, `layer '${r.config.config.name}'`) ?? modelPolicy);
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
    const text = formatSummary(this.name, this.resolved, this.policy, this.layerDtypePolicies());
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
    this.schedule = learningRateSchedule(options.optimizer);
    this.fixedRate = optimizer.learningRate as number;
  }

  get learningRateSchedule(): LearningRateSchedule | undefined {
    return this.schedule;
  }

  get learningRate(): number {
    if (!this.compileOptions) throw new Error(`compile() model '${this.name}' before reading its learning rate`);
    return this.schedule ? this.schedule.call(this.engine.iterations()) : this.fixedRate;
  }

  set learningRate(rate: number) {
    if (!this.compileOptions) throw new Error(`compile() model '${this.name}' before setting its learning rate`);
    // as Keras: a rate set by hand would be overwritten by the schedule at the next step
    if (this.schedule)
      throw new Error(
        `model '${this.name}' was compiled with a learning-rate schedule (${this.schedule.constructor.name}): its rate cannot be set; use a fixed learningRate`,
      );
    if (!Number.isFinite(rate) || rate < 0) throw new Error(`learning rate must be a finite number >= 0, got ${rate}`);
    this.engine.setLearningRate(rate);
    this.fixedRate = rate;
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
   * `toLayer` (exclusive) cuts the model, e.g. to extract features of a frozen base. With `augment`,
   * the augmentation layers draw as in training (features of augmented images); otherwise they are the identity.
   */
  async predict(
    x: Uint8Array | Float32Array,
    shape: Shape,
    options: { fromLayer?: number; toLayer?: number; augment?: boolean } = {},
  ): Promise<{ output: Float32Array; shape: Shape }> {
    const from = options.fromLayer ?? 0;
    const to = options.toLayer ?? this.resolved.length;
    this.checkInput(shape, from);
    return this.engine.predict(x, shape, this.engineIndex(from, true), this.engineIndex(to, true), options.augment ?? false);
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
          `layer '${r.config.config.name}' weight '${r.weights[k].name}' needs shape [${r.weights[k].shape.join(', ')}] (${expected} values), got ` +
            `${v.length} values`,
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
      const policies = this.layerDtypePolicies();
      const specs: EngineLayerSpec[] = this.resolved.flatMap((r, i) =>
        r.spec ? [{ ...this.seeded(r.spec, i), dtype: runnablePolicy(policies[i]) }] : [],
      );
      const pre = preprocessingSpec(this.preprocessing);
      // leading augmentation layers see raw pixels, as Keras's augmentation before Rescaling does
      if (pre) specs.splice(this.leadingAugmentation, 0, { ...pre, inputShape: this.inputShape });
      this.engineModel = new (native().NativeModel)(specs, { seed: this.seed, device: this.device });
    }
    return this.engineModel;
  }

  /** An augmentation layer's generator seed: its Keras `seed`, or one from the model's seed and its position. */
  private seeded(spec: EngineLayerSpec, i: number): EngineLayerSpec {
    if (!spec.augment) return spec;
    const seed = (this.resolved[i].config.config.seed as number | null | undefined) ?? (this.seed + 7919 * (i + 1)) % 2 ** 31;
    return { ...spec, augment: { ...spec.augment, seed } };
  }

  /** How many layers at the start are augmentation layers (they run before the preprocessing step). */
  get leadingAugmentation(): number {
    const k = this.resolved.findIndex((r) => r.spec?.kind !== 'augment');
    return k < 0 ? this.resolved.length : k;
  }

  /**
   * Engine index of Keras layer `i`. The preprocessing step follows the leading augmentation layers
   * (engine layer 0 without them); with `atBoundary`, entering there includes it, and index
   * `length` means "after the last layer".
   */
  engineIndex(i: number, atBoundary = false): number {
    if (i < 0 || i > this.resolved.length || (!atBoundary && i === this.resolved.length)) {
      throw new RangeError(`layer index ${i} is outside 0..${this.resolved.length - 1}`);
    }
    const leading = this.leadingAugmentation;
    // entering at the first other layer includes the preprocessing; "after the last layer" too
    if (i < leading || (atBoundary && i === leading && i < this.resolved.length)) return i;
    const offset = preprocessingSpec(this.preprocessing) ? 1 : 0;
    const skipped = this.resolved.slice(0, i).filter((r) => !r.spec).length;
    return i + offset - skipped;
  }
}

export function sequential(layers: LayerConfig[], options?: SequentialOptions): Sequential {
  return new Sequential(layers, options);
}
