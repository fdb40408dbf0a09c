/**
 * A tiny real `compare` run (generated images at 96x96, the smallest input the CNN takes, and a
 * generated one-conv TF.js backbone): the summary names each figure for what it is, one checkpoint
 * (best/) is behind every evaluated figure, wall time includes data and feature extraction, and
 * `transferlab report` rewrites identical files.
 */

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { reportCommand } from '../lib/cli/commands/report.js';
import { type CompareResult, runCompare } from '../lib/experiment/compare.js';
import { type CompareConfig, DEFAULT_CONFIG } from '../lib/experiment/config.js';
import { decodeExperimentData, inspectExperimentData } from '../lib/experiment/data.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import type { ModelRunSummary } from '../lib/reports/types.js';
import { loadModel, saveModel } from '../lib/saving/persistence.js';

/**
 * root/cat and root/dog of the same grey noise: labels carry no signal, so both models overfit and
 * their val_loss turns up before the last epoch, which makes best/ differ from the final weights.
 */
async function makeImageFolder(root: string, perClass: number): Promise<void> {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (const [cls, base] of [
    ['cat', 128],
    ['dog', 128],
  ] as const) {
    await mkdir(path.join(root, cls), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const pixels = Buffer.alloc(32 * 32 * 3);
      for (let p = 0; p < pixels.length; p++) pixels[p] = Math.max(0, Math.min(255, base + Math.round((random() - 0.5) * 120)));
      await sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } })
        .jpeg({ quality: 95 })
        .toFile(path.join(root, cls, `${cls}.${i}.jpg`));
    }
  }
}

