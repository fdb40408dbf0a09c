import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MissingWeightsError } from '../../applications/vgg16.js';
import { type DistributedBackend, destroyDistributed, initDistributed, readTorchrunEnv, resolveBackend } from '../../distributed/index.js';
import { threadsPerWorker, workerDevice } from '../../distributed/launch-env.js';
import { type ConvAlgorithm, native } from '../../engine/native.js';
import { capThreads } from '../../engine/threads.js';
import { augmentationLayers } from '../../experiment/augment-policy.js';
import { defaultRunDir, readRunConfig, runCompare } from '../../experiment/compare.js';
import { type CompareConfig, DEFAULT_CONFIG, type ModelKind } from '../../experiment/config.js';
import { parseLrSchedule, parsePlateau } from '../../experiment/learning-rate-options.js';
import { PreflightError } from '../../experiment/preflight.js';
import { applyResumeFlags, epochsDone, ResumeFlagError } from '../../experiment/resume-flags.js';
import { mixedPrecisionFlag } from '../../models/mixed-precision.js';
import { parsePreprocessing } from '../../models/preprocessing.js';
import type { DeviceName } from '../../models/sequential.js';
import { ReduceLROnPlateau } from '../../training/reduce-lr-on-plateau.js';
import { OptionError } from '../../util/option-error.js';
import { bareOption } from '../bare-option.js';
import { LaunchError, launch } from '../launcher.js';
import { OPTION_FLAGS, withOptionFlags } from '../option-flags.js';

