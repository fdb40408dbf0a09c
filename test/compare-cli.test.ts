/**
 * `compare` on the command line: help and argument errors (exit 2 naming the flag), and one
 * model failing without destroying the other's results (exit 1).
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_DIST_TIMEOUT_SECONDS } from '../lib/cli/commands/compare.js';
import { DEFAULT_CONFIG } from '../lib/experiment/config.js';
import { sharedPetImages } from './helpers/pet-images.js';
import { writeTinyBackbone } from './helpers/tiny-backbone.js';
import { describeRun, readJson, runCli, withTempDir } from './helpers/transfer-helpers.js';

/** The help text of each `--flag`: its line plus the indented continuation lines. */
function flagBlocks(help: string): Map<string, string> {
  const blocks = new Map<string, string>();
  let current: string | undefined;
  for (const line of help.split('\n')) {
    const m = /^ {2}(?:-\w, )?--([\w-]+)/.exec(line);
    if (m) {
      current = m[1]!;
      blocks.set(current, line);
    } else if (current && /^ {3,}\S/.test(line)) {
      blocks.set(current, `${blocks.get(current)!}\n${line}`);
    } else {
      current = undefined;
    }
  }
  return blocks;
}

/** Every option `compare` accepts. */
const FLAGS = [
  'data-dir',
  'archive',
  'image-folder',
  'no-download',
  'splits',
  'limit',
  'cache-dir',
  'image-size',
  'batch-size',
  'epochs',
  'learning-rate',
  'models',
  'seed',
  'shuffle',
  'threads',
  'device',
  'nproc-per-node',
  'master-port',
  'dist-timeout',
  'dist-backend',
  'faithful',
  'backbone',
  'backbone-output',
  'weights',
  'preprocess',
  'head-units',
  'no-feature-cache',
  'mixed-precision',
  'bf16',
  'fine-tune-epochs',
  'fine-tune-layers',
  'fine-tune-learning-rate',
  'out',
  'resume',
  'help',
];

/** Flags with a default value, and the value the help must state (from DEFAULT_CONFIG). */
const DEFAULTS: Record<string, RegExp> = {
  splits: new RegExp(`default: ${DEFAULT_CONFIG.splits.join(',').replace(/[[\]%:-]/g, '\\$&')}`),
  'cache-dir': /default: .*TRANSFERLAB_CACHE_DIR/,
  'image-size': new RegExp(`default: ${DEFAULT_CONFIG.imageSize[0]}\\b`),
  'batch-size': new RegExp(`default: ${DEFAULT_CONFIG.batchSize}\\b`),
  epochs: new RegExp(`default: ${DEFAULT_CONFIG.epochs}\\b`),
  'learning-rate': /default: 0\.001\b/,
  models: /default: both|default: cnn,transfer/,
  seed: new RegExp(`default: ${DEFAULT_CONFIG.seed}\\b`),
  threads: /default: all cores/,
  device: new RegExp(`default: ${DEFAULT_CONFIG.device}\\b`),
  'dist-timeout': new RegExp(`default: ${DEFAULT_DIST_TIMEOUT_SECONDS}\\b`),
  'dist-backend': /default: auto\b/,
  backbone: new RegExp(`default: ${DEFAULT_CONFIG.backbone}\\b`),
  preprocess: /default: scale01 for vgg16/,
  'head-units': new RegExp(`default: ${DEFAULT_CONFIG.headUnits.join(',')}\\b`),
  'mixed-precision': new RegExp(`default: ${DEFAULT_CONFIG.mixedPrecision}\\b`),
  'fine-tune-epochs': new RegExp(`default: ${DEFAULT_CONFIG.fineTuneEpochs}\\b`),
  'fine-tune-layers': new RegExp(`default: ${DEFAULT_CONFIG.fineTuneLayers}\\b`),
  'fine-tune-learning-rate': /default: 1e-5\b/,
  out: /default: runs\//,
};

test('compare --help exits 0 and documents every flag, with its default', async () => {
  await withTempDir('compare-help', async (dir) => {
    const r = await runCli(['compare', '--help'], { cacheDir: path.join(dir, 'cache') });
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stderr, '');
    const blocks = flagBlocks(r.stdout);
    const missing = FLAGS.filter((f) => !blocks.has(f));
    assert.deepEqual(missing, [], `flags missing from compare --help:\n${r.stdout}`);
    for (const [flag, pattern] of Object.entries(DEFAULTS)) {
      assert.match(blocks.get(flag)!, pattern, `--${flag} states its default`);
    }
    assert.equal(DEFAULT_CONFIG.learningRate, 0.001);
    assert.equal(DEFAULT_CONFIG.fineTuneLearningRate, 1e-5);
    assert.deepEqual(DEFAULT_CONFIG.models, ['cnn', 'transfer']);
    // -h is the same
    const short = await runCli(['compare', '-h'], { cacheDir: path.join(dir, 'cache') });
    assert.equal(short.code, 0);
    assert.equal(short.stdout, r.stdout);
  });
});

