#!/usr/bin/env node
import { cacheCommand } from './commands/cache.js';
import { compareCommand } from './commands/compare.js';
import { dataCommand } from './commands/data.js';
import { lrFindCommand } from './commands/lr-find.js';
import { predictCommand } from './commands/predict.js';
import { reportCommand } from './commands/report.js';
import { weightsCommand } from './commands/weights.js';

const HELP = `transferlab: transfer-learning experiments in TypeScript, computed by libtorch

Usage: transferlab <command> [options]

Commands:
  compare    train a CNN from scratch and a pretrained-base transfer model, compare them (the main job)
  data       dataset figures: transferlab data info --data-dir PATH
  weights    pretrained weights: transferlab weights fetch vgg16
  lr-find    learning-rate range test (fastai's) for the CNN or transfer head: suggested rate and plot
  predict    classify images with a trained model: transferlab predict --model RUN/transfer IMAGE...
  report     regenerate plots and report.html of a run: transferlab report RUN_DIR
  cache      see and clear the cache: transferlab cache list, transferlab cache clear --stale

Run \`transferlab <command> --help\` for a command's options.
`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  compare: compareCommand,
  data: dataCommand,
  weights: weightsCommand,
  predict: predictCommand,
  'lr-find': lrFindCommand,
  report: reportCommand,
  cache: cacheCommand,
};

/** Disk problems anywhere (caches, checkpoints, reports) get the same advice; files already written stay whole. */
function diskHint(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return '\nThe disk is full. Free some space, or put the cache (--cache-dir, TRANSFERLAB_CACHE_DIR) or the run folder (--out) on another disk; an interrupted run continues with --resume.';
  }
  if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
    return '\nA folder is not writable: choose another with --cache-dir / --out.';
  }
  return '';
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return command ? 0 : 2;
  }
  const run = COMMANDS[command];
  if (!run) {
    console.error(`transferlab: unknown command '${command}'\n\n${HELP}`);
    return 2;
  }
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`transferlab: ${error instanceof Error ? error.message : String(error)}${diskHint(error)}`);
    if (process.env.TRANSFERLAB_DEBUG && error instanceof Error) console.error(error.stack);
    process.exitCode = 1;
  },
);