const HELP = `transferlab compare: train a CNN from scratch and a transfer model on the same data, and compare them

Reproduces the Keras experiment (cats_vs_dogs, 300x300, batch 64, 20 epochs, Adam; a 5-block CNN
vs a frozen ImageNet VGG16 base with a Flatten-Dense(64)-Dense(1) head) and writes a run folder
with histories, checkpoints, plots and report.html.

Usage: transferlab compare [options]
       transferlab compare --resume RUN_DIR

Data (one source; default: download kagglecatsanddogs_5340.zip into the cache):
  --data-dir PATH        extracted PetImages folder, or the folder that contains it
  --archive PATH         kagglecatsanddogs_5340.zip, read in place (no extraction)
  --image-folder PATH    any folder of root/<class>/*.jpg instead of cats_vs_dogs
  --no-download          never download; fail with instructions instead
  --splits A,B           training and validation splits (default: train[:80%],train[-20%:])
  --limit N              use the first N examples (in tfds order) before splitting, for quick runs
  --cache-dir DIR        where downloads, decoded images and features are cached
                         (default: $TRANSFERLAB_CACHE_DIR, else $XDG_CACHE_HOME/transferlab, else ~/.cache/transferlab)

Training:
  --image-size N|HxW     input size (default: 300)
  --batch-size N         (default: 64)
  --epochs N             (default: 20)
  --learning-rate X      Adam learning rate (default: 0.001, Keras's); a schedule starts from it
  --lr-schedule KIND:SETTINGS  a Keras schedule, evaluated at every optimizer step:
                           exponential:decay_steps=N,decay_rate=R[,staircase]
                           cosine:decay_steps=N[,alpha=A][,warmup_target=LR,warmup_steps=N]
                             (Keras 3: linear warmup from --learning-rate to warmup_target, then cosine decay)
                           piecewise:boundaries=B1/B2,values=V1/V2/V3  (the rates; '/' separates list items)
  --reduce-lr-on-plateau [SETTINGS]  Keras ReduceLROnPlateau on val_loss, defaults factor=0.1,patience=10,
                         min_delta=1e-4,cooldown=0,min_lr=0; e.g. --reduce-lr-on-plateau patience=2,factor=0.5
                         (also monitor=NAME, mode=auto|min|max; not with --lr-schedule)
  --models LIST          which models to train: cnn,transfer (default: both)
  --seed N               seed for initial weights and shuffling (default: 42)
  --shuffle              shuffle the training split every epoch (the experiment does not)
  --threads N            CPU threads for the engine (default: all cores, shared evenly between the
                         workers of one machine when distributed)
  --conv-algorithm NAME  float32 convolutions: auto (oneDNN's Winograd for 3x3 layers with >= 16 channels
                         in and out, in feature extraction, evaluation and training: VGG16 features about
                         1.7x faster, the CNN's step 1.2-1.3x; rounding within 2x direct's:
                         docs/benchmarks.md), direct (libtorch's convolutions in training), or winograd
                         (also inference layers with fewer channels) (default: auto)
  --device NAME          cpu, cuda (with several workers: each its own GPU, cuda:LOCAL_RANK), cuda:N,
                         or auto (cuda when this engine and machine have it) (default: cpu)
  --mixed-precision bf16|fp32  bf16: Keras's 'mixed_bfloat16' policy (weights and updates float32,
                         convolutions and matrix products bfloat16) for training, evaluation and feature
                         extraction; float32 with a message where the CPU lacks bf16 (default: fp32)
  --bf16                 the same as --mixed-precision bf16
  --faithful             the original's schedule: steps_per_epoch = int(n*0.8)//batch+1 and
                         validation_steps = int(n_val*0.2)//batch+1 over repeating streams (233/15 on the
                         full dataset); by default each epoch is one pass and validation uses the whole split

Transfer model:
  --backbone vgg16|PATH  pretrained base: vgg16 (Keras ImageNet weights) or a TF.js layers model.json (default: vgg16)
  --backbone-output NAME layer of a TF.js backbone whose output are the features (e.g. conv_pw_13_relu)
  --weights PATH         VGG16 weights file (vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5)
  --preprocess MODE      scale01 (x/255, the experiment's), caffe (Keras vgg16.preprocess_input) or
                         tf (x/127.5-1) (default: scale01 for vgg16, tf for TF.js backbones)
  --head-units LIST      hidden Dense layers of the head (default: 64)
  --no-feature-cache     run the frozen base on every batch of every epoch, as the original does
                         (default: compute its features once and train the head on them; same results)
  --augment [POLICY]     data augmentation (Keras RandomFlip, RandomRotation, ... layers before each model, active
                         in training only). POLICY: default (= flip,rotation=0.1,zoom=0.1), or a list of
                         flip[=horizontal|vertical|horizontal_and_vertical], rotation=F (turns), zoom=F,
                         translation=F, contrast=F, brightness=F. With the transfer model, the frozen base then
                         runs on every augmented batch (no feature cache; slower by a base pass per epoch)
  --augment-cache-epochs K  with --augment: cache the base's features of K augmented passes and cycle
                         through them (K feature passes in all; epochs reuse draws)
  --fine-tune-epochs N   after the head, unfreeze the top of the base and train N more epochs (default: 0)
  --fine-tune-layers N   how many base layers to unfreeze (default: 4, VGG16's block 5)
  --fine-tune-learning-rate X  (default: 1e-5)

Distributed (docs/distributed.md; also works under torchrun --no-python):
  --nproc-per-node N     start N workers on this machine (127.0.0.1), data-parallel over the global
                         batch; rank 0 shows progress and writes the run folder, other ranks only errors
  --master-port N        port of rank 0's rendezvous store (default: a free one)
  --dist-timeout SECONDS how long a rank waits for the others (a dead or unreachable rank) before
                         stopping with an error (default: 300)
  --dist-backend NAME    auto (NCCL when --device is a CUDA GPU and this engine has NCCL, else Gloo),
                         gloo or nccl (default: auto)

Output:
  --out DIR              run folder (default: runs/<date_time>)
  --resume DIR           continue a run from its last completed epoch, with its saved settings; may
                         also take --epochs (to extend), --threads, moved data/--weights/--cache-dir
                         paths, and transfer settings while that model has not started (recorded in
                         config.json's history); flags that would change results already produced are refused
  -h, --help             this help

Examples:
  transferlab compare
  transferlab compare --data-dir ~/datasets/PetImages --backbone ~/models/mobilenet/model.json \\
      --backbone-output conv_pw_13_relu --image-size 224 --epochs 5
`;

