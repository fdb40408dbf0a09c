import type { AugmentEngineSpec } from '../engine/native.js';
import type { LayerConfig, Shape } from '../keras-format/config.js';

/**
 * Keras's random preprocessing layers (data augmentation): argument checks and defaults as in
 * Keras, resolved to the engine's description. They have no weights, keep the input's shape, draw
 * a new transform per image in training and are the identity at inference (evaluate, predict).
 */
export const AUGMENTATION_CLASSES = [
  'RandomFlip',
  'RandomRotation',
  'RandomZoom',
  'RandomTranslation',
  'RandomContrast',
  'RandomBrightness',
] as const;

export type AugmentationClass = (typeof AUGMENTATION_CLASSES)[number];

export function isAugmentation(className: string): className is AugmentationClass {
  return (AUGMENTATION_CLASSES as readonly string[]).includes(className);
}

const FLIP_MODES = ['horizontal', 'vertical', 'horizontal_and_vertical'] as const;
const FILL_MODES = ['reflect', 'wrap', 'nearest', 'constant'] as const;
const INTERPOLATIONS = ['bilinear', 'nearest'] as const;

export class AugmentationConfigError extends Error {}

type Cfg = Record<string, unknown>;

/** A factor as Keras reads it: a number `f` is [-f, f] (`symmetric`) or [f, f] (`same`), a pair is [lower, upper]. */
function range(
  layer: string,
  key: string,
  value: unknown,
  options: { min: number; max: number; single: 'symmetric' | 'same'; ordered?: false },
): [number, number] {
  let pair: [number, number];
  if (typeof value === 'number') pair = options.single === 'symmetric' ? [-value, value] : [value, value];
  else if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number')) pair = [value[0], value[1]];
  else
    throw new AugmentationConfigError(`layer '${layer}': ${key} must be a number or a pair [lower, upper], got ${JSON.stringify(value)}`);
  if (pair.some((v) => Number.isNaN(v) || v < options.min || v > options.max) || (options.ordered !== false && pair[0] > pair[1])) {
    const order = options.ordered !== false ? 'lower <= upper, ' : '';
    throw new AugmentationConfigError(
      `layer '${layer}': ${key} ${JSON.stringify(value)} must give ${order}both in [${options.min}, ${options.max}]`,
    );
  }
  return pair;
}

function oneOf<T extends string>(layer: string, key: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new AugmentationConfigError(`layer '${layer}': ${key} ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
}

function valueRange(layer: string, value: unknown): { rangeLow: number; rangeHigh: number } {
  if (value === undefined || value === null) return { rangeLow: 0, rangeHigh: 255 };
  if (Array.isArray(value) && value.length === 2 && value.every(Number.isFinite) && value[0] < value[1]) {
    return { rangeLow: value[0], rangeHigh: value[1] };
  }
  throw new AugmentationConfigError(`layer '${layer}': value_range must be [low, high] with low < high, got ${JSON.stringify(value)}`);
}

function sampling(layer: string, cfg: Cfg): Pick<AugmentEngineSpec, 'fillMode' | 'interpolation' | 'fillValue'> {
  const fillValue = cfg.fill_value ?? 0;
  if (typeof fillValue !== 'number' || !Number.isFinite(fillValue)) {
    throw new AugmentationConfigError(`layer '${layer}': fill_value must be a number, got ${JSON.stringify(fillValue)}`);
  }
  return {
    fillMode: oneOf(layer, 'fill_mode', cfg.fill_mode, FILL_MODES, 'reflect'),
    interpolation: oneOf(layer, 'interpolation', cfg.interpolation, INTERPOLATIONS, 'bilinear'),
    fillValue,
  };
}

/** The layer's Keras `seed`; null leaves it to the model (its seed and the layer's position). */
export function augmentationSeed(config: LayerConfig): number | null {
  const seed = config.config.seed;
  if (seed === undefined || seed === null) return null;
  if (!Number.isInteger(seed) || (seed as number) < 0) {
    throw new AugmentationConfigError(
      `layer '${config.config.name}': seed must be a non-negative integer or null, got ${JSON.stringify(seed)}`,
    );
  }
  return seed as number;
}

/** The engine's description of an augmentation layer (seed 0 until the model assigns one). */
export function resolveAugmentation(config: LayerConfig, inputShape: Shape): Omit<AugmentEngineSpec, 'seed'> {
  const name = config.config.name;
  const cfg = config.config as Cfg;
  if (inputShape.length !== 3) {
    throw new AugmentationConfigError(
      `layer '${name}' (${config.class_name}) needs images (None, height, width, channels), got (None, ${inputShape.join(', ')})`,
    );
  }
  augmentationSeed(config);
  switch (config.class_name as AugmentationClass) {
    case 'RandomFlip':
      return { op: 'flip', mode: oneOf(name, 'mode', cfg.mode, FLIP_MODES, 'horizontal_and_vertical') };
    case 'RandomRotation': {
      const [lower, upper] = range(name, 'factor', cfg.factor, { min: -Infinity, max: Infinity, single: 'symmetric' });
      return { op: 'rotation', lower, upper, ...sampling(name, cfg) };
    }
    case 'RandomZoom': {
      const [lower, upper] = range(name, 'height_factor', cfg.height_factor, { min: -1, max: 1, single: 'symmetric' });
      const width =
        cfg.width_factor === undefined || cfg.width_factor === null
          ? {}
          : (([widthLower, widthUpper]) => ({ widthLower, widthUpper }))(
              range(name, 'width_factor', cfg.width_factor, { min: -1, max: 1, single: 'symmetric' }),
            );
      return { op: 'zoom', lower, upper, ...width, ...sampling(name, cfg) };
    }
    case 'RandomTranslation': {
      const [lower, upper] = range(name, 'height_factor', cfg.height_factor, { min: -1, max: 1, single: 'symmetric' });
      const [widthLower, widthUpper] = range(name, 'width_factor', cfg.width_factor, { min: -1, max: 1, single: 'symmetric' });
      return { op: 'translation', lower, upper, widthLower, widthUpper, ...sampling(name, cfg) };
    }
    case 'RandomContrast': {
      // Keras: the contrast factor is drawn from [1 - lower, 1 + upper]
      const [lower, upper] = range(name, 'factor', cfg.factor, { min: 0, max: 1, single: 'same', ordered: false });
      return { op: 'contrast', lower, upper, ...valueRange(name, cfg.value_range) };
    }
    case 'RandomBrightness': {
      const [lower, upper] = range(name, 'factor', cfg.factor, { min: -1, max: 1, single: 'symmetric' });
      return { op: 'brightness', lower, upper, ...valueRange(name, cfg.value_range) };
    }
  }
  throw new AugmentationConfigError(`layer '${name}': ${config.class_name} is not an augmentation layer`);
}
