import type { LayerConfig, Shape } from '../keras-format/config.js';
import { type DtypePolicyName, policyConfig } from './mixed-precision.js';

/**
 * Layer factories with TF.js-style camelCase options, producing Keras layer configs
 * (`{ class_name, config }`), so `sequential([layers.conv2d({...}), ...])` reads like the Keras
 * original and the result serialises to a Keras / TF.js model.json unchanged.
 */
type Activation = 'linear' | 'relu' | 'relu6' | 'sigmoid' | 'softmax' | 'tanh' | 'elu';
type Padding = 'valid' | 'same';
type Pair = number | [number, number];

interface Common {
  name?: string;
  trainable?: boolean;
  /** [height, width, channels] of the model input; only on the first layer. */
  inputShape?: Shape;
  /** the layer's own dtype policy, e.g. 'float32' for the output layer of a mixed model (Keras `dtype=`). */
  dtype?: DtypePolicyName;
}

const pair = (v: Pair): [number, number] => (Array.isArray(v) ? v : [v, v]);

function base(className: string, options: Common, config: Record<string, unknown>): LayerConfig {
  const c: LayerConfig['config'] = { name: options.name ?? '', trainable: options.trainable ?? true, ...config };
  if (options.inputShape) c.batch_input_shape = [null, ...options.inputShape];
  if (options.dtype) c.dtype = policyConfig(options.dtype);
  return { class_name: className, config: c };
}

type Factor = number | [number, number];
type FillMode = 'reflect' | 'wrap' | 'nearest' | 'constant';
/** Keras's sampling arguments of RandomRotation, RandomZoom and RandomTranslation. */
interface Sampling {
  fillMode?: FillMode;
  interpolation?: 'bilinear' | 'nearest';
  fillValue?: number;
  seed?: number;
}

const sampling = (o: Sampling) => ({
  fill_mode: o.fillMode ?? 'reflect',
  fill_value: o.fillValue ?? 0,
  interpolation: o.interpolation ?? 'bilinear',
  seed: o.seed ?? null,
});

const glorot = { class_name: 'GlorotUniform', config: { seed: null } };
const zeros = { class_name: 'Zeros', config: {} };