function parseSize(text: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(text.trim());
  if (!m) throw new Error(`--image-size must be N or HxW, e.g. 300 or 300x200 (got '${text}')`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

function integerAtLeast(min: number, name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min} (got '${text}')`);
  return n;
}

/** 1, 2, ...: counts and sizes, where 0 is meaningless. */
function positiveInt(name: string, text: string | undefined, fallback: number): number {
  return integerAtLeast(1, name, text, fallback);
}

function convAlgorithm(text: string | undefined): ConvAlgorithm {
  if (text === undefined) return DEFAULT_CONFIG.convAlgorithm;
  if (text === 'auto' || text === 'direct' || text === 'winograd') return text;
  throw new Error(`--conv-algorithm takes auto, direct or winograd (got '${text}')`);
}

/** 0, 1, ...: seeds, and options where 0 means none or automatic. */
function nonNegativeInt(name: string, text: string | undefined, fallback: number): number {
  return integerAtLeast(0, name, text, fallback);
}

function positiveNumber(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!(n > 0)) throw new Error(`--${name} must be a positive number (got '${text}')`);
  return n;
}

export interface ParsedCompareArgs {
  config?: CompareConfig;
  resume?: string;
  passed?: string[];
  help?: boolean;
  /** --nproc-per-node: this process launches the workers instead of training */
  launch?: { nproc: number; masterPort?: number };
  distTimeoutSeconds?: number;
  distBackend?: 'auto' | DistributedBackend;
}

const DEVICE = /^(cpu|auto|cuda(:\d+)?)$/;
export const DEFAULT_DIST_TIMEOUT_SECONDS = 300;

export function parseCompareArgs(argv: string[]): ParsedCompareArgs {
  // a bare --augment means the default policy; a bare --reduce-lr-on-plateau, Keras's defaults
  const args = bareOption(bareOption(argv, '--augment', 'default'), '--reduce-lr-on-plateau', '');
  const { values } = parseArgs({
    args,
    options: {
      'data-dir': { type: 'string' },
      archive: { type: 'string' },
      'image-folder': { type: 'string' },
      'no-download': { type: 'boolean' },
      splits: { type: 'string' },
      limit: { type: 'string' },
      'cache-dir': { type: 'string' },
      'image-size': { type: 'string' },
      'batch-size': { type: 'string' },
      epochs: { type: 'string' },
      'learning-rate': { type: 'string' },
      'lr-schedule': { type: 'string' },
      'reduce-lr-on-plateau': { type: 'string' },
      models: { type: 'string' },
      seed: { type: 'string' },
      shuffle: { type: 'boolean' },
      threads: { type: 'string' },
      'conv-algorithm': { type: 'string' },
      device: { type: 'string' },
      'nproc-per-node': { type: 'string' },
      'master-port': { type: 'string' },
      'dist-timeout': { type: 'string' },
      'dist-backend': { type: 'string' },
      faithful: { type: 'boolean' },
      backbone: { type: 'string' },
      'backbone-output': { type: 'string' },
      weights: { type: 'string' },
      preprocess: { type: 'string' },
      'head-units': { type: 'string' },
      'no-feature-cache': { type: 'boolean' },
      'mixed-precision': { type: 'string' },
      bf16: { type: 'boolean' },
      augment: { type: 'string' },
      'augment-cache-epochs': { type: 'string' },
      'fine-tune-epochs': { type: 'string' },
      'fine-tune-layers': { type: 'string' },
      'fine-tune-learning-rate': { type: 'string' },
      out: { type: 'string' },
      resume: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return { help: true };
  const sources = ['data-dir', 'archive', 'image-folder'].filter((k) => values[k as 'archive'] !== undefined);
  if (sources.length > 1) throw new Error(`give one data source, not ${sources.map((s) => `--${s}`).join(' and ')}`);
  const models = (values.models ?? 'cnn,transfer').split(',').map((m) => m.trim());
  for (const m of models) if (m !== 'cnn' && m !== 'transfer') throw new Error(`--models takes cnn and/or transfer (got '${m}')`);
  const splits = values.splits ? values.splits.split(',') : DEFAULT_CONFIG.splits;
  if (splits.length !== 2) throw new Error(`--splits takes two splits separated by a comma, e.g. train[:80%],train[-20%:]`);
  const seed = nonNegativeInt('seed', values.seed, DEFAULT_CONFIG.seed);
  if (values.augment !== undefined) augmentationLayers(values.augment); // checks the policy now
  if (values['augment-cache-epochs'] !== undefined && values.augment === undefined) {
    throw new Error('--augment-cache-epochs needs --augment (it caches features of augmented passes)');
  }
  const learningRate = positiveNumber('learning-rate', values['learning-rate'], DEFAULT_CONFIG.learningRate);
  // checked now, so a typo fails before any data is read; config.json keeps the text
  if (values['lr-schedule'] !== undefined) parseLrSchedule(values['lr-schedule'], learningRate);
  if (values['reduce-lr-on-plateau'] !== undefined) new ReduceLROnPlateau(parsePlateau(values['reduce-lr-on-plateau']));
  if (values['lr-schedule'] !== undefined && values['reduce-lr-on-plateau'] !== undefined)
    throw new Error('--reduce-lr-on-plateau sets the rate that --lr-schedule computes: use one of them');
  if (values.device !== undefined && !DEVICE.test(values.device)) {
    throw new Error(`--device takes cpu, cuda, cuda:N (a GPU index) or auto (got '${values.device}')`);
  }
  const distBackend = values['dist-backend'] ?? 'auto';
  if (distBackend !== 'auto' && distBackend !== 'gloo' && distBackend !== 'nccl') {
    throw new Error(`--dist-backend takes auto, gloo or nccl (got '${distBackend}')`);
  }
  const masterPort = values['master-port'] === undefined ? undefined : positiveInt('master-port', values['master-port'], 0);
  if (masterPort !== undefined && masterPort > 65535) throw new Error(`--master-port must be a port number, 1-65535 (got '${masterPort}')`);
  if (masterPort !== undefined && values['nproc-per-node'] === undefined) {
    throw new Error('--master-port is for the built-in launcher: give --nproc-per-node too (under torchrun, use its --master-port)');
  }
  const config: CompareConfig = {
    ...DEFAULT_CONFIG,
    dataDir: values['data-dir'],
    archive: values.archive,
    imageFolder: values['image-folder'],
    download: !values['no-download'],
    splits: [splits[0], splits[1]],
    limit: values.limit === undefined ? undefined : positiveInt('limit', values.limit, 0),
    cacheDir: values['cache-dir'],
    imageSize: values['image-size'] ? parseSize(values['image-size']) : DEFAULT_CONFIG.imageSize,
    batchSize: positiveInt('batch-size', values['batch-size'], DEFAULT_CONFIG.batchSize),
    epochs: positiveInt('epochs', values.epochs, DEFAULT_CONFIG.epochs),
    learningRate,
    lrSchedule: values['lr-schedule'],
    reduceLrOnPlateau: values['reduce-lr-on-plateau'],
    models: [...new Set(models)] as ModelKind[],
    seed,
    shuffleSeed: values.shuffle ? seed : undefined,
    threads: nonNegativeInt('threads', values.threads, DEFAULT_CONFIG.threads),
    convAlgorithm: convAlgorithm(values['conv-algorithm']),
    device: (values.device as DeviceName | undefined) ?? DEFAULT_CONFIG.device,
    faithful: values.faithful ?? false,
    backbone: values.backbone ?? DEFAULT_CONFIG.backbone,
    backboneOutput: values['backbone-output'],
    weights: values.weights,
    preprocess: values.preprocess ? parsePreprocessing(values.preprocess) : undefined,
    headUnits: values['head-units']
      ? values['head-units'].split(',').map((u) => positiveInt('head-units', u, 0))
      : DEFAULT_CONFIG.headUnits,
    featureCache: !values['no-feature-cache'],
    mixedPrecision: mixedPrecisionFlag(values['mixed-precision'], values.bf16),
    augment: values.augment,
    augmentCacheEpochs:
      values['augment-cache-epochs'] === undefined ? undefined : positiveInt('augment-cache-epochs', values['augment-cache-epochs'], 1),
    fineTuneEpochs: nonNegativeInt('fine-tune-epochs', values['fine-tune-epochs'], DEFAULT_CONFIG.fineTuneEpochs),
    fineTuneLayers: positiveInt('fine-tune-layers', values['fine-tune-layers'], DEFAULT_CONFIG.fineTuneLayers),
    fineTuneLearningRate: positiveNumber('fine-tune-learning-rate', values['fine-tune-learning-rate'], DEFAULT_CONFIG.fineTuneLearningRate),
    out: values.out ?? defaultRunDir(),
  };
  // the flags given (parseArgs sets no defaults), so --resume applies only what the user asked for
  const passed = Object.keys(values).filter((k) => k !== 'resume' && k !== 'help');
  return {
    config,
    resume: values.resume,
    passed,
    launch:
      values['nproc-per-node'] === undefined
        ? undefined
        : { nproc: positiveInt('nproc-per-node', values['nproc-per-node'], 0), masterPort },
    distTimeoutSeconds: positiveNumber('dist-timeout', values['dist-timeout'], DEFAULT_DIST_TIMEOUT_SECONDS),
    distBackend,
  };
}

/** An error's message with library option names turned into this command's flags and remedies. */
function withFlags(error: Error): string {
  for (let cause: unknown = error.cause; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof OptionError && OPTION_FLAGS[cause.option]) return withOptionFlags(error);
    if (cause instanceof MissingWeightsError) {
      return error.message.replace(
        cause.message,
        `the VGG16 ImageNet weights are not on this machine. Run \`transferlab weights fetch vgg16\`, or download ` +
          `vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 elsewhere and put it at ${cause.expectedPath} ` +
          `(or pass --weights PATH), or use another pretrained base with --backbone path/to/model.json.`,
      );
    }
  }
  return error.message;
}

