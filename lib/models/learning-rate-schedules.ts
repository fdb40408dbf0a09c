/**
 * Keras learning-rate schedules (`keras.optimizers.schedules`), with Keras 3's formulas. Passed as an
 * optimizer's `learningRate`, a schedule is evaluated at the optimizer's iteration count before every
 * update (step 0 for the first batch), as Keras does.
 */

/** A schedule as Keras serializes it: `{ class_name, config }` with snake_case arguments. */
export interface ScheduleConfig {
  class_name: string;
  config: Record<string, unknown>;
}

export abstract class LearningRateSchedule {
  /** The learning rate at optimizer step `step` (0-based). */
  abstract call(step: number): number;
  abstract getConfig(): Record<string, unknown>;

  /** Keras's serialized form, so compile settings saved with a model keep the schedule. */
  toJSON(): ScheduleConfig {
    return { class_name: this.constructor.name, config: this.getConfig() };
  }
}

function check(schedule: string, name: string, value: unknown, ok: (v: number) => boolean, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value))
    throw new Error(`${schedule}: ${name} must be ${what}, got ${JSON.stringify(value)}`);
  return value;
}
const nonNegative = (v: number) => v >= 0;
const positive = (v: number) => v > 0;

export interface ExponentialDecayOptions {
  initialLearningRate: number;
  decaySteps: number;
  decayRate: number;
  /** decay in whole intervals of `decaySteps` (a staircase) rather than continuously. */
  staircase?: boolean;
}

/** `initialLearningRate * decayRate ^ (step / decaySteps)`, the exponent floored with `staircase`. */
export class ExponentialDecay extends LearningRateSchedule {
  readonly initialLearningRate: number;
  readonly decaySteps: number;
  readonly decayRate: number;
  readonly staircase: boolean;

  constructor(options: ExponentialDecayOptions) {
    super();
    this.initialLearningRate = check('ExponentialDecay', 'initialLearningRate', options.initialLearningRate, nonNegative, 'a number >= 0');
    this.decaySteps = check('ExponentialDecay', 'decaySteps', options.decaySteps, positive, 'a number > 0');
    this.decayRate = check('ExponentialDecay', 'decayRate', options.decayRate, nonNegative, 'a number >= 0');
    this.staircase = options.staircase ?? false;
  }

  call(step: number): number {
    const p = step / this.decaySteps;
    return this.initialLearningRate * this.decayRate ** (this.staircase ? Math.floor(p) : p);
  }

  getConfig(): Record<string, unknown> {
    return {
      initial_learning_rate: this.initialLearningRate,
      decay_steps: this.decaySteps,
      decay_rate: this.decayRate,
      staircase: this.staircase,
    };
  }
}

export interface CosineDecayOptions {
  initialLearningRate: number;
  decaySteps: number;
  /** the final rate as a fraction of the decayed-from rate (Keras default 0). */
  alpha?: number;
  /** with warmup: the rate reached linearly from `initialLearningRate` after `warmupSteps`, then decayed. */
  warmupTarget?: number;
  warmupSteps?: number;
}

/**
 * Keras 3 CosineDecay: without `warmupTarget`, cosine decay from `initialLearningRate` over `decaySteps`;
 * with it, a linear warmup from `initialLearningRate` to `warmupTarget` over `warmupSteps`, then cosine
 * decay from `warmupTarget` over `decaySteps`. The rate stays at `alpha` times the peak afterwards.
 */
export class CosineDecay extends LearningRateSchedule {
  readonly initialLearningRate: number;
  readonly decaySteps: number;
  readonly alpha: number;
  readonly warmupTarget: number | undefined;
  readonly warmupSteps: number;

