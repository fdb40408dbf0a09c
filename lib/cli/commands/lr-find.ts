import { capThreads } from '../../engine/threads.js';
import type { ModelKind } from '../../experiment/config.js';
import { runLrFind } from '../../experiment/lr-find.js';
import { parseCompareArgs } from './compare.js';

const HELP = `transferlab lr-find: fastai's learning-rate range test for compare's CNN or transfer head

Trains one batch per iteration at rates growing exponentially from --start-lr to --end-lr, smooths
the loss (exponential average, beta 0.98, bias-corrected), stops once it exceeds 4x its best, and puts
the weights back. Suggests the steepest descent of the smoothed loss and the minimum's rate / 10, and
writes lr-find-<model>.png, .svg (the plot) and .csv (the sweep) into --out.

Usage: transferlab lr-find [options]

  --model cnn|transfer   which of compare's models (default: cnn); transfer trains the head on the
                         frozen base's cached features, as compare does
  --start-lr X           (default: 1e-7)
  --end-lr X             (default: 10)
  --num-it N             iterations (batches) of the sweep (default: 100)
  --out DIR              where the plot and CSV go (default: the current folder)

Data and model options are compare's (see transferlab compare --help): --data-dir, --archive,
--image-folder, --no-download, --splits (the first is swept), --limit, --cache-dir, --image-size,
--batch-size, --seed, --threads, --backbone, --backbone-output, --weights, --preprocess,
--head-units, --no-feature-cache, --bf16.
`;

const OWN = ['--model', '--start-lr', '--end-lr', '--num-it'];
const NOT_HERE = [
  '--resume',
  '--lr-schedule',
  '--reduce-lr-on-plateau',
  '--epochs',
  '--models',
  '--learning-rate',
  '--faithful',
  '--shuffle',
];

/** This command's flags, and the rest (compare's options) for compare's parser. */
function splitArgs(argv: string[]): { own: Map<string, string>; rest: string[] } {
  const own = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes('=')
      ? [argv[i].slice(0, argv[i].indexOf('=')), argv[i].slice(argv[i].indexOf('=') + 1)]
      : [argv[i], undefined];
    if (NOT_HERE.includes(flag)) throw new Error(`${flag} is a compare option that lr-find does not take`);
    if (!OWN.includes(flag)) {
      rest.push(argv[i]);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    own.set(flag, value);
  }
  return { own, rest };
}

function numberFlag(own: Map<string, string>, flag: string, fallback: number): number {
  const text = own.get(flag);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!(Number.isFinite(n) && n > 0)) throw new Error(`${flag} must be a positive number (got '${text}')`);
  return n;
}

export async function lrFindCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  let kind: ModelKind;
  let settings: { startLr: number; endLr: number; numIt: number };
  let config;
  try {
    const { own, rest } = splitArgs(argv);
    const model = own.get('--model') ?? 'cnn';
    if (model !== 'cnn' && model !== 'transfer') throw new Error(`--model takes cnn or transfer (got '${model}')`);
    kind = model;
    settings = {
      startLr: numberFlag(own, '--start-lr', 1e-7),
      endLr: numberFlag(own, '--end-lr', 10),
      numIt: numberFlag(own, '--num-it', 100),
    };
    if (!Number.isInteger(settings.numIt) || settings.numIt < 8)
      throw new Error(`--num-it must be a whole number >= 8 (got ${settings.numIt})`);
    if (settings.endLr <= settings.startLr) throw new Error(`--end-lr (${settings.endLr}) must be above --start-lr (${settings.startLr})`);
    config = parseCompareArgs(rest.includes('--out') || rest.some((a) => a.startsWith('--out=')) ? rest : [...rest, '--out', '.']).config!;
  } catch (error) {
    console.error(`transferlab lr-find: ${(error as Error).message}\nSee transferlab lr-find --help.`);
    return 2;
  }
  const threads = capThreads(config.threads);
  if (threads.warning) console.error(`transferlab lr-find: --threads: ${threads.warning}`);
  const result = await runLrFind({ ...config, threads: threads.threads }, kind, settings);
  const { steep, minimum } = result.suggestion;
  const ran = result.learningRates.length;
  console.log(
    `Swept ${ran} iterations from ${settings.startLr} to ` +
      `${result.learningRates[ran - 1].toExponential(2)}${result.diverged ? ' (stopped: the loss diverged)' : ''}; the weights are as before.`,
  );
  console.log(`Suggested learning rate: ${steep.toExponential(2)} (steepest descent); minimum/10: ${minimum.toExponential(2)}`);
  console.log(`Use it with: transferlab compare --learning-rate ${Number(steep.toPrecision(2))}`);
  for (const file of result.files) console.log(`  wrote ${file}`);
  return 0;
}
