import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { DatasetInfo } from '../data/open-splits.js';
import { type CompareConfig, type ConfigChange, MODEL_LABELS, type ModelKind } from './config.js';

/** Epochs each model of a run has completed (from its history.json; absent: not started). */
export async function epochsDone(runDir: string, models: readonly ModelKind[]): Promise<Partial<Record<ModelKind, number>>> {
  const done: Partial<Record<ModelKind, number>> = {};
  for (const kind of models) {
    const file = path.join(runDir, kind, 'history.json');
    if (!existsSync(file)) continue;
    const history = JSON.parse(await fs.readFile(file, 'utf8')) as { loss?: number[] };
    if (history.loss?.length) done[kind] = history.loss.length;
  }
  return done;
}

export class ResumeFlagError extends Error {}

/** The config keys each `compare` flag sets. */
const FLAG_KEYS: Record<string, (keyof CompareConfig)[]> = {
  'data-dir': ['dataDir', 'archive', 'imageFolder'],
  archive: ['dataDir', 'archive', 'imageFolder'],
  'image-folder': ['dataDir', 'archive', 'imageFolder'],
  'no-download': ['download'],
  splits: ['splits'],
  limit: ['limit'],
  'cache-dir': ['cacheDir'],
  'image-size': ['imageSize'],
  'batch-size': ['batchSize'],
  epochs: ['epochs'],
  'learning-rate': ['learningRate'],
  'lr-schedule': ['lrSchedule'],
  'reduce-lr-on-plateau': ['reduceLrOnPlateau'],
  models: ['models'],
  seed: ['seed'],
  shuffle: ['shuffleSeed'],
  threads: ['threads'],
  'conv-algorithm': ['convAlgorithm'],
  device: ['device'],
  faithful: ['faithful'],
  backbone: ['backbone'],
  'backbone-output': ['backboneOutput'],
  weights: ['weights'],
  preprocess: ['preprocess'],
  'head-units': ['headUnits'],
  'no-feature-cache': ['featureCache'],
  augment: ['augment'],
  'augment-cache-epochs': ['augmentCacheEpochs'],
  'mixed-precision': ['mixedPrecision'],
  bf16: ['mixedPrecision'],
  'fine-tune-epochs': ['fineTuneEpochs'],
  'fine-tune-layers': ['fineTuneLayers'],
  'fine-tune-learning-rate': ['fineTuneLearningRate'],
  out: ['out'],
};

/** Where files moved to, or how fast to run: never changes a result (the data itself is checked against dataset.json). */
const ALWAYS_SAFE = new Set(['data-dir', 'archive', 'image-folder', 'no-download', 'cache-dir', 'threads', 'device', 'weights']);
/** Settings of the transfer model alone: free until it has trained an epoch. */
const TRANSFER_ONLY = new Set(['backbone', 'backbone-output', 'preprocess', 'head-units', 'no-feature-cache']);

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The saved config with the flags the user passed on `--resume` applied, where they cannot change
 * results already produced: more epochs, other threads, moved files, transfer settings before the
 * transfer model started. Anything else that differs is refused, naming the flags.
 */
export function applyResumeFlags(
  saved: CompareConfig,
  given: CompareConfig,
  passed: readonly string[],
  done: Partial<Record<ModelKind, number>>,
  runDir: string,
): { config: CompareConfig; change?: ConfigChange } {
  const config: CompareConfig = { ...saved, out: runDir };
  const changed: Record<string, [unknown, unknown]> = {};
  const refused: string[] = [];
  const started = (Object.keys(done) as ModelKind[]).filter((k) => done[k]! > 0);
  const transferDone = done.transfer ?? 0;
  const fineTuning = transferDone > saved.epochs;
  for (const flag of passed) {
    const keys = FLAG_KEYS[flag];
    if (!keys) continue;
    if (flag === 'out') {
      if (path.resolve(given.out) !== path.resolve(runDir)) refused.push(`--out (the run folder is the one --resume names, ${runDir})`);
      continue;
    }
    const next: Partial<CompareConfig> = {};
    for (const key of keys) (next as Record<string, unknown>)[key] = given[key];
    if (flag === 'seed') next.shuffleSeed = config.shuffleSeed === undefined ? undefined : given.seed;
    if (flag === 'shuffle') next.shuffleSeed = next.seed ?? config.seed;
    const old = Object.fromEntries(keys.map((k) => [k, config[k]]));
    if (keys.every((k) => same(config[k], next[k]))) continue;
    const reason = refusal(flag, saved, given, started, done, fineTuning);
    if (reason) refused.push(`--${flag} (${reason})`);
    Object.assign(config, next);
    changed[flag] = keys.length === 1 ? [old[keys[0]!], next[keys[0]!]] : [old, next];
  }
  if (refused.length) {
    throw new ResumeFlagError(
      `--resume ${runDir} cannot change ${refused.join('; ')}: results already in the run were produced with the saved settings. ` +
        `Drop those flags to continue the run, or start a new run (--out) with them.`,
    );
  }
  return { config, change: Object.keys(changed).length ? { at: new Date().toISOString(), changed } : undefined };
}

/** Why changing `flag` would alter results already produced; undefined when it is safe. */
function refusal(
  flag: string,
  saved: CompareConfig,
  given: CompareConfig,
  started: ModelKind[],
  done: Partial<Record<ModelKind, number>>,
  fineTuning: boolean,
): string | undefined {
  const trained = (kinds: ModelKind[]) => kinds.map((k) => `${MODEL_LABELS[k]} has trained ${done[k]} epoch(s)`).join(', ');
  if (ALWAYS_SAFE.has(flag)) return undefined;
  if (flag === 'epochs') {
    const beyond = started.filter((k) => done[k]! > given.epochs && !(k === 'transfer' && fineTuning));
    if (beyond.length) return `${trained(beyond)}, more than ${given.epochs}`;
    if (fineTuning) return `${trained(['transfer'])}, fine-tuning has begun after epoch ${saved.epochs}`;
    return undefined;
  }
  if (flag === 'fine-tune-epochs') {
    return (done.transfer ?? 0) > saved.epochs + given.fineTuneEpochs ? trained(['transfer']) : undefined;
  }
  if (flag === 'fine-tune-layers' || flag === 'fine-tune-learning-rate')
    return fineTuning ? `${trained(['transfer'])}, fine-tuning has begun` : undefined;
  if (TRANSFER_ONLY.has(flag)) return done.transfer ? trained(['transfer']) : undefined;
  if (flag === 'models') {
    const dropped = started.filter((k) => !given.models.includes(k));
    return dropped.length ? `${trained(dropped)}; keep it in --models` : undefined;
  }
  return started.length ? trained(started) : undefined;
}

/** The data given on resume must be the data the run started with (same examples, order and classes). */
export function sameDataReason(saved: DatasetInfo, now: DatasetInfo): string | undefined {
  const fields = ['examples', 'classNames', 'splits', 'firstKeys'] as const;
  const differ = fields.filter((f) => !same(saved[f], now[f]));
  if (differ.length === 0) return undefined;
  return (
    `the data at ${now.source} is not what the run started with (${differ.map((f) => `${f}: ${JSON.stringify(saved[f])} then, ${JSON.stringify(now[f])} now`).join('; ')}). ` +
    `Point --data-dir / --archive / --image-folder at the original data.`
  );
}