/** The arguments without the given flags, written `--flag value` or `--flag=value`. */
function withoutFlags(argv: string[], flags: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const flag = flags.find((f) => arg === `--${f}` || arg.startsWith(`--${f}=`));
    if (!flag) kept.push(arg);
    else if (arg === `--${flag}`) i++;
  }
  return kept;
}

/** What is wrong with --device, or with --dist-backend in a worker of a distributed run (`env`), as an error line; checked by each worker. */
function deviceProblem(device: DeviceName, backend: 'auto' | DistributedBackend, env: NodeJS.ProcessEnv): string | undefined {
  const engine = native(); // a missing engine is not a --device problem
  const distributed = readTorchrunEnv(env) !== undefined; // one process: no backend
  try {
    if (distributed) resolveBackend({ device, backend }, env);
    else engine.resolveDevice(workerDevice(device, env));
  } catch (error) {
    // the backend's errors are OptionErrors; the device's are the engine's own
    return error instanceof OptionError ? withOptionFlags(error) : `--device: ${(error as Error).message}`;
  }
  return undefined;
}

/** `--nproc-per-node N`: this process only starts the workers (this same command without the launcher's flags). */
async function launchWorkers(argv: string[], parsed: ParsedCompareArgs): Promise<number> {
  const { nproc, masterPort } = parsed.launch!;
  const args = withoutFlags(argv, ['nproc-per-node', 'master-port']);
  const out = parsed.resume ?? parsed.config!.out;
  // one run folder for every rank: each would otherwise pick its own default name
  if (!parsed.resume && !parsed.passed!.includes('out')) args.push('--out', out);
  const command = [process.execPath, ...process.execArgv, process.argv[1]!, 'compare', ...args];
  let result;
  try {
    result = await launch({ nproc, masterPort, command });
  } catch (error) {
    if (!(error instanceof LaunchError)) throw error;
    console.error(`transferlab compare: ${error.message}`);
    return 2;
  }
  if (result.failed && existsSync(path.join(out, 'config.json'))) {
    console.error(`transferlab compare: ${out} stays resumable: transferlab compare --resume ${out} --nproc-per-node ${nproc}`);
  }
  return result.exitCode;
}

