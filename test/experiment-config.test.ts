// The experiment's numbers: the faithful 233/15 schedule and the defaults of `compare`.

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'node:test';
import { scanImageFolder } from '../lib/data/image-folder.js';
import { DEFAULT_CONFIG, faithfulSchedule } from '../lib/experiment/config.js';
import { withTempDir } from './helpers/transfer-helpers.js';

test('faithful schedule: steps_per_epoch = int(n*0.8)//64+1 and validation_steps = int(n_val*0.2)//64+1', () => {
  // the full cats_vs_dogs split: 18,610 / 4,652 -> 233 / 15, as in the original
  const full = faithfulSchedule(18610, 4652, 64);
  assert.deepEqual(full, { stepsPerEpoch: 233, validationSteps: 15 });
  // so an "epoch" sees 14,912 training images (fewer than the 18,610 of a pass) and validation 960
  assert.equal(full.stepsPerEpoch * 64, 14912);
  assert.equal(full.validationSteps * 64, 960);
  // the shared PetImages folder: 4,003 / 1,001 -> int(3202.4)//64+1 = 51, int(200.2)//64+1 = 4
  assert.deepEqual(faithfulSchedule(4003, 1001, 64), { stepsPerEpoch: 51, validationSteps: 4 });
});

test('compare defaults are the experiment: 300x300, batch 64, 20 epochs, Adam 1e-3, both models, VGG16, tfds splits', () => {
  assert.deepEqual(DEFAULT_CONFIG.imageSize, [300, 300]);
  assert.equal(DEFAULT_CONFIG.batchSize, 64);
  assert.equal(DEFAULT_CONFIG.epochs, 20);
  assert.equal(DEFAULT_CONFIG.learningRate, 1e-3);
  assert.deepEqual(DEFAULT_CONFIG.models, ['cnn', 'transfer']);
  assert.equal(DEFAULT_CONFIG.backbone, 'vgg16');
  assert.deepEqual(DEFAULT_CONFIG.headUnits, [64]);
  assert.deepEqual(DEFAULT_CONFIG.splits, ['train[:80%]', 'train[-20%:]']);
  assert.equal(DEFAULT_CONFIG.faithful, false, 'by default each epoch is a pass and validation the whole split');
  assert.equal(DEFAULT_CONFIG.shuffleSeed, undefined, 'no shuffling, as in the original');
});

test('one default seed: data info orders an image folder as compare does (the preview is the trained split)', async () => {
  await withTempDir('default-seed', async (dir) => {
    for (const cls of ['cat', 'dog']) {
      await mkdir(path.join(dir, cls));
      for (let i = 0; i < 8; i++) await writeFile(path.join(dir, cls, `${i}.jpg`), '');
    }
    const order = async (seed?: number) => (await scanImageFolder(dir, seed)).ordered.map((e) => e.key);
    const byDefault = await order();
    assert.deepEqual(byDefault, await order(DEFAULT_CONFIG.seed), "the folder default is compare's seed");
    assert.notDeepEqual(byDefault, await order(DEFAULT_CONFIG.seed + 1), 'the seed decides the order');
  });
});
