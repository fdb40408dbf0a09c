import os from 'node:os';

/** Sizes of every measurement; `--quick` shrinks them all for a smoke run. */
export interface BenchSizes {
  /** CNN training, interleaved with PyTorch: batch, warm-up steps, rounds, steps per round and engine. */
  cnnBatch: number;
  cnnWarmup: number;
  cnnRounds: number;
  cnnStepsPerRound: number;
  /** VGG16 feature extraction, interleaved the same way (per precision). */
  vggBatch: number;
  vggWarmup: number;
  vggRounds: number;
  vggStepsPerRound: number;
  /** CNN training steps timed layer by layer, per engine. */
  layerSteps: number;
  /** timed all-reduces of the CNN's gradient count over 2 ranks (distributedStepOverhead). */
  allreduces: number;
  /** batch of the large bf16 convolution that measures the bf16 compute roof */
  roofBatch: number;
  /** VGG16 bf16 feature batches timed layer by layer, each against its own roof (odd: a median round) */
  roofRounds: number;
  /** real runs: photos decoded into a real cache, batch size, head epochs on the real feature cache. */
  realImages: number;
  realBatch: number;
  headEpochs: number;
}

export interface BenchOptions {
  json: boolean;
  quick: boolean;
  threads: number;
  /** skip the PyTorch comparisons even when torch is installed. */
  noPytorch: boolean;
  python: string;
  sizes: BenchSizes;
}

export const FULL_SIZES: BenchSizes = {
  cnnBatch: 64,
  cnnWarmup: 2,
  cnnRounds: 6,
  cnnStepsPerRound: 2,
  vggBatch: 16,
  vggWarmup: 1,
  vggRounds: 4,
  vggStepsPerRound: 1,
  layerSteps: 2,
  allreduces: 20,
  roofBatch: 16,
  roofRounds: 5,
  realImages: 256,
  realBatch: 64,
  headEpochs: 20,
};

export const QUICK_SIZES: BenchSizes = {
  cnnBatch: 16,
  cnnWarmup: 1,
  cnnRounds: 3,
  cnnStepsPerRound: 1,
  vggBatch: 4,
  vggWarmup: 1,
  vggRounds: 2,
  vggStepsPerRound: 1,
  layerSteps: 1,
  allreduces: 3,
  roofBatch: 1,
  roofRounds: 1,
  realImages: 64,
  realBatch: 64,
  headEpochs: 20,
};

export const USAGE = `usage: npm run bench -- [--json] [--quick] [--threads N] [--no-pytorch]
  --json        print one JSON object on stdout (progress goes to stderr)
  --quick       tiny sizes: checks that the harness works, numbers are not meaningful
  --threads N   intra-op threads for the engine and for PyTorch (default: all cores)
  --no-pytorch  skip the PyTorch reference runs
  env TRANSFERLAB_BENCH_PYTHON: the Python with torch (default /usr/bin/python3)
  env TRANSFERLAB_TEST_ASSETS: a folder with data/PetImages/{Cat,Dog}/*.jpg; the real-run figures
      (decode, CNN epoch, feature cache) then use those real photos (without it: generated JPEGs)`;

export function parseArgs(argv: string[]): BenchOptions {
  let json = false;
  let quick = false;
  let noPytorch = false;
  let threads = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') json = true;
    else if (a === '--quick') quick = true;
    else if (a === '--no-pytorch') noPytorch = true;
    else if (a === '--threads' || a.startsWith('--threads=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`--threads needs a positive integer, got '${v ?? ''}'\n${USAGE}`);
      threads = n;
    } else if (a === '--help' || a === '-h') {
      process.stderr.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown option '${a}'\n${USAGE}`);
  }
  return {
    json,
    quick,
    threads,
    noPytorch,
    python: process.env.TRANSFERLAB_BENCH_PYTHON ?? '/usr/bin/python3',
    sizes: quick ? QUICK_SIZES : FULL_SIZES,
  };
}

/**
 * Options of the small bench scripts (dnnl-conv, chunked-forward, prefetch-micro) (`--name value`), checked: a typo stops the
 * script with the option's name instead of running with NaN.
 */

function value(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
  return v;
}

/** A positive integer, `fallback` when the option is absent. */
export function intOption(name: string, fallback: number): number {
  const v = value(name);
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive integer (got '${v}')`);
  return n;
}

/** A positive number (Infinity allowed), undefined when the option is absent. */
export function numberOption(name: string): number | undefined {
  const v = value(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(n > 0)) throw new Error(`${name} needs a positive number or Infinity (got '${v}')`);
  return n;
}

/** One of `choices`, the first when the option is absent. */
export function choiceOption<T extends string>(name: string, choices: readonly [T, ...T[]]): T {
  const v = value(name) ?? choices[0];
  if (!choices.includes(v as T)) throw new Error(`${name} needs one of ${choices.join(', ')} (got '${v}')`);
  return v as T;
}
