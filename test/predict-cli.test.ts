/**
 * `transferlab predict` uses the model's own preprocessing and class names, refuses to guess when
 * a model folder does not record them, and names a bad image once. Also: `--threads` above the
 * machine's cores is capped with a warning. A tiny model whose answer flips between `tf` and
 * `scale01` scaling makes a wrong guess visible.
 */

import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { native } from '../lib/engine/native.js';
import { capThreads } from '../lib/engine/threads.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { METADATA_FILE, saveModel } from '../lib/saving/persistence.js';
import { describeRun, runCli, withTempDir } from './helpers/transfer-helpers.js';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/**
 * mean of the inputs + 0.5 through a sigmoid. A black image is -1 everywhere under `tf` (z = -0.5,
 * class 0 "cat") but 0 under `scale01` (z = 0.5, class 1 "dog").
 */
async function savedModel(dir: string): Promise<string> {
  const m = new Sequential([layers.flatten({ inputShape: [4, 4, 3] }), layers.dense({ units: 1, activation: 'sigmoid' })], {
    preprocessing: 'tf',
    seed: 1,
    name: 'tiny',
  });
  m.setLayerWeights(1, [new Float32Array(48).fill(1 / 48), Float32Array.from([0.5])]);
  const modelDir = path.join(dir, 'model');
  await saveModel(m, modelDir, { classNames: ['cat', 'dog'] });
  return modelDir;
}

async function blackImage(dir: string): Promise<string> {
  const file = path.join(dir, 'black.png');
  await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .png()
    .toFile(file);
  return file;
}

const line = (image: string, cls: string, p: number) => `${image}\t${cls}\t${p.toFixed(4)}\n`;

test('predict reads the preprocessing and class names saved with the model', async () => {
  await withTempDir('predict', async (dir) => {
    const model = await savedModel(dir);
    const image = await blackImage(dir);
    const r = await runCli(['predict', '--model', model, image], { cacheDir: dir });
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stdout, line(image, 'cat', 1 - sigmoid(-0.5)));
    const json = await runCli(['predict', '--model', path.join(model, 'model.json'), image], { cacheDir: dir });
    assert.equal(json.stdout, line(image, 'cat', 1 - sigmoid(-0.5)), `the model.json itself: ${describeRun(json)}`);
    const contradicting = await runCli(['predict', '--model', model, '--preprocess', 'scale01', image], { cacheDir: dir });
    assert.equal(contradicting.code, 2, describeRun(contradicting));
    assert.match(contradicting.stderr, /--preprocess scale01 contradicts the model, which was trained with 'tf'/);
  });
});

test('a model folder without transferlab.json needs --preprocess (no guess) and takes --classes', async () => {
  await withTempDir('predict', async (dir) => {
    const model = await savedModel(dir);
    await fs.rm(path.join(model, METADATA_FILE));
    const image = await blackImage(dir);
    const refused = await runCli(['predict', '--model', model, image], { cacheDir: dir });
    assert.equal(refused.code, 2, describeRun(refused));
    assert.equal(refused.stdout, '');
    assert.match(refused.stderr, /has no transferlab\.json, so how its inputs were preprocessed is unknown/);
    assert.match(refused.stderr, /--preprocess scale01\|tf\|caffe/);
    const tf = await runCli(['predict', '--model', model, '--preprocess', 'tf', '--classes', 'cat,dog', image], { cacheDir: dir });
    assert.equal(tf.code, 0, describeRun(tf));
    assert.equal(tf.stdout, line(image, 'cat', 1 - sigmoid(-0.5)));
    const scale01 = await runCli(['predict', '--model', model, '--preprocess', 'scale01', image], { cacheDir: dir });
    assert.equal(scale01.stdout, line(image, '1', sigmoid(0.5)), 'without names, the class index');
    const wrongCount = await runCli(['predict', '--model', model, '--preprocess', 'tf', '--classes', 'cat,dog,bird', image], {
      cacheDir: dir,
    });
    assert.equal(wrongCount.code, 2);
    assert.match(wrongCount.stderr, /--classes names 3 class\(es\) \(cat, dog, bird\) but the model has 2/);
    const badMode = await runCli(['predict', '--model', model, '--preprocess', 'torch', image], { cacheDir: dir });
    assert.equal(badMode.code, 2);
    assert.match(badMode.stderr, /unknown preprocessing 'torch'/);
  });
});

