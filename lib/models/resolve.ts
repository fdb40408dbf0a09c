import type { EngineLayerSpec } from '../engine/native.js';
import type { LayerConfig, Shape } from '../keras-format/config.js';
import { AUGMENTATION_CLASSES, AugmentationConfigError, isAugmentation, resolveAugmentation } from './augmentation.js';

/**
 * Shape inference for Keras layer configs: output shapes, weight shapes (Keras layout) and the
 * engine's resolved description (explicit paddings, channel counts). Pure TypeScript, so
 * `summary()` and parameter counts work without the native engine.
 */
export interface WeightSpec {
  /** Keras weight name without the layer prefix: `kernel`, `bias`, `gamma`, ... */
  name: string;
  shape: Shape;
  /** false for BatchNormalization's moving statistics, which are never trained. */
  variable: boolean;
}

export interface ResolvedLayer {
  config: LayerConfig;
  inputShape: Shape;
  outputShape: Shape;
  weights: WeightSpec[];
  /** undefined for layers the engine does not need (InputLayer). */
  spec?: EngineLayerSpec;
}

export class LayerConfigError extends Error {}

type Cfg = Record<string, unknown>;

const SUPPORTED = [
  'InputLayer',
  'Conv2D',
  'DepthwiseConv2D',
  'MaxPooling2D',
  'AveragePooling2D',
  'Flatten',
  'Dense',
  'Dropout',
  'Activation',
  'ReLU',
  'LeakyReLU',
  'BatchNormalization',
  'ZeroPadding2D',
  'GlobalAveragePooling2D',
  'Reshape',
  ...AUGMENTATION_CLASSES,
];

function pairOf(value: unknown, fallback: [number, number]): [number, number] {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'number') return [value, value];
  if (Array.isArray(value) && value.length === 2) return [Number(value[0]), Number(value[1])];
  if (Array.isArray(value) && value.length === 1) return [Number(value[0]), Number(value[0])];
  throw new LayerConfigError(`expected a number or a pair, got ${JSON.stringify(value)}`);
}

/** TensorFlow's padding rule: 'same' gives ceil(in / stride), the odd pixel padded after. */
export function convOutput(
  size: number,
  kernel: number,
  stride: number,
  dilation: number,
  padding: string,
): { out: number; before: number; after: number } {
  const effective = (kernel - 1) * dilation + 1;
  if (padding === 'valid') {
    const out = Math.floor((size - effective) / stride) + 1;
    return { out, before: 0, after: 0 };
  }
  if (padding !== 'same') throw new LayerConfigError(`padding '${padding}' is not supported (use 'valid' or 'same')`);
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + effective - size, 0);
  const before = Math.floor(total / 2);
  return { out, before, after: total - before };
}

function activationName(cfg: Cfg): string {
  const a = cfg.activation;
  if (a === undefined || a === null) return 'linear';
  if (typeof a !== 'string') throw new LayerConfigError(`activation ${JSON.stringify(a)} is not supported`);
  if (!['linear', 'relu', 'relu6', 'sigmoid', 'softmax', 'tanh', 'elu'].includes(a)) {
    throw new LayerConfigError(`activation '${a}' is not supported (relu, relu6, sigmoid, softmax, tanh, elu, linear)`);
  }
  return a;
}

function requireRank(layer: string, shape: Shape, rank: number): void {
  if (shape.length !== rank) {
    throw new LayerConfigError(`layer '${layer}' needs an input of rank ${rank + 1} (batch + ${rank}), got (None, ${shape.join(', ')})`);
  }
}

