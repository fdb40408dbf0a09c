/**
 * fastai's learning-rate range test: the exponential sweep, the smoothed loss and its stop rule, the
 * suggestion in the descending part of the curve, the weights and optimizer state put back, the plot
 * as valid PNG and SVG, and `transferlab lr-find` on a small generated image folder.
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Resvg } from '@resvg/resvg-js';
import { layers } from '../lib/models/layers.js';
import { optimizers } from '../lib/models/optimizers.js';
import { Sequential } from '../lib/models/sequential.js';
import { renderLrFind } from '../lib/reports/lr-find-chart.js';
import { lrFind, suggestLearningRate } from '../lib/training/lr-finder.js';
import { ArrayDataset, Rng } from './helpers/naive.js';
import { makePetImages } from './helpers/pet-images.js';
import { describeRun, generatedCompareInputs, runCli } from './helpers/transfer-helpers.js';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function data(n: number): ArrayDataset {
  const rng = new Rng(5);
  const x = new Float32Array(n * 6).map(() => rng.next() * 2 - 1);
  const y = new Float32Array(n).map((_, i) => (x[i * 6] - x[i * 6 + 2] > 0 ? 1 : 0));
  return new ArrayDataset(x, [6], y, 64);
}

function model(): Sequential {
  const m = new Sequential(
    [layers.dense({ units: 8, activation: 'relu', inputShape: [6] }), layers.dense({ units: 1, activation: 'sigmoid' })],
    {
      seed: 2,
      preprocessing: 'none',
    },
  );
  m.compile({ optimizer: optimizers.adam({ learningRate: 1e-6 }), loss: 'binaryCrossentropy' });
  return m;
}

test('the sweep is exponential, the loss smoothed as fastai, stopped at 4x the best, and the model left as it was', async () => {
  const m = model();
  const d = data(512);
  // Adam moments and iterations that must survive the test (at a rate too low to learn much yet)
  await m.fit(d, { epochs: 1, verbose: 0 });
  const weights = m.getWeights();
  const state = m.engine.getOptimizerState();
  const numIt = 100;
  const r = await lrFind(m, d, { startLr: 1e-5, endLr: 100, numIt });

  assert.equal(r.learningRates[0], 1e-5);
  const ratio = (100 / 1e-5) ** (1 / numIt);
  r.learningRates.forEach((lr, i) => assert.ok(Math.abs(lr / (1e-5 * ratio ** i) - 1) < 1e-9, `rate ${i}: ${lr}`));

  // naive smoothing: bias-corrected exponential average with beta 0.98
  let avg = 0;
  r.losses.forEach((loss, i) => {
    avg = 0.98 * avg + 0.02 * loss;
    const expected = avg / (1 - 0.98 ** (i + 1));
    assert.ok(Math.abs(r.smoothedLosses[i] - expected) <= 1e-9 * Math.max(1, expected), `smoothed ${i}`);
  });
  // the stop rule: no earlier point exceeded 4x the best so far; the last one did if it stopped early
  const last = r.smoothedLosses.length - 1;
  for (let i = 0; i < last; i++)
    assert.ok(r.smoothedLosses[i] <= 4 * Math.min(...r.smoothedLosses.slice(0, i + 1)), `point ${i} below 4x best`);
  assert.equal(r.diverged, last < numIt - 1 || !(r.smoothedLosses[last] <= 4 * Math.min(...r.smoothedLosses)));
  assert.ok(r.diverged, `a rate of up to 100 makes the loss diverge (ran ${r.learningRates.length} iterations)`);

  // the suggestion: where the smoothed loss falls, before its minimum
  const { steep, steepIndex, minimum, minimumIndex } = r.suggestion;
  assert.equal(steep, r.learningRates[steepIndex]);
  assert.ok(r.smoothedLosses[steepIndex + 1] < r.smoothedLosses[steepIndex], 'the loss descends right after the steep point');
  assert.ok(steepIndex < minimumIndex, 'the steep point comes before the minimum');
  assert.ok(r.smoothedLosses[minimumIndex] < r.smoothedLosses[Math.floor(numIt / 10)], 'the minimum is below where the sweep is read from');
  assert.equal(minimum, r.learningRates[minimumIndex] / 10);

  assert.deepEqual(m.getWeights(), weights, 'weights restored');
  assert.deepEqual(m.engine.getOptimizerState(), state, 'optimizer moments and iterations restored');
  assert.equal(m.learningRate, 1e-6, 'learning rate restored');
});

test('suggestLearningRate: steepest descent against log(lr) and minimum/10, skipping the first tenth and the last five', () => {
  const lrs = Array.from({ length: 20 }, (_, i) => 10 ** (i - 10));
  // flat, a slow fall, one steep drop between points 6 and 7, the minimum at 9, then up
  const losses = [5, 1, 1, 1, 1, 0.95, 0.9, 0.5, 0.45, 0.4, 0.6, 0.9, 1.4, 2, 3, 0.01, 0.01, 0.01, 0.01, 0.01];
  const s = suggestLearningRate(lrs, losses, 20)!;
  assert.equal(s.steepIndex, 6);
  assert.equal(s.steep, lrs[6]);
  assert.equal(s.minimumIndex, 9, 'the low values at the end are among the five skipped');
  assert.equal(s.minimum, lrs[9] / 10);
  assert.equal(suggestLearningRate(lrs.slice(0, 7), losses.slice(0, 7), 20), undefined, 'too few points');
});

test('the lr-find plot renders as a PNG and a well-formed SVG', async () => {
  const lrs = Array.from({ length: 30 }, (_, i) => 1e-6 * 1.6 ** i);
  const smoothedLosses = lrs.map((_, i) => 1 - 0.6 / (1 + Math.exp(-(i - 12) / 2)) + (i > 22 ? (i - 22) * 0.2 : 0));
  const { svg, png } = await renderLrFind(
    { learningRates: lrs, smoothedLosses, suggestion: { steep: lrs[12], steepIndex: 12, minimum: lrs[20] / 10, minimumIndex: 20 } },
    'Test <&> sweep',
  );
  assert.deepEqual([...png.subarray(0, 8)], PNG_SIGNATURE);
  assert.match(svg, /^<svg[\s>]/);
  // resvg's XML parser is strict: it throws on a malformed document
  assert.ok(new Resvg(svg).width > 0);
  assert.match(svg, /Test &lt;&amp;&gt; sweep/, 'the title is escaped');
  assert.match(svg, /steep \d\.\d\de-\d/);
  assert.match(svg, /minimum\/10 \d\.\d\de-\d/);
});

test('transferlab lr-find on a small image folder: suggestion printed, plot and CSV written', { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'transferlab-lr-find-'));
  try {
    await makePetImages(dir, { perClass: 12, width: 100, height: 100, seed: 4 });
    const out = path.join(dir, 'out');
    const cacheDir = path.join(dir, 'cache');
    const args = [
      'lr-find',
      '--data-dir',
      dir,
      '--image-size',
      '96',
      '--batch-size',
      '8',
      '--num-it',
      '16',
      '--start-lr',
      '1e-5',
      '--end-lr',
      '1',
    ];
    const r = await runCli([...args, '--out', out, '--cache-dir', cacheDir], { cacheDir });
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /Suggested learning rate: \d\.\d\de-?\+?\d+ \(steepest descent\); minimum\/10: /);
    for (const ext of ['png', 'svg', 'csv']) assert.ok(existsSync(path.join(out, `lr-find-cnn.${ext}`)), `lr-find-cnn.${ext}`);
    assert.deepEqual([...(await readFile(path.join(out, 'lr-find-cnn.png'))).subarray(0, 8)], PNG_SIGNATURE);
    assert.ok(new Resvg(await readFile(path.join(out, 'lr-find-cnn.svg'), 'utf8')).width > 0);
    const csv = (await readFile(path.join(out, 'lr-find-cnn.csv'), 'utf8')).trim().split('\n');
    assert.equal(csv[0], 'iteration,learning_rate,loss,smoothed_loss');
    assert.equal(Number(csv[1].split(',')[1]), 1e-5);

    const bad = await runCli(['lr-find', '--data-dir', dir, '--model', 'vgg', '--out', out], { cacheDir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--model takes cnn or transfer \(got 'vgg'\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('transferlab lr-find --model transfer sweeps the head on cached features of the frozen base', { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'transferlab-lr-find-transfer-'));
  try {
    const inputs = await generatedCompareInputs();
    const cacheDir = path.join(dir, 'cache');
    const args = ['lr-find', '--model', 'transfer', '--data-dir', inputs.dataDir, ...inputs.backboneArgs, '--image-size', '96'];
    const r = await runCli([...args, '--batch-size', '16', '--limit', '80', '--num-it', '30', '--out', dir, '--cache-dir', cacheDir], {
      cacheDir,
    });
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /TRANSFER: learning-rate range test on \d+ training examples/);
    assert.ok(existsSync(path.join(dir, 'lr-find-transfer.png')));
    const rows = (await readFile(path.join(dir, 'lr-find-transfer.csv'), 'utf8')).trim().split('\n').length - 1;
    assert.ok(rows >= 8 && rows <= 30, `${rows} iterations`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
