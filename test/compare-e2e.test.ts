/**
 * `transferlab compare` end to end in a child process, on generated photos with a generated
 * MobileNet-like TF.js backbone as the pretrained base, then `predict` and `report` on its run.
 * With TRANSFERLAB_TEST_ASSETS, also the real run: real photos, the real MobileNet.
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { mobilenetModelJson, needsMobilenet, needsPetImages, petImagesDir } from './helpers/paths.js';
import {
  assertPng,
  type CliResult,
  describeRun,
  generatedCompareInputs,
  readJson,
  runCli,
  withTempDir,
} from './helpers/transfer-helpers.js';

// values at or below 1e-3 print as Keras prints them, e.g. 9.4206e-04; fit logs learning_rate last
const EPOCH_LINE =
  /\d+\/\d+ \[=+\] - \d+s \d+m?s\/step - loss: [\d.e+-]+ - accuracy: [\d.]+ - val_loss: [\d.e+-]+ - val_accuracy: [\d.]+ - learning_rate: [\d.e+-]+/;
const HISTORY_KEYS = ['loss', 'accuracy', 'val_loss', 'val_accuracy'] as const;

describe('compare with a MobileNet-like base on 110 generated photos', { timeout: 900_000 }, () => {
  let dir: string;
  let cacheDir: string;
  let runDir: string;
  let dataDir: string;
  let outputLayer: string;
  let result: CliResult;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'transferlab-compare-e2e-'));
    cacheDir = path.join(dir, 'cache');
    runDir = path.join(dir, 'run');
    const inputs = await generatedCompareInputs();
    dataDir = inputs.dataDir;
    outputLayer = inputs.outputLayer;
    // 96x96 is about the smallest the experiment CNN takes (five 3x3 convs and 2x2 pools)
    result = await runCli(
      [
        'compare',
        '--data-dir',
        dataDir,
        ...inputs.backboneArgs,
        '--image-size',
        '96',
        '--epochs',
        '3',
        '--batch-size',
        '16',
        '--limit',
        '110',
        '--out',
        runDir,
        '--cache-dir',
        cacheDir,
      ],
      { cacheDir },
    );
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('exits 0 and prints Keras-like epoch lines', () => {
    assert.equal(result.code, 0, describeRun(result));
    assert.match(result.stdout, /^Epoch 1\/3$/m);
    assert.match(result.stdout, /^Epoch 3\/3$/m);
    const lines = result.stdout.split('\n').filter((l) => EPOCH_LINE.test(l));
    assert.equal(lines.length, 6, `three epoch lines per model:\n${result.stdout.slice(-3000)}`);
    // the cache is where it was told to be, nothing in the user's cache
    assert.ok(existsSync(path.join(cacheDir, 'features')), 'features cached under --cache-dir');
  });

  test('the run folder has config, environment, dataset and a complete summary', async () => {
    assert.equal(result.code, 0, describeRun(result));
    for (const f of ['config.json', 'environment.json', 'dataset.json', 'summary.json']) assert.ok(existsSync(path.join(runDir, f)), f);
    const config = await readJson(path.join(runDir, 'config.json'));
    assert.equal(config.epochs, 3);
    assert.equal(config.limit, 110);
    assert.deepEqual(config.imageSize, [96, 96]);
    assert.equal(config.backboneOutput, outputLayer);
    const dataset = await readJson(path.join(runDir, 'dataset.json'));
    assert.deepEqual(dataset.splits, { train: 88, validation: 22 });
    const environment = await readJson(path.join(runDir, 'environment.json'));
    assert.equal(typeof environment.torchVersion, 'string');

    const summary = await readJson(path.join(runDir, 'summary.json'));
    assert.deepEqual(
      summary.models.map((m: { name: string }) => m.name),
      ['cnn', 'transfer'],
    );
    for (const m of summary.models) {
      assert.equal(m.error, undefined, `${m.name} has no error`);
      for (const k of HISTORY_KEYS) {
        assert.ok(Array.isArray(m.history[k]), `${m.name} history.${k}`);
        assert.equal(m.history[k].length, 3, `${m.name} history.${k} has 3 epochs`);
        assert.ok(
          m.history[k].every((v: number) => Number.isFinite(v)),
          `${m.name} history.${k} finite`,
        );
      }
      assert.ok(Number.isInteger(m.best.epoch) && m.best.epoch >= 1 && m.best.epoch <= 3, `${m.name} best.epoch`);
      assert.equal(m.best.val_loss, Math.min(...m.history.val_loss), `${m.name} best.val_loss is the lowest val_loss`);
      assert.equal(m.best.val_loss, m.history.val_loss[m.best.epoch - 1]);
      assert.equal(m.best.val_accuracy, m.history.val_accuracy[m.best.epoch - 1]);
      assert.equal(typeof m.final.val_loss, 'number');
      assert.equal(typeof m.final.val_accuracy, 'number');
      // the final evaluation (whole validation split, final weights) equals the last epoch's validation
      assert.ok(Math.abs(m.final.val_accuracy - m.history.val_accuracy[2]) < 1e-9, `${m.name} final val_accuracy = last epoch's`);
      assert.ok(
        Math.abs(m.final.val_loss - m.history.val_loss[2]) <= 1e-5 * Math.max(1, m.final.val_loss),
        `${m.name} final val_loss = last epoch's`,
      );
    }
  });

  test('each model folder has history (json, csv), best checkpoint and evaluation', async () => {
    assert.equal(result.code, 0, describeRun(result));
    const summary = await readJson(path.join(runDir, 'summary.json'));
    for (const name of ['cnn', 'transfer']) {
      const m = summary.models.find((x: { name: string }) => x.name === name);
      const folder = path.join(runDir, name);
      const history = await readJson(path.join(folder, 'history.json'));
      for (const k of HISTORY_KEYS) assert.deepEqual(history[k], m.history[k], `${name}/history.json ${k} = summary`);
      const csv = (await readFile(path.join(folder, 'history.csv'), 'utf8')).trim().split('\n');
      assert.equal(csv.length, 4, `${name}/history.csv: header + 3 rows`);
      assert.equal(csv[0], 'epoch,loss,accuracy,val_loss,val_accuracy,learning_rate');
      csv.slice(1).forEach((row, i) => {
        const cells = row.split(',').map(Number);
        assert.equal(cells[0], i + 1);
        assert.ok(Math.abs(cells[3]! - m.history.val_loss[i]) < 1e-12, `${name} csv val_loss row ${i + 1}`);
      });
      assert.ok(existsSync(path.join(folder, 'best', 'model.json')), `${name}/best/model.json`);
      const evaluation = await readJson(path.join(folder, 'evaluation.json'));
      const matrix: number[][] = evaluation.confusion.matrix;
      assert.deepEqual(evaluation.confusion.classNames, ['cat', 'dog']);
      assert.equal(
        matrix.flat().reduce((a, b) => a + b, 0),
        22,
        `${name} confusion matrix sums to the validation size`,
      );
      const correct = matrix[0]![0]! + matrix[1]![1]!;
      assert.ok(
        Math.abs(correct / 22 - evaluation.checkpoint.val_accuracy) < 1e-9,
        `${name} confusion diagonal matches the checkpoint's val_accuracy`,
      );
      assert.deepEqual(evaluation.checkpoint, m.checkpoint, `${name} evaluation.json = summary`);
      assert.equal(m.checkpoint.epoch, m.best.epoch, `${name} the matrix is best/'s`);
    }
  });

  test('plots are valid PNGs and report.html mentions both models', async () => {
    assert.equal(result.code, 0, describeRun(result));
    for (const f of ['val_loss.png', 'val_accuracy.png']) await assertPng(path.join(runDir, f));
    const html = await readFile(path.join(runDir, 'report.html'), 'utf8');
    assert.match(html, /<html/i);
    assert.match(html, /CNN/);
    assert.match(html, /TRANSFER/i);
  });

  test('the transfer model learns the generated classes; only it has a frozen base', async () => {
    assert.equal(result.code, 0, describeRun(result));
    const summary = await readJson(path.join(runDir, 'summary.json'));
    const [cnn, transfer] = summary.models;
    // 22 validation images: 16 right is well clear of a coin toss
    assert.ok(transfer.final.val_accuracy >= 16 / 22, `transfer final val_accuracy ${transfer.final.val_accuracy} >= 16/22`);
    assert.ok(transfer.params.nonTrainable > 0 && cnn.params.nonTrainable === 0, 'only the transfer model has a frozen base');
  });

  test('predict prints class names and probabilities for two photos', async () => {
    assert.equal(result.code, 0, describeRun(result));
    const images = [path.join(dataDir, 'Cat/3.jpg'), path.join(dataDir, 'Dog/3.jpg')];
    const r = await runCli(['predict', '--model', path.join(runDir, 'transfer'), ...images], { cacheDir });
    assert.equal(r.code, 0, describeRun(r));
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 2, r.stdout);
    lines.forEach((line, i) => {
      const [image, label, probability] = line.split('\t');
      assert.equal(image, images[i]);
      assert.ok(label === 'cat' || label === 'dog', `class name, got '${label}'`);
      const p = Number(probability);
      assert.ok(p >= 0.5 && p <= 1, `probability of the predicted class in [0.5, 1], got ${probability}`);
    });

    const json = await runCli(['predict', '--json', '--model', path.join(runDir, 'transfer'), ...images], { cacheDir });
    assert.equal(json.code, 0, describeRun(json));
    const rows = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { image: string; class: string; probability: number; output: number[] });
    assert.deepEqual(
      rows.map((row) => row.image),
      images,
    );
    rows.forEach((row, i) => {
      assert.equal(row.class, lines[i]!.split('\t')[1]);
      assert.equal(row.output.length, 1);
    });
  });

  test('predict: a corrupt image is a clear error for that image, exit 1, the other still predicted', async () => {
    assert.equal(result.code, 0, describeRun(result));
    const broken = path.join(dir, 'empty.jpg');
    await writeFile(broken, Buffer.alloc(0));
    const good = path.join(dataDir, 'Dog/3.jpg');
    const r = await runCli(['predict', '--model', path.join(runDir, 'transfer'), broken, good], { cacheDir });
    assert.equal(r.code, 1, describeRun(r));
    assert.ok(r.stderr.includes(broken), `the error names the image: ${r.stderr}`);
    const errorLine = r.stderr.split('\n').find((l) => l.includes(broken))!;
    assert.ok(errorLine.length > broken.length + 5, `the error says what is wrong: ${errorLine}`);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, r.stdout);
    assert.match(lines[0]!, new RegExp(`^${good.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\t(cat|dog)\t[01]\\.\\d{4}$`));
  });

  test('report regenerates report.html from summary.json', async () => {
    assert.equal(result.code, 0, describeRun(result));
    const html = path.join(runDir, 'report.html');
    await rm(html);
    await rm(path.join(runDir, 'val_loss.png'));
    const r = await runCli(['report', runDir], { cacheDir });
    assert.equal(r.code, 0, describeRun(r));
    const text = await readFile(html, 'utf8');
    assert.match(text, /CNN/);
    assert.match(text, /TRANSFER/i);
    await assertPng(path.join(runDir, 'val_loss.png'));
  });
});

test('compare on real photos with the real MobileNet: the transfer model beats the CNN', {
  skip: needsMobilenet || needsPetImages,
  timeout: 1_200_000,
}, async () => {
  await withTempDir('compare-e2e-real', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const runDir = path.join(dir, 'run');
    const result = await runCli(
      [
        'compare',
        '--data-dir',
        petImagesDir!,
        '--backbone',
        mobilenetModelJson!,
        '--backbone-output',
        'conv_pw_13_relu',
        '--image-size',
        '128',
        '--epochs',
        '2',
        '--limit',
        '300',
        '--out',
        runDir,
        '--cache-dir',
        cacheDir,
      ],
      { cacheDir },
    );
    assert.equal(result.code, 0, describeRun(result));
    const summary = await readJson(path.join(runDir, 'summary.json'));
    assert.deepEqual(
      summary.models.map((m: { name: string }) => m.name),
      ['cnn', 'transfer'],
    );
    const [cnn, transfer] = summary.models;
    assert.ok(
      transfer.final.val_accuracy > cnn.final.val_accuracy,
      `transfer ${transfer.final.val_accuracy} > cnn ${cnn.final.val_accuracy}`,
    );
  });
});
