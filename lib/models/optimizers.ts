/**
 * Keras optimizers by name or with settings: `'sgd'`, `{ sgd: { momentum: 0.9 } }`, or
 * `optimizers.sgd({ momentum: 0.9 })`. Defaults are Keras's; the engine applies Keras's update rules.
 * `learningRate` is a number or a Keras schedule (`new ExponentialDecay({...})`), evaluated per step.
 */
import { LearningRateSchedule, type ScheduleConfig, scheduleFromConfig } from './learning-rate-schedules.js';

/** A fixed rate, a schedule, or a schedule as saved (`{ class_name, config }`). */
export type LearningRate = number | LearningRateSchedule | ScheduleConfig;

export interface AdamOptions {
  learningRate?: LearningRate;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

export interface SgdOptions {
  learningRate?: LearningRate;
  momentum?: number;
  nesterov?: boolean;
}

export interface RmspropOptions {
  learningRate?: LearningRate;
  rho?: number;
  momentum?: number;
  epsilon?: number;
  centered?: boolean;
}

export type OptimizerName = 'adam' | 'sgd' | 'rmsprop';
export type OptimizerSpec = OptimizerName | { adam: AdamOptions } | { sgd: SgdOptions } | { rmsprop: RmspropOptions };

export const OPTIMIZER_DEFAULTS = {
  adam: { learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 },
  sgd: { learningRate: 0.01, momentum: 0, nesterov: false },
  rmsprop: { learningRate: 0.001, rho: 0.9, momentum: 0, epsilon: 1e-7, centered: false },
} as const satisfies Record<OptimizerName, Record<string, number | boolean>>;

const NAMES = Object.keys(OPTIMIZER_DEFAULTS) as OptimizerName[];

/** Builders of optimizer settings, as Keras's `keras.optimizers.SGD(...)` etc. */
export const optimizers = {
  adam: (options: AdamOptions = {}): { adam: AdamOptions } => ({ adam: options }),
  sgd: (options: SgdOptions = {}): { sgd: SgdOptions } => ({ sgd: options }),
  rmsprop: (options: RmspropOptions = {}): { rmsprop: RmspropOptions } => ({ rmsprop: options }),
};

/** What the engine's `compile` takes: the optimizer's name and every setting, defaults filled in. */
export type EngineOptimizer = { optimizer: OptimizerName } & Record<string, number | boolean | string>;

// Fractions that Keras requires in [0, 1) (beta_1, beta_2, rho) or [0, 1] (momentum).
const RANGES: Record<string, [number, number, boolean]> = {
  learningRate: [0, Infinity, false],
  epsilon: [0, Infinity, false],
  beta1: [0, 1, false],
  beta2: [0, 1, false],
  rho: [0, 1, false],
  momentum: [0, 1, true],
};

function checkValue(name: OptimizerName, key: string, value: unknown, fallback: number | boolean): number | boolean {
  if (typeof fallback === 'boolean') {
    if (typeof value !== 'boolean') throw new Error(`optimizer ${name}: ${key} must be true or false, got ${JSON.stringify(value)}`);
    return value;
  }
  const [low, high, highIncluded] = RANGES[key];
  const ok = typeof value === 'number' && Number.isFinite(value) && value >= low && (value < high || (highIncluded && value === high));
  if (!ok) {
    const range = high === Infinity ? 'a number >= 0' : `a number in [${low}, ${high}${highIncluded ? ']' : ')'}`;
    throw new Error(`optimizer ${name}: ${key} must be ${range}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The schedule a `learningRate` names, or undefined for a fixed rate. */
function asSchedule(value: unknown): LearningRateSchedule | undefined {
  if (value instanceof LearningRateSchedule) return value;
  if (value && typeof value === 'object' && 'class_name' in value) return scheduleFromConfig(value as ScheduleConfig);
  return undefined;
}

/** The optimizer's learning-rate schedule, or undefined when its rate is fixed. */
export function learningRateSchedule(spec: OptimizerSpec): LearningRateSchedule | undefined {
  if (typeof spec !== 'object' || spec === null) return undefined;
  return asSchedule((Object.values(spec)[0] as { learningRate?: unknown } | undefined)?.learningRate);
}

/** Checks an optimizer spec and returns the engine's settings; unknown names and options are errors listing what exists. */
export function resolveOptimizer(spec: OptimizerSpec): EngineOptimizer {
  let name: string;
  let options: Record<string, unknown>;
  if (typeof spec === 'string') {
    name = spec;
    options = {};
  } else if (spec && typeof spec === 'object' && Object.keys(spec).length === 1) {
    name = Object.keys(spec)[0];
    options = (Object.values(spec)[0] ?? {}) as Record<string, unknown>;
  } else {
    throw new Error(
      `optimizer must be a name (${NAMES.join(', ')}) or one of { adam: {...} }, { sgd: {...} }, { rmsprop: {...} }; got ${JSON.stringify(spec)}`,
    );
  }
  if (!NAMES.includes(name as OptimizerName)) throw new Error(`unknown optimizer '${name}': use one of ${NAMES.join(', ')}`);
  const defaults: Record<string, number | boolean> = OPTIMIZER_DEFAULTS[name as OptimizerName];
  const unknown = Object.keys(options).filter((k) => !(k in defaults));
  if (unknown.length)
    throw new Error(
      `optimizer ${name} has no option ${unknown.map((k) => `'${k}'`).join(', ')}: its options are ${Object.keys(defaults).join(', ')}`,
    );
  const settings: EngineOptimizer = { optimizer: name as OptimizerName };
  for (const [key, fallback] of Object.entries(defaults)) {
    const schedule = key === 'learningRate' ? asSchedule(options[key]) : undefined;
    // under a schedule the engine starts at its step-0 rate; fit sets the rate before every step
    if (schedule) settings[key] = schedule.call(0);
    else settings[key] = options[key] === undefined ? fallback : checkValue(name as OptimizerName, key, options[key], fallback);
  }
  return settings;
}
