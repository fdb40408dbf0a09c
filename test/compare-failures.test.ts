/**
 * `compare` never reports success it did not earn: a model whose loss became NaN is failed in the
 * report and summary (exit 1), and a run that cannot start does not block its own folder.
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { makePetImages } from './helpers/pet-images.js';
import { describeRun, readJson, runCli, withTempDir } from './helpers/transfer-helpers.js';

const TINY = ['--image-size', '96', '--epochs', '1', '--models', 'cnn'];

test('a CNN whose val_loss becomes NaN is failed, in words, in summary.json and report.html; exit 1', { timeout: 300_000 }, async () => {
  await withTempDir('failures-nan', async (dir) => {
    const pets = await makePetImages(dir, { perClass: 12, width: 48, height: 40, seed: 3 });
    const out = path.join(dir, 'run');
    // a learning rate of 1e30 sends the weights to infinity in the first step
    const r = await runCli(['compare', '--data-dir', pets, ...TINY, '--learning-rate', '1e30', '--out', out], {
      cacheDir: path.join(dir, 'cache'),
    });
    assert.equal(r.code, 1, describeRun(r));
    const summary = await readJson(path.join(out, 'summary.json'));
    const [cnn] = summary.models;
    assert.match(cnn.error, /loss became NaN in epoch 1.*--learning-rate/);
    assert.equal(cnn.history.loss.length, 1, 'the history that was measured is kept');
    const html = await readFile(path.join(out, 'report.html'), 'utf8');
    assert.match(html, /badge failed/);
    assert.doesNotMatch(html, /badge ok/, 'no model is marked ok');
    assert.match(html, /loss became NaN in epoch 1/);
    assert.match(r.stdout, /CNN failed: .*NaN/);
  });
});

test('a run refused for its data leaves no folder; the corrected command then runs into it', { timeout: 300_000 }, async () => {
  await withTempDir('failures-folder', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const out = path.join(dir, 'X');
    const bad = await runCli(['compare', '--data-dir', path.join(dir, 'nope'), ...TINY, '--out', out], { cacheDir });
    assert.equal(bad.code, 1, describeRun(bad));
    assert.match(bad.stderr, /Data folder not found: .*nope/);
    assert.ok(!existsSync(out), 'the failed run left nothing in X');

    const pets = await makePetImages(dir, { perClass: 6, width: 48, height: 40, seed: 4 });
    const good = await runCli(['compare', '--data-dir', pets, ...TINY, '--out', out], { cacheDir });
    assert.equal(good.code, 0, describeRun(good));
    assert.equal((await readJson(path.join(out, 'config.json'))).dataDir, pets, 'the run holds the corrected settings');
    // the cache estimate is shown before training: images × H×W×3 bytes
    assert.match(good.stdout, /disk: decoded images [\d.]+ MB \(12 × 96×96×3 bytes\); [\d.]+ MB free in /);

    // without --out, a failure leaves no empty runs/<time>/
    const cwd = path.join(dir, 'cwd');
    await mkdir(cwd);
    const noOut = await runCli(['compare', '--data-dir', path.join(dir, 'nope'), ...TINY], { cacheDir, cwd });
    assert.equal(noOut.code, 1, describeRun(noOut));
    assert.deepEqual(await readdir(cwd), [], 'no runs/ folder was made');
  });
});