export async function compareCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCompareArgs(argv);
  } catch (error) {
    console.error(`transferlab compare: ${(error as Error).message}\nSee transferlab compare --help.`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (parsed.launch) return launchWorkers(argv, parsed);
  let config = parsed.config!;
  if (parsed.resume) {
    try {
      const saved = await readRunConfig(parsed.resume);
      const resumed = applyResumeFlags(saved, config, parsed.passed!, await epochsDone(parsed.resume, saved.models), parsed.resume);
      config = resumed.change ? { ...resumed.config, history: [...(saved.history ?? []), resumed.change] } : resumed.config;
      if (resumed.change)
        console.log(
          `Resuming with changed settings: ${Object.entries(resumed.change.changed)
            .map(([f, [a, b]]) => `--${f} ${JSON.stringify(a)} → ${JSON.stringify(b)}`)
            .join(', ')}`,
        );
    } catch (error) {
      if (!(error instanceof ResumeFlagError)) throw error;
      console.error(`transferlab compare: ${error.message}`);
      return 2;
    }
  }
  // workers of one machine (launcher or torchrun) share its cores unless --threads says otherwise
  const localWorkers = Number(process.env.LOCAL_WORLD_SIZE ?? 1);
  if (localWorkers > 1 && !parsed.passed!.includes('threads')) {
    config = { ...config, threads: threadsPerWorker(os.availableParallelism(), localWorkers) };
  }
  const problem = deviceProblem(config.device ?? 'cpu', parsed.distBackend!, process.env);
  if (problem) {
    console.error(`transferlab compare: ${problem}`);
    return 2;
  }
  const threads = capThreads(config.threads);
  if (threads.warning) console.error(`transferlab compare: --threads: ${threads.warning}`);
  config = { ...config, threads: threads.threads };
  // a worker of a distributed run (built-in launcher or torchrun): join the group its environment describes
  await initDistributed({
    timeoutMs: Math.round(parsed.distTimeoutSeconds! * 1000),
    backend: parsed.distBackend,
    device: config.device,
  });
  let result;
  try {
    result = await runCompare(config, { resume: Boolean(parsed.resume) });
  } catch (error) {
    if (!(error instanceof PreflightError)) throw error;
    const left = parsed.resume ? `${config.out} is unchanged` : 'no run folder was created';
    console.error(`transferlab compare: cannot start: ${withFlags(error)}\nNothing was trained; ${left}.`);
    return 1;
  } finally {
    destroyDistributed();
  }
  if (result.interrupted) return 130;
  return result.summary!.models.some((m) => m.error) ? 1 : 0;
}