test('bad compare flags exit 2 with a message naming the flag, before any work', async () => {
  await withTempDir('compare-bad-flags', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const out = path.join(dir, 'run');
    const data = ['--data-dir', await sharedPetImages(), '--out', out];
    const cases: { args: string[]; names: string[] }[] = [
      { args: [...data, '--epochs', '0'], names: ['--epochs'] },
      { args: [...data, '--epochs', 'two'], names: ['--epochs'] },
      { args: [...data, '--models', 'foo'], names: ['--models', 'foo'] },
      { args: [...data, '--models', 'cnn,foo'], names: ['--models'] },
      { args: [...data, '--archive', path.join(dir, 'x.zip')], names: ['--data-dir', '--archive'] },
      { args: ['--image-folder', dir, '--archive', path.join(dir, 'x.zip'), '--out', out], names: ['--image-folder', '--archive'] },
      { args: [...data, '--batch-size', '-3'], names: ['--batch-size'] },
      { args: [...data, '--image-size', 'big'], names: ['--image-size'] },
      { args: [...data, '--learning-rate', '0'], names: ['--learning-rate'] },
      { args: [...data, '--limit', '0'], names: ['--limit'] },
      { args: [...data, '--epoch', '3'], names: ['--epoch'] },
      { args: [...data, '--preprocess', 'imagenet'], names: ['imagenet'] },
      { args: [...data, '--mixed-precision', 'fp16'], names: ['--mixed-precision', 'fp16'] },
      { args: [...data, '--bf16', '--mixed-precision', 'fp32'], names: ['--bf16', '--mixed-precision'] },
    ];
    for (const c of cases) {
      const r = await runCli(['compare', ...c.args], { cacheDir });
      assert.equal(r.code, 2, `compare ${c.args.join(' ')}\n${describeRun(r)}`);
      for (const name of c.names) assert.ok(r.stderr.includes(name), `message names ${name}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
      assert.ok(!existsSync(out), `no run folder for a usage error (${c.args.join(' ')})`);
    }
  });
});

test('a missing backbone file is refused before the CNN trains; exit 1, the message names the file, no run folder', {
  timeout: 300_000,
}, async () => {
  await withTempDir('compare-missing-backbone', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const runDir = path.join(dir, 'run');
    const missing = path.join(dir, 'nowhere', 'model.json');
    await mkdir(path.join(dir, 'nowhere'));
    const r = await runCli(
      [
        'compare',
        '--data-dir',
        await sharedPetImages(),
        '--image-size',
        '96',
        '--epochs',
        '1',
        '--limit',
        '40',
        '--backbone',
        missing,
        '--out',
        runDir,
        '--cache-dir',
        cacheDir,
      ],
      { cacheDir },
    );
    assert.equal(r.code, 1, describeRun(r));
    assert.ok(r.stderr.includes(missing), `the error names ${missing}: ${r.stderr}`);
    assert.doesNotMatch(r.stdout, /== CNN ==/, 'the CNN did not train');
    assert.ok(!existsSync(runDir), 'no run folder');
  });
});

test('a transfer model that fails in training leaves the CNN results standing; exit 1', { timeout: 900_000 }, async () => {
  await withTempDir('compare-failing', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const runDir = path.join(dir, 'run');
    const tiny = await writeTinyBackbone(path.join(dir, 'tiny'));
    // fine-tuning at a learning rate of 1e30 sends the base's weights to infinity: val_loss NaN
    const r = await runCli(
      [
        'compare',
        '--data-dir',
        await sharedPetImages(),
        '--image-size',
        '96',
        '--epochs',
        '1',
        '--limit',
        '40',
        '--backbone',
        tiny.modelJson,
        '--backbone-output',
        tiny.outputLayer,
        '--head-units',
        '8',
        '--fine-tune-epochs',
        '1',
        '--fine-tune-learning-rate',
        '1e30',
        '--out',
        runDir,
        '--cache-dir',
        cacheDir,
      ],
      { cacheDir },
    );
    assert.equal(r.code, 1, describeRun(r));
    const summary = await readJson(path.join(runDir, 'summary.json'));
    const [cnn, transfer] = summary.models;
    assert.equal(cnn.name, 'cnn');
    assert.equal(cnn.error, undefined);
    assert.equal(cnn.history.val_accuracy.length, 1);
    assert.ok(existsSync(path.join(runDir, 'cnn', 'best', 'model.json')), 'CNN checkpoint kept');
    assert.ok(existsSync(path.join(runDir, 'cnn', 'evaluation.json')), 'CNN evaluation kept');
    assert.equal(transfer.name, 'transfer');
    assert.match(transfer.error, /loss became NaN in epoch 2/);
    assert.ok(existsSync(path.join(runDir, 'report.html')), 'the report is still written');
    assert.match(r.stdout, /TRANSFER failed: .*NaN/, 'the failure is shown to the user');
  });
});
