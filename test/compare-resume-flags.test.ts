/**
 * `compare --resume DIR` with other flags: the saved settings by default; flags that cannot change
 * results already produced (more epochs, threads, moved data, transfer settings before that model
 * started) are applied and recorded in config.json's history; the others are refused by name.
 */

import assert from 'node:assert/strict';
import { cp, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { makePetImages } from './helpers/pet-images.js';
import { TINY_OUTPUT_LAYER, writeTinyBackbone } from './helpers/tiny-backbone.js';
import { assertClose, describeRun, readJson, runCli, withTempDir } from './helpers/transfer-helpers.js';

test('--resume --epochs extends a finished run (with moved data and other threads); results-changing flags are refused', {
  timeout: 600_000,
}, async () => {
  await withTempDir('resume-flags-epochs', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const pets = await makePetImages(path.join(dir, 'a'), { perClass: 12, width: 48, height: 40, seed: 7 });
    const common = ['--image-size', '96', '--batch-size', '8', '--models', 'cnn', '--cache-dir', cacheDir];
    const run = path.join(dir, 'run');
    const first = await runCli(['compare', '--data-dir', pets, ...common, '--epochs', '1', '--out', run], { cacheDir });
    assert.equal(first.code, 0, describeRun(first));
    const oneEpoch = (await readJson(path.join(run, 'summary.json'))).models[0].history;

    // the data moved; the run asks for one more epoch, on one thread
    const moved = path.join(dir, 'b', 'PetImages');
    await cp(pets, moved, { recursive: true });
    const extended = await runCli(['compare', '--resume', run, '--epochs', '2', '--threads', '1', '--data-dir', moved], { cacheDir });
    assert.equal(extended.code, 0, describeRun(extended));
    assert.match(extended.stdout, /resuming after epoch 1/);
    const history = (await readJson(path.join(run, 'summary.json'))).models[0].history;
    assert.equal(history.loss.length, 2, 'two epochs recorded');
    assert.deepEqual(history.loss.slice(0, 1), oneEpoch.loss, 'the first epoch is kept as measured');
    const config = await readJson(path.join(run, 'config.json'));
    assert.equal(config.epochs, 2);
    assert.equal(config.threads, 1);
    assert.equal(config.dataDir, moved);
    assert.equal(config.history.length, 1);
    assert.deepEqual(config.history[0].changed.epochs, [1, 2]);
    assert.deepEqual(config.history[0].changed.threads, [0, 1]);
    assert.ok(config.history[0].changed['data-dir'], 'the data move is recorded');
    assert.ok(!Number.isNaN(Date.parse(config.history[0].at)));

    // the extension continues the optimizer: same as two epochs straight
    const straight = path.join(dir, 'straight');
    const s = await runCli(['compare', '--data-dir', pets, ...common, '--epochs', '2', '--out', straight], { cacheDir });
    assert.equal(s.code, 0, describeRun(s));
    const twoEpochs = (await readJson(path.join(straight, 'summary.json'))).models[0].history;
    for (const k of ['loss', 'val_loss', 'accuracy', 'val_accuracy']) assertClose(history[k], twoEpochs[k], 1e-4, `history.${k}`);

    // flags that would change what is already there are refused by name; nothing is touched
    const before = await readFile(path.join(run, 'config.json'), 'utf8');
    const refused = await runCli(['compare', '--resume', run, '--learning-rate', '0.01', '--seed', '7', '--epochs', '1'], { cacheDir });
    assert.equal(refused.code, 2, describeRun(refused));
    for (const flag of ['--learning-rate', '--seed', '--epochs'])
      assert.ok(refused.stderr.includes(flag), `names ${flag}: ${refused.stderr}`);
    assert.match(refused.stderr, /CNN has trained 2 epoch\(s\)/);
    assert.equal(await readFile(path.join(run, 'config.json'), 'utf8'), before, 'config.json unchanged');

    // other data under a moved path is not the run's data
    const other = await makePetImages(path.join(dir, 'c'), { perClass: 10, width: 48, height: 40, seed: 8 });
    const wrong = await runCli(['compare', '--resume', run, '--data-dir', other], { cacheDir });
    assert.equal(wrong.code, 1, describeRun(wrong));
    assert.match(wrong.stderr, /not what the run started with/);
    assert.equal(await readFile(path.join(run, 'config.json'), 'utf8'), before, 'config.json unchanged');
  });
});

test('--resume takes a fixed --backbone-output while the transfer model has not started, and refuses it after', {
  timeout: 600_000,
}, async () => {
  await withTempDir('resume-flags-backbone', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const pets = await makePetImages(dir, { perClass: 10, width: 48, height: 40, seed: 9 });
    const tiny = await writeTinyBackbone(path.join(dir, 'tiny'));
    const run = path.join(dir, 'run');
    const stopped = await runCli(
      [
        'compare',
        '--data-dir',
        pets,
        '--image-size',
        '96',
        '--batch-size',
        '8',
        '--epochs',
        '1',
        '--cache-dir',
        cacheDir,
        '--backbone',
        tiny.modelJson,
        '--backbone-output',
        'conv_pw_2_relu',
        '--head-units',
        '8',
        '--out',
        run,
      ],
      { cacheDir, stopAfterEpoch: 1 },
    );
    assert.equal(stopped.code, 130, describeRun(stopped));
    const before = await readFile(path.join(run, 'config.json'), 'utf8');

    // a typo is caught before anything runs, and the run is left as it was
    const typo = await runCli(['compare', '--resume', run, '--backbone-output', 'conv_pw_3_rel'], { cacheDir });
    assert.equal(typo.code, 1, describeRun(typo));
    assert.match(typo.stderr, new RegExp(`Close names: ${TINY_OUTPUT_LAYER}`));
    assert.equal(await readFile(path.join(run, 'config.json'), 'utf8'), before);

    const fixed = await runCli(['compare', '--resume', run, '--backbone-output', TINY_OUTPUT_LAYER], { cacheDir });
    assert.equal(fixed.code, 0, describeRun(fixed));
    const config = await readJson(path.join(run, 'config.json'));
    assert.equal(config.backboneOutput, TINY_OUTPUT_LAYER);
    assert.deepEqual(
      config.history.map((h: { changed: object }) => h.changed),
      [{ 'backbone-output': ['conv_pw_2_relu', TINY_OUTPUT_LAYER] }],
    );
    const transfer = (await readJson(path.join(run, 'summary.json'))).models[1];
    assert.equal(transfer.error, undefined);
    assert.match(await readFile(path.join(run, 'transfer', 'summary.txt'), 'utf8'), new RegExp(TINY_OUTPUT_LAYER));

    const late = await runCli(['compare', '--resume', run, '--backbone-output', 'conv_pw_2_relu'], { cacheDir });
    assert.equal(late.code, 2, describeRun(late));
    assert.match(late.stderr, /--backbone-output \(TRANSFER has trained 1 epoch\(s\)\)/);
  });
});