  constructor(options: CosineDecayOptions) {
    super();
    this.initialLearningRate = check('CosineDecay', 'initialLearningRate', options.initialLearningRate, nonNegative, 'a number >= 0');
    this.decaySteps = check('CosineDecay', 'decaySteps', options.decaySteps, positive, 'a number > 0');
    this.alpha = check('CosineDecay', 'alpha', options.alpha ?? 0, (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
    this.warmupTarget =
      options.warmupTarget === undefined
        ? undefined
        : check('CosineDecay', 'warmupTarget', options.warmupTarget, nonNegative, 'a number >= 0');
    this.warmupSteps = check('CosineDecay', 'warmupSteps', options.warmupSteps ?? 0, nonNegative, 'a number >= 0');
    if (this.warmupSteps > 0 && this.warmupTarget === undefined)
      throw new Error('CosineDecay: warmupSteps needs warmupTarget, the rate the warmup reaches');
  }

  private decay(step: number, from: number): number {
    const cosine = 0.5 * (1 + Math.cos((Math.PI * step) / this.decaySteps));
    return from * ((1 - this.alpha) * cosine + this.alpha);
  }

  call(step: number): number {
    if (this.warmupTarget === undefined) return this.decay(Math.min(step, this.decaySteps), this.initialLearningRate);
    const s = Math.min(step, this.decaySteps + this.warmupSteps);
    if (s < this.warmupSteps) return (this.warmupTarget - this.initialLearningRate) * (s / this.warmupSteps) + this.initialLearningRate;
    return this.decay(s - this.warmupSteps, this.warmupTarget);
  }

  getConfig(): Record<string, unknown> {
    return {
      initial_learning_rate: this.initialLearningRate,
      decay_steps: this.decaySteps,
      alpha: this.alpha,
      warmup_target: this.warmupTarget ?? null,
      warmup_steps: this.warmupSteps,
    };
  }
}

export interface PiecewiseConstantDecayOptions {
  /** increasing step boundaries. */
  boundaries: number[];
  /** one more than the boundaries: `values[i]` holds for `boundaries[i-1] < step <= boundaries[i]`. */
  values: number[];
}

/** Keras PiecewiseConstantDecay: `values[0]` up to and including `boundaries[0]`, and so on. */
export class PiecewiseConstantDecay extends LearningRateSchedule {
  readonly boundaries: number[];
  readonly values: number[];

  constructor(options: PiecewiseConstantDecayOptions) {
    super();
    const { boundaries, values } = options;
    if (!Array.isArray(boundaries) || !Array.isArray(values) || values.length !== boundaries.length + 1)
      throw new Error(
        `PiecewiseConstantDecay: values must have one more entry than boundaries, got ${JSON.stringify(boundaries)} and ${JSON.stringify(values)}`,
      );
    boundaries.forEach((b, i) => {
      check(
        'PiecewiseConstantDecay',
        `boundaries[${i}]`,
        b,
        (v) => v >= 0 && (i === 0 || v > boundaries[i - 1]),
        'an increasing step >= 0',
      );
    });
    values.forEach((v, i) => {
      check('PiecewiseConstantDecay', `values[${i}]`, v, nonNegative, 'a number >= 0');
    });
    this.boundaries = [...boundaries];
    this.values = [...values];
  }

  call(step: number): number {
    return this.values[this.boundaries.filter((b) => step > b).length];
  }

  getConfig(): Record<string, unknown> {
    return { boundaries: this.boundaries, values: this.values };
  }
}

/** Keras `keras.optimizers.schedules`. */
export const schedules = { ExponentialDecay, CosineDecay, PiecewiseConstantDecay };

/** A schedule back from its serialized form (a saved model's compile settings); errors name what exists. */
export function scheduleFromConfig(spec: ScheduleConfig): LearningRateSchedule {
  const c = spec.config ?? {};
  switch (spec.class_name) {
    case 'ExponentialDecay':
      return new ExponentialDecay({
        initialLearningRate: c.initial_learning_rate as number,
        decaySteps: c.decay_steps as number,
        decayRate: c.decay_rate as number,
        staircase: Boolean(c.staircase),
      });
    case 'CosineDecay':
      return new CosineDecay({
        initialLearningRate: c.initial_learning_rate as number,
        decaySteps: c.decay_steps as number,
        alpha: c.alpha as number | undefined,
        warmupTarget: (c.warmup_target ?? undefined) as number | undefined,
        warmupSteps: c.warmup_steps as number | undefined,
      });
    case 'PiecewiseConstantDecay':
      return new PiecewiseConstantDecay({ boundaries: c.boundaries as number[], values: c.values as number[] });
    default:
      throw new Error(`unknown learning-rate schedule '${String(spec.class_name)}': use one of ${Object.keys(schedules).join(', ')}`);
  }
}