/** A small TF.js layers model to serve as the frozen base. */
async function makeBackbone(dir: string): Promise<string> {
  const base = new Sequential(
    [layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', inputShape: [32, 32, 3] }), layers.maxPooling2d({ poolSize: 4 })],
    { seed: 3, preprocessing: 'tf' },
  );
  await saveModel(base, dir);
  return path.join(dir, 'model.json');
}

function configFor(dir: string, name: string, extra: Partial<CompareConfig>): CompareConfig {
  return {
    ...DEFAULT_CONFIG,
    imageFolder: path.join(dir, 'images'),
    imageSize: [96, 96],
    batchSize: 4,
    epochs: 4,
    threads: 1,
    cacheDir: path.join(dir, 'cache'),
    out: path.join(dir, name),
    ...extra,
  };
}

/** The first highest / lowest finite value and its 1-based epoch, computed naively. */
function extreme(values: number[], sign: 1 | -1): { value: number; epoch: number } {
  let at = -1;
  for (let i = 0; i < values.length; i++) if (at < 0 || sign * values[i]! > sign * values[at]!) at = i;
  return { value: values[at]!, epoch: at + 1 };
}

describe('compare names its figures, uses one checkpoint, times every phase', { timeout: 600_000 }, () => {
  let dir: string;
  let run: CompareResult;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'transferlab-figures-'));
    await makeImageFolder(path.join(dir, 'images'), 16);
    const backbone = await makeBackbone(path.join(dir, 'backbone'));
    run = await runCompare(configFor(dir, 'run', { backbone, headUnits: [32] }), { log: () => {} });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('best val_accuracy, lowest val_loss and the last epoch are each what their name says', () => {
    for (const m of run.summary!.models) {
      assert.equal(m.error, undefined, `${m.name}: ${m.error}`);
      const bestAccuracy = extreme(m.history.val_accuracy, 1);
      const lowestLoss = extreme(m.history.val_loss, -1);
      assert.deepEqual(m.bestAccuracy, { epoch: bestAccuracy.epoch, val_accuracy: bestAccuracy.value }, `${m.name} bestAccuracy`);
      assert.deepEqual([m.best.epoch, m.best.val_loss], [lowestLoss.epoch, lowestLoss.value], `${m.name} best = lowest val_loss`);
      assert.equal(m.best.val_accuracy, m.history.val_accuracy[lowestLoss.epoch - 1]);
      assert.deepEqual(
        m.final,
        { val_loss: m.history.val_loss[3], val_accuracy: m.history.val_accuracy[3] },
        `${m.name} final = last epoch`,
      );
      assert.ok(m.best.epoch < 4, `${m.name}: the fixture must make the best epoch come before the last (val_loss ${m.history.val_loss})`);
    }
  });

  test('predict, the confusion matrix and the gallery all use best/, evaluated on the whole validation split', async () => {
    const config = run.summary!.config as unknown as CompareConfig;
    const data = await decodeExperimentData(await inspectExperimentData(config), config);
    const validationSize = data.validation.size;
    assert.equal(run.summary!.validation?.examples, validationSize);
    assert.equal(run.summary!.validation?.window, undefined, 'without --faithful each epoch validates on the whole split');
    for (const m of run.summary!.models) {
      const c = m.checkpoint!;
      assert.deepEqual([c.name, c.epoch, c.examples], ['best', m.best.epoch, validationSize], `${m.name} checkpoint`);
      // Without --faithful, the best epoch's own validation figures are the checkpoint's.
      assert.ok(Math.abs(c.val_accuracy - m.history.val_accuracy[m.best.epoch - 1]!) < 1e-9, `${m.name} checkpoint accuracy = its epoch's`);
      assert.ok(Math.abs(c.val_loss - m.history.val_loss[m.best.epoch - 1]!) < 1e-5, `${m.name} checkpoint loss = its epoch's`);
      // best/ loaded as predict loads it, evaluated on the images, agrees with the matrix.
      const { model } = await loadModel(path.join(run.runDir, m.name, 'best'));
      const check = await model.evaluate(data.validation);
      const matrix = m.confusion!.matrix;
      assert.equal(
        matrix.flat().reduce((a, b) => a + b, 0),
        validationSize,
      );
      assert.ok(
        Math.abs((matrix[0]![0]! + matrix[1]![1]!) / validationSize - check.accuracy) < 1e-9,
        `${m.name} confusion diagonal = best/ accuracy`,
      );
      assert.ok(Math.abs(check.accuracy - c.val_accuracy) < 1e-9, `${m.name} best/ accuracy as predict loads it`);
      const wrong = validationSize - (matrix[0]![0]! + matrix[1]![1]!);
      assert.equal(m.mostConfidentlyWrong!.length, Math.min(wrong, 12), `${m.name} gallery lists best/'s mistakes`);
      assert.equal(m.mostConfidentlyCorrect!.length, Math.min(validationSize - wrong, 12), `${m.name} gallery lists best/'s right answers`);
      // both models are convolutional (the transfer model through its base): every gallery image has a Grad-CAM PNG
      for (const item of [...m.mostConfidentlyCorrect!, ...m.mostConfidentlyWrong!]) {
        const png = await sharp(Buffer.from(item.gradCamBase64 ?? '', 'base64')).metadata();
        assert.deepEqual([png.format, png.width, png.height], ['png', 128, 128], `${m.name} Grad-CAM of ${item.key}`);
      }
      assert.ok(m.curves && m.curves.positives + m.curves.negatives === validationSize, `${m.name} ROC/PR on the whole split`);
      const evaluation = JSON.parse(await readFile(path.join(run.runDir, m.name, 'evaluation.json'), 'utf8'));
      assert.deepEqual(evaluation, { checkpoint: c, confusion: m.confusion });
    }
  });

  test('wall time per model includes data and, for the transfer model, feature extraction', async () => {
    const byName = new Map(run.summary!.models.map((m) => [m.name, m] as [string, ModelRunSummary]));
    for (const m of run.summary!.models) {
      const t = m.timings!;
      const parts = [t.dataSeconds, t.featureExtractionSeconds, t.trainingSeconds, t.evaluationSeconds];
      assert.ok(
        parts.every((s) => Number.isFinite(s) && s >= 0),
        `${m.name} parts ${parts}`,
      );
      assert.ok(Math.abs(t.totalSeconds - parts.reduce((a, b) => a + b, 0)) < 1e-9, `${m.name} total = sum of parts`);
      assert.ok(t.dataSeconds > 0 && t.trainingSeconds > 0 && t.evaluationSeconds > 0, `${m.name} data, training, evaluation measured`);
      assert.ok(Math.abs(t.trainingSeconds - m.epochSeconds.reduce((a, b) => a + b, 0)) < 1e-9, `${m.name} training = the epochs`);
      const file = JSON.parse(await readFile(path.join(run.runDir, m.name, 'timings.json'), 'utf8'));
      for (const [k, v] of Object.entries(t)) assert.equal(file[k], v, `${m.name}/timings.json ${k}`);
    }
    assert.equal(byName.get('cnn')!.timings!.featureExtractionSeconds, 0);
    const transfer = byName.get('transfer')!.timings!;
    assert.ok(transfer.featureExtractionSeconds > 0, 'feature extraction measured');
    assert.ok(transfer.totalSeconds > transfer.trainingSeconds + transfer.featureExtractionSeconds, 'and counted in the total');
    const html = await readFile(path.join(run.runDir, 'report.html'), 'utf8');
    assert.match(html, /<dt>Feature extraction \(frozen base\)<\/dt>/);
  });

  test('the configuration shows the data source used, no download flag, no undefined rows', async () => {
    const html = await readFile(path.join(run.runDir, 'report.html'), 'utf8');
    const configuration = /<section id="configuration">[\s\S]*?<\/section>/.exec(html)![0];
    assert.ok(!configuration.includes('undefined'), 'no undefined rows');
    assert.ok(!/<th scope="row">download<\/th>/.test(configuration), 'no download row when --image-folder was given');
    assert.ok(configuration.includes(`<th scope="row">data source used</th><td><code>${path.join(dir, 'images')} (--image-folder)</code>`));
    assert.match(configuration, /<th scope="row">memoryBytes<\/th><td><code>\d+(\.\d)? [kMGT]?B<\/code>/);
  });

  test('transferlab report RUN regenerates byte-identical files', async () => {
    const before = new Map<string, Buffer>();
    const files = (await readdir(run.runDir)).filter((f) => /\.(html|svg|png)$/.test(f));
    assert.ok(files.includes('report.html') && files.length >= 7, files.join(' '));
    for (const f of files) before.set(f, await readFile(path.join(run.runDir, f)));
    const out = { stdout: { write: () => true }, stderr: { write: (t: string) => assert.fail(t) } };
    assert.equal(await reportCommand([run.runDir], out), 0);
    for (const f of files) assert.ok((await readFile(path.join(run.runDir, f))).equals(before.get(f)!), `${f} regenerated identically`);
  });

  test('with --faithful the per-epoch figures are labelled as a validation window, the checkpoint as the whole split', async () => {
    const faithful = await runCompare(configFor(dir, 'faithful', { models: ['cnn'], faithful: true, epochs: 2 }), { log: () => {} });
    const m = faithful.summary!.models[0]!;
    assert.equal(m.error, undefined, m.error);
    const validationSize = faithful.summary!.validation!.examples;
    const window = faithful.summary!.validation!.window!;
    // validation_steps = int(n_val * 0.2) // batch + 1
    assert.deepEqual(window, { steps: Math.floor(Math.floor(validationSize * 0.2) / 4) + 1, batchSize: 4 });
    assert.deepEqual([m.checkpoint!.epoch, m.checkpoint!.examples], [m.best.epoch, validationSize]);
    const html = await readFile(path.join(faithful.runDir, 'report.html'), 'utf8');
    const head = /<table class="results">\s*<thead>[\s\S]*?<\/thead>/.exec(html)![0];
    const images = window.steps * window.batchSize;
    assert.equal(head.split(`window of ${images} images`).length - 1, 3, 'best, lowest and last-epoch columns say window');
    assert.ok(head.includes(`Checkpoint best/<div class="sub">whole validation split, ${validationSize} images</div>`));
    assert.match(html, new RegExp(`a window of ${window.steps} batches of 4 \\(${images} images\\)`));
  });
});
