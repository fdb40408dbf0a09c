import { CosineDecay, ExponentialDecay, type LearningRateSchedule, PiecewiseConstantDecay } from '../models/learning-rate-schedules.js';
import type { ReduceLROnPlateauOptions } from '../training/reduce-lr-on-plateau.js';

/**
 * The command-line forms of the learning-rate tools, Keras's snake_case argument names after a kind:
 * `exponential:decay_steps=1000,decay_rate=0.9[,staircase]`, `cosine:decay_steps=2000[,alpha=0.1]
 * [,warmup_target=0.01,warmup_steps=100]`, `piecewise:boundaries=1000/2000,values=1e-3/5e-4/1e-4`
 * (lists separated by `/`); `patience=2,factor=0.5,...` for ReduceLROnPlateau. The schedule starts
 * at the run's learning rate (except piecewise, whose values are the rates).
 */
export const LR_SCHEDULE_HELP =
  'exponential:decay_steps=N,decay_rate=R[,staircase] | cosine:decay_steps=N[,alpha=A][,warmup_target=LR,warmup_steps=N] | piecewise:boundaries=B1/B2,values=V1/V2/V3';

type Settings = Map<string, string | true>;

function settings(flag: string, text: string, known: string[]): Settings {
  const out: Settings = new Map();
  for (const part of text.split(',').filter((p) => p.trim() !== '')) {
    const [key, value] = part.includes('=')
      ? [part.slice(0, part.indexOf('=')).trim(), part.slice(part.indexOf('=') + 1).trim()]
      : [part.trim(), true as const];
    if (!known.includes(key)) throw new Error(`${flag}: unknown setting '${key}': use ${known.join(', ')}`);
    out.set(key, value);
  }
  return out;
}

function number(flag: string, s: Settings, key: string): number | undefined {
  const v = s.get(key);
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && v !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw new Error(`${flag}: ${key} must be a number, e.g. ${key}=0.5 (got '${v === true ? '' : v}')`);
  return n;
}

function required(flag: string, s: Settings, key: string): number {
  const n = number(flag, s, key);
  if (n === undefined) throw new Error(`${flag}: ${key}=... is required`);
  return n;
}

function list(flag: string, s: Settings, key: string): number[] {
  const v = s.get(key);
  if (typeof v !== 'string' || v === '') throw new Error(`${flag}: ${key}=A/B/... is required`);
  return v.split('/').map((x) => {
    const n = Number(x);
    if (x.trim() === '' || !Number.isFinite(n)) throw new Error(`${flag}: ${key} takes numbers separated by '/', got '${v}'`);
    return n;
  });
}

/** A `--lr-schedule` value as a Keras schedule starting at `initialLearningRate`; errors show the syntax. */
export function parseLrSchedule(text: string, initialLearningRate: number): LearningRateSchedule {
  const flag = '--lr-schedule';
  const colon = text.indexOf(':');
  const kind = (colon < 0 ? text : text.slice(0, colon)).trim();
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  try {
    switch (kind) {
      case 'exponential': {
        const s = settings(flag, rest, ['decay_steps', 'decay_rate', 'staircase']);
        return new ExponentialDecay({
          initialLearningRate,
          decaySteps: required(flag, s, 'decay_steps'),
          decayRate: required(flag, s, 'decay_rate'),
          staircase: s.get('staircase') === true || s.get('staircase') === 'true',
        });
      }
      case 'cosine': {
        const s = settings(flag, rest, ['decay_steps', 'alpha', 'warmup_target', 'warmup_steps']);
        return new CosineDecay({
          initialLearningRate,
          decaySteps: required(flag, s, 'decay_steps'),
          alpha: number(flag, s, 'alpha'),
          warmupTarget: number(flag, s, 'warmup_target'),
          warmupSteps: number(flag, s, 'warmup_steps'),
        });
      }
      case 'piecewise': {
        const s = settings(flag, rest, ['boundaries', 'values']);
        return new PiecewiseConstantDecay({ boundaries: list(flag, s, 'boundaries'), values: list(flag, s, 'values') });
      }
      default:
        throw new Error(`${flag}: unknown schedule '${kind}': use ${LR_SCHEDULE_HELP}`);
    }
  } catch (error) {
    const message = (error as Error).message;
    throw new Error(message.startsWith(flag) ? message : `${flag} ${text}: ${message}`);
  }
}

/** A `--reduce-lr-on-plateau` value (empty: Keras's defaults) as ReduceLROnPlateau options. */
export function parsePlateau(text: string): ReduceLROnPlateauOptions {
  const flag = '--reduce-lr-on-plateau';
  const s = settings(flag, text, ['monitor', 'factor', 'patience', 'min_delta', 'cooldown', 'min_lr', 'mode']);
  const mode = s.get('mode');
  if (mode !== undefined && mode !== 'auto' && mode !== 'min' && mode !== 'max') throw new Error(`${flag}: mode must be auto, min or max`);
  const monitor = s.get('monitor');
  if (monitor === true) throw new Error(`${flag}: monitor=... needs a log name, e.g. monitor=val_accuracy`);
  return {
    monitor,
    factor: number(flag, s, 'factor'),
    patience: number(flag, s, 'patience'),
    minDelta: number(flag, s, 'min_delta'),
    cooldown: number(flag, s, 'cooldown'),
    minLr: number(flag, s, 'min_lr'),
    mode,
    verbose: 1,
  };
}