test('--model that is not a model folder says so: a missing folder, a run folder (naming its models), any other folder', async () => {
  await withTempDir('predict', async (dir) => {
    const image = await blackImage(dir);
    const missing = await runCli(['predict', '--model', path.join(dir, 'nope'), image], { cacheDir: dir });
    assert.equal(missing.code, 2, describeRun(missing));
    assert.match(missing.stderr, /--model \S*nope: no such file or folder\. Give a model folder saved by compare/);
    const run = path.join(dir, 'run');
    await saveModel(new Sequential([layers.flatten({ inputShape: [4, 4, 3] })], { name: 'm' }), path.join(run, 'transfer', 'best'));
    const runFolder = await runCli(['predict', '--model', run, image], { cacheDir: dir });
    assert.equal(runFolder.code, 2, describeRun(runFolder));
    assert.match(runFolder.stderr, /holds no saved model: this is a run folder; give --model \S*run\/transfer\.$/m);
    // a save killed between its two renames: the last good copy is put back, as loadModel does
    await fs.rename(path.join(run, 'transfer', 'best'), path.join(run, 'transfer', 'best.previous-1'));
    const recovered = await runCli(['predict', '--model', path.join(run, 'transfer'), image], { cacheDir: dir });
    assert.equal(recovered.code, 0, describeRun(recovered));
    assert.ok(await fs.stat(path.join(run, 'transfer', 'best', 'model.json')));
    const other = await runCli(['predict', '--model', dir, image], { cacheDir: dir });
    assert.equal(other.code, 2, describeRun(other));
    assert.match(other.stderr, /holds no saved model \(a model folder holds model\.json\)/);
    assert.doesNotMatch(other.stderr, /transferlab\.json/, 'not the missing-metadata message');
  });
});

test('a file that is not an image is named once in its error, and the others are still predicted', async () => {
  await withTempDir('predict', async (dir) => {
    const model = await savedModel(dir);
    const image = await blackImage(dir);
    const text = path.join(dir, 'x.txt');
    await fs.writeFile(text, 'not an image');
    const r = await runCli(['predict', '--model', model, text, image], { cacheDir: dir });
    assert.equal(r.code, 1, describeRun(r));
    assert.equal(r.stdout, line(image, 'cat', 1 - sigmoid(-0.5)));
    const errorLine = r.stderr.split('\n').find((l) => l.includes('x.txt'))!;
    assert.match(errorLine, /x\.txt: not a readable image/);
    assert.equal(errorLine.split('x.txt').length - 1, 1, `the path appears once: ${errorLine}`);
  });
});

test("threads above the machine's cores are capped with a warning, in the library and in compare", async () => {
  assert.deepEqual(capThreads(4, 8), { threads: 4 });
  assert.deepEqual(capThreads(0, 8), { threads: 0 }, '0 is all cores');
  assert.deepEqual(capThreads(999, 8), { threads: 8, warning: '999 threads requested but this machine has 8 cores: using 8' });
  const cores = os.availableParallelism();
  const warnings: string[] = [];
  const listener = (w: Error) => warnings.push(w.message);
  process.on('warning', listener);
  try {
    native().setThreads(cores + 100);
    await new Promise((resolve) => setImmediate(resolve)); // process warnings are emitted on the next tick
    assert.equal(native().info().threads, cores);
    assert.deepEqual(warnings, [`${cores + 100} threads requested but this machine has ${cores} cores: using ${cores}`]);
  } finally {
    process.off('warning', listener);
    native().setThreads(0);
  }
  await withTempDir('threads', async (dir) => {
    // --data-dir that does not exist: the run fails fast, after the threads were handled
    const r = await runCli(['compare', '--threads', '999', '--data-dir', path.join(dir, 'nope'), '--out', path.join(dir, 'run')], {
      cacheDir: dir,
    });
    assert.match(
      r.stderr,
      new RegExp(`transferlab compare: --threads: 999 threads requested but this machine has ${cores} cores: using ${cores}`),
      describeRun(r),
    );
  });
});

test('an error reaching the CLI carries the "transferlab:" prefix once', async () => {
  await withTempDir('prefix', async (dir) => {
    const model = await savedModel(dir);
    const image = await blackImage(dir);
    const r = await runCli(['predict', '--model', model, image], {
      cacheDir: dir,
      env: { TRANSFERLAB_NATIVE: path.join(dir, 'missing.node') },
    });
    assert.equal(r.code, 1, describeRun(r));
    assert.match(r.stderr, /^transferlab: the native engine could not be loaded from /);
    assert.doesNotMatch(r.stderr, /transferlab: transferlab:/);
  });
});