export const layers = {
  inputLayer(options: { inputShape: Shape; name?: string }): LayerConfig {
    return {
      class_name: 'InputLayer',
      config: { name: options.name ?? '', batch_input_shape: [null, ...options.inputShape], dtype: 'float32' },
    };
  },
  conv2d(
    options: Common & {
      filters: number;
      kernelSize: Pair;
      strides?: Pair;
      padding?: Padding;
      dilationRate?: Pair;
      activation?: Activation;
      useBias?: boolean;
    },
  ): LayerConfig {
    return base('Conv2D', options, {
      filters: options.filters,
      kernel_size: pair(options.kernelSize),
      strides: pair(options.strides ?? 1),
      padding: options.padding ?? 'valid',
      data_format: 'channels_last',
      dilation_rate: pair(options.dilationRate ?? 1),
      activation: options.activation ?? 'linear',
      use_bias: options.useBias ?? true,
      kernel_initializer: glorot,
      bias_initializer: zeros,
    });
  },
  depthwiseConv2d(
    options: Common & {
      kernelSize: Pair;
      strides?: Pair;
      padding?: Padding;
      depthMultiplier?: number;
      activation?: Activation;
      useBias?: boolean;
    },
  ): LayerConfig {
    return base('DepthwiseConv2D', options, {
      kernel_size: pair(options.kernelSize),
      strides: pair(options.strides ?? 1),
      padding: options.padding ?? 'valid',
      data_format: 'channels_last',
      depth_multiplier: options.depthMultiplier ?? 1,
      activation: options.activation ?? 'linear',
      use_bias: options.useBias ?? true,
    });
  },
  maxPooling2d(options: Common & { poolSize?: Pair; strides?: Pair; padding?: Padding } = {}): LayerConfig {
    const poolSize = pair(options.poolSize ?? 2);
    return base('MaxPooling2D', options, {
      pool_size: poolSize,
      strides: pair(options.strides ?? poolSize),
      padding: options.padding ?? 'valid',
      data_format: 'channels_last',
    });
  },
  averagePooling2d(options: Common & { poolSize?: Pair; strides?: Pair; padding?: Padding } = {}): LayerConfig {
    const poolSize = pair(options.poolSize ?? 2);
    return base('AveragePooling2D', options, {
      pool_size: poolSize,
      strides: pair(options.strides ?? poolSize),
      padding: options.padding ?? 'valid',
      data_format: 'channels_last',
    });
  },
  globalAveragePooling2d(options: Common = {}): LayerConfig {
    return base('GlobalAveragePooling2D', options, { data_format: 'channels_last' });
  },
  flatten(options: Common = {}): LayerConfig {
    return base('Flatten', options, { data_format: 'channels_last' });
  },
  dense(options: Common & { units: number; activation?: Activation; useBias?: boolean }): LayerConfig {
    return base('Dense', options, {
      units: options.units,
      activation: options.activation ?? 'linear',
      use_bias: options.useBias ?? true,
      kernel_initializer: glorot,
      bias_initializer: zeros,
    });
  },
  dropout(options: Common & { rate: number; seed?: number }): LayerConfig {
    return base('Dropout', options, { rate: options.rate, noise_shape: null, seed: options.seed ?? null });
  },
  activation(options: Common & { activation: Activation }): LayerConfig {
    return base('Activation', options, { activation: options.activation });
  },
  reLU(options: Common & { maxValue?: number } = {}): LayerConfig {
    return base('ReLU', options, { max_value: options.maxValue ?? null, negative_slope: 0, threshold: 0 });
  },
  batchNormalization(options: Common & { epsilon?: number; center?: boolean; scale?: boolean } = {}): LayerConfig {
    return base('BatchNormalization', options, {
      axis: -1,
      momentum: 0.99,
      epsilon: options.epsilon ?? 1e-3,
      center: options.center ?? true,
      scale: options.scale ?? true,
    });
  },
  zeroPadding2d(options: Common & { padding: number | [[number, number], [number, number]] }): LayerConfig {
    const p = options.padding;
    return base('ZeroPadding2D', options, {
      padding:
        typeof p === 'number'
          ? [
              [p, p],
              [p, p],
            ]
          : p,
      data_format: 'channels_last',
    });
  },
  reshape(options: Common & { targetShape: Shape }): LayerConfig {
    return base('Reshape', options, { target_shape: options.targetShape });
  },
  // Data augmentation (lib/models/augmentation.ts): active in training only, no weights.
  randomFlip(options: Common & { mode?: 'horizontal' | 'vertical' | 'horizontal_and_vertical'; seed?: number } = {}): LayerConfig {
    return base('RandomFlip', options, { mode: options.mode ?? 'horizontal_and_vertical', seed: options.seed ?? null });
  },
  /** factor: fraction of 2π; a number f draws angles in [-f, f] * 2π, positive counter-clockwise. */
  randomRotation(options: Common & Sampling & { factor: Factor }): LayerConfig {
    return base('RandomRotation', options, { factor: options.factor, ...sampling(options) });
  },
  /** factors: fractions of the height / width; positive zooms out. Without widthFactor the aspect ratio is kept. */
  randomZoom(options: Common & Sampling & { heightFactor: Factor; widthFactor?: Factor }): LayerConfig {
    return base('RandomZoom', options, {
      height_factor: options.heightFactor,
      width_factor: options.widthFactor ?? null,
      ...sampling(options),
    });
  },
  /** factors: fractions of the height / width; positive moves the image down / right. */
  randomTranslation(options: Common & Sampling & { heightFactor: Factor; widthFactor: Factor }): LayerConfig {
    return base('RandomTranslation', options, {
      height_factor: options.heightFactor,
      width_factor: options.widthFactor,
      ...sampling(options),
    });
  },
  /** the contrast factor is drawn from [1 - lower, 1 + upper]; results clipped to valueRange. */
  randomContrast(options: Common & { factor: Factor; valueRange?: [number, number]; seed?: number }): LayerConfig {
    return base('RandomContrast', options, {
      factor: options.factor,
      value_range: options.valueRange ?? [0, 255],
      seed: options.seed ?? null,
    });
  },
  /** factor: fraction of valueRange added to every pixel of an image; a number f draws from [-f, f]. */
  randomBrightness(options: Common & { factor: Factor; valueRange?: [number, number]; seed?: number }): LayerConfig {
    return base('RandomBrightness', options, {
      factor: options.factor,
      value_range: options.valueRange ?? [0, 255],
      seed: options.seed ?? null,
    });
  },
};

/** Keras's default layer name stem: `Conv2D` -> `conv2d`, `MaxPooling2D` -> `max_pooling2d`. */
export function defaultNameStem(className: string): string {
  return className
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1_$2')
    .toLowerCase()
    .replace(/(\d)_d\b/g, '$1d');
}

/** Gives unnamed layers Keras-style unique names (`conv2d`, `conv2d_1`, ...). */
export function nameLayers(configs: LayerConfig[]): LayerConfig[] {
  const used = new Set(configs.map((c) => c.config.name).filter((n) => n));
  const counters = new Map<string, number>();
  return configs.map((c) => {
    if (c.config.name) return c;
    const stem = defaultNameStem(c.class_name);
    let n = counters.get(stem) ?? 0;
    let name = n === 0 ? stem : `${stem}_${n}`;
    while (used.has(name)) name = `${stem}_${++n}`;
    counters.set(stem, n + 1);
    used.add(name);
    return { class_name: c.class_name, config: { ...c.config, name } };
  });
}