export function resolveLayer(config: LayerConfig, inputShape: Shape): ResolvedLayer {
  const cfg = config.config as Cfg;
  const name = config.config.name;
  const trainable = config.config.trainable !== false;
  const common = { name, className: config.class_name, trainable, inputShape };
  const done = (outputShape: Shape, weights: WeightSpec[], spec?: EngineLayerSpec): ResolvedLayer => {
    for (const d of outputShape) {
      if (!Number.isInteger(d) || d <= 0) {
        throw new LayerConfigError(
          `layer '${name}' (${config.class_name}) would output (None, ${outputShape.join(', ')}) from input (None, ` +
            `${inputShape.join(', ')}): the input is too small`,
        );
      }
    }
    return { config, inputShape, outputShape, weights, spec };
  };
  if ((cfg.data_format ?? 'channels_last') !== 'channels_last') {
    throw new LayerConfigError(`layer '${name}': data_format '${String(cfg.data_format)}' is not supported (channels_last only)`);
  }
  if (isAugmentation(config.class_name)) {
    try {
      // the model gives each layer its seed (its Keras seed, or one from the model's)
      return done(inputShape, [], { ...common, kind: 'augment', augment: { ...resolveAugmentation(config, inputShape), seed: 0 } });
    } catch (error) {
      throw error instanceof AugmentationConfigError ? new LayerConfigError(error.message) : error;
    }
  }

  switch (config.class_name) {
    case 'InputLayer':
      return done(inputShape, []);
    case 'Conv2D':
    case 'DepthwiseConv2D': {
      requireRank(name, inputShape, 3);
      const [h, w, c] = inputShape;
      const depthwise = config.class_name === 'DepthwiseConv2D';
      const [kh, kw] = pairOf(cfg.kernel_size, [1, 1]);
      const [sh, sw] = pairOf(cfg.strides, [1, 1]);
      const [dh, dw] = pairOf(cfg.dilation_rate, [1, 1]);
      const padding = String(cfg.padding ?? 'valid');
      const y = convOutput(h, kh, sh, dh, padding);
      const x = convOutput(w, kw, sw, dw, padding);
      const multiplier = Number(cfg.depth_multiplier ?? 1);
      const filters = depthwise ? c * multiplier : Number(cfg.filters);
      const useBias = cfg.use_bias !== false;
      const weights: WeightSpec[] = [
        depthwise
          ? { name: 'depthwise_kernel', shape: [kh, kw, c, multiplier], variable: true }
          : { name: 'kernel', shape: [kh, kw, c, filters], variable: true },
      ];
      if (useBias) weights.push({ name: 'bias', shape: [filters], variable: true });
      return done([y.out, x.out, filters], weights, {
        ...common,
        kind: 'conv2d',
        activation: activationName(cfg),
        inChannels: c,
        filters,
        depthwise,
        depthMultiplier: multiplier,
        useBias,
        kernel: [kh, kw],
        strides: [sh, sw],
        dilation: [dh, dw],
        pad: [y.before, y.after, x.before, x.after],
      });
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      requireRank(name, inputShape, 3);
      const [h, w, c] = inputShape;
      const [ph, pw] = pairOf(cfg.pool_size, [2, 2]);
      const [sh, sw] = pairOf(cfg.strides, [ph, pw]);
      const padding = String(cfg.padding ?? 'valid');
      const y = convOutput(h, ph, sh, 1, padding);
      const x = convOutput(w, pw, sw, 1, padding);
      return done([y.out, x.out, c], [], {
        ...common,
        kind: config.class_name === 'MaxPooling2D' ? 'maxpool' : 'avgpool',
        pool: [ph, pw],
        strides: [sh, sw],
        pad: [y.before, y.after, x.before, x.after],
      });
    }
    case 'GlobalAveragePooling2D':
      requireRank(name, inputShape, 3);
      if (cfg.keepdims === true) throw new LayerConfigError(`layer '${name}': keepdims=true is not supported yet`);
      return done([inputShape[2]], [], { ...common, kind: 'gap' });
    case 'Flatten':
      return done([inputShape.reduce((a, b) => a * b, 1)], [], { ...common, kind: 'flatten' });
    case 'Dense': {
      requireRank(name, inputShape, 1);
      const units = Number(cfg.units);
      const useBias = cfg.use_bias !== false;
      const weights: WeightSpec[] = [{ name: 'kernel', shape: [inputShape[0], units], variable: true }];
      if (useBias) weights.push({ name: 'bias', shape: [units], variable: true });
      return done([units], weights, {
        ...common,
        kind: 'dense',
        activation: activationName(cfg),
        inFeatures: inputShape[0],
        units,
        useBias,
      });
    }
    case 'Dropout':
      return done(inputShape, [], { ...common, kind: 'dropout', rate: Number(cfg.rate ?? 0) });
    case 'Activation':
      return done(inputShape, [], { ...common, kind: 'activation', activation: activationName(cfg) });
    case 'ReLU': {
      const max = cfg.max_value;
      if ((cfg.negative_slope ?? 0) !== 0 || (cfg.threshold ?? 0) !== 0 || (max !== null && max !== undefined && max !== 6)) {
        throw new LayerConfigError(`layer '${name}': ReLU is supported with max_value null or 6, negative_slope 0 and threshold 0`);
      }
      return done(inputShape, [], { ...common, kind: 'activation', activation: max === 6 ? 'relu6' : 'relu' });
    }
    case 'LeakyReLU':
      return done(inputShape, [], {
        ...common,
        kind: 'activation',
        activation: 'leaky_relu',
        alpha: Number(cfg.alpha ?? cfg.negative_slope ?? 0.3),
      });
    case 'BatchNormalization': {
      const axis = Array.isArray(cfg.axis) ? cfg.axis[0] : (cfg.axis ?? -1);
      if (axis !== -1 && axis !== inputShape.length)
        throw new LayerConfigError(`layer '${name}': BatchNormalization over axis ${String(axis)} is not supported (channels only)`);
      const c = inputShape[inputShape.length - 1];
      const center = cfg.center !== false;
      const scale = cfg.scale !== false;
      const weights: WeightSpec[] = [];
      if (scale) weights.push({ name: 'gamma', shape: [c], variable: true });
      if (center) weights.push({ name: 'beta', shape: [c], variable: true });
      weights.push({ name: 'moving_mean', shape: [c], variable: false }, { name: 'moving_variance', shape: [c], variable: false });
      return done(inputShape, weights, {
        ...common,
        kind: 'batchnorm',
        inChannels: c,
        epsilon: Number(cfg.epsilon ?? 1e-3),
        momentum: Number(cfg.momentum ?? 0.99),
        center,
        scale,
      });
    }
    case 'ZeroPadding2D': {
      requireRank(name, inputShape, 3);
      const p = cfg.padding;
      let pads: [number, number, number, number];
      if (typeof p === 'number') pads = [p, p, p, p];
      else if (Array.isArray(p) && Array.isArray(p[0])) pads = [p[0][0], p[0][1], p[1][0], p[1][1]];
      else if (Array.isArray(p)) pads = [p[0], p[0], p[1], p[1]];
      else pads = [1, 1, 1, 1];
      const [h, w, c] = inputShape;
      return done([h + pads[0] + pads[1], w + pads[2] + pads[3], c], [], { ...common, kind: 'zeropad', pad: pads });
    }
    case 'Reshape': {
      const target = (cfg.target_shape as number[]).map(Number);
      const size = inputShape.reduce((a, b) => a * b, 1);
      const known = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      const shape = target.map((d) => (d === -1 ? size / known : d));
      if (shape.reduce((a, b) => a * b, 1) !== size) {
        throw new LayerConfigError(`layer '${name}': cannot reshape (None, ${inputShape.join(', ')}) to (None, ${target.join(', ')})`);
      }
      return done(shape, [], { ...common, kind: 'reshape', targetShape: shape });
    }
    default:
      throw new LayerConfigError(`layer '${name}': unknown layer class '${config.class_name}' (supported: ${SUPPORTED.join(', ')})`);
  }
}

/** Resolves a chain of layers from the model's input shape. */
export function resolveChain(configs: LayerConfig[], inputShape: Shape): ResolvedLayer[] {
  const out: ResolvedLayer[] = [];
  let shape = inputShape;
  for (const config of configs) {
    const resolved = resolveLayer(config, shape);
    out.push(resolved);
    shape = resolved.outputShape;
  }
  return out;
}
