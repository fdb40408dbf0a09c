/**
 * `compare --augment` end to end on a tiny generated dataset and backbone: augmentation layers in
 * both models, the transfer model's trade-off (no feature cache, or K cached augmented passes),
 * and the saved TF.js model leaving the layers out with a note in transferlab.json.
 */

import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { describeRun, generatedCompareInputs, readJson, runCli, withTempDir } from './helpers/transfer-helpers.js';

async function compare(dir: string, name: string, extra: string[]) {
  const cacheDir = path.join(dir, `cache-${name}`);
  const { dataDir, backboneArgs } = await generatedCompareInputs();
  const out = path.join(dir, name);
  const args = ['compare', '--data-dir', dataDir, '--image-size', '96', '--batch-size', '16', '--head-units', '8'];
  const result = await runCli([...args, ...backboneArgs, '--cache-dir', cacheDir, '--out', out, ...extra], { cacheDir });
  return { result, out, cacheDir };
}

test('compare --augment: both models train with the layers, the transfer base runs per batch, export leaves them out', {
  timeout: 600_000,
}, async () => {
  await withTempDir('tl-augment-', async (dir) => {
    const { result, out, cacheDir } = await compare(dir, 'plain', ['--epochs', '1', '--augment', 'flip,rotation=0.1,zoom=0.2']);
    assert.equal(result.code, 0, describeRun(result));
    for (const kind of ['cnn', 'transfer']) {
      const summary = await readJson<{ models: { name: string; error?: string }[] }>(path.join(out, 'summary.json'));
      assert.equal(summary.models.find((m) => m.name === kind)?.error, undefined);
      const text = await import('node:fs/promises').then((fs) => fs.readFile(path.join(out, kind, 'summary.txt'), 'utf8'));
      assert.match(text, /random_flip \(RandomFlip\)\s+\(None, 96, 96, 3\)\s+0/);
      assert.match(text, /random_zoom \(RandomZoom\)/);
      const modelJson = await readJson<{ modelTopology: { config: { layers: { class_name: string }[] } } }>(
        path.join(out, kind, 'best', 'model.json'),
      );
      const classes = modelJson.modelTopology.config.layers.map((l) => l.class_name);
      assert.ok(!classes.some((c) => c.startsWith('Random')), `model.json still has ${classes.join(', ')}`);
      const meta = await readJson<{ augmentation?: { note: string; layers: { index: number; config: { class_name: string } }[] } }>(
        path.join(out, kind, 'best', 'transferlab.json'),
      );
      assert.deepEqual(
        meta.augmentation?.layers.map((l) => [l.index, l.config.class_name]),
        [
          [0, 'RandomFlip'],
          [1, 'RandomRotation'],
          [2, 'RandomZoom'],
        ],
      );
      assert.match(meta.augmentation!.note, /left out of model\.json/);
    }
    assert.match(result.stdout + result.stderr, /runs on every augmented training batch \(no feature cache\)/);
    assert.match(result.stderr, /training-only augmentation, left out of model\.json/);
    // no feature cache was written
    const features = path.join(cacheDir, 'features');
    const entries = existsSync(features) ? readdirSync(features) : [];
    assert.equal(entries.length, 0, `expected no feature cache, found ${entries.length} entries`);
  });
});

test('compare --augment --augment-cache-epochs 2 caches two augmented passes; bad policies are refused', { timeout: 600_000 }, async () => {
  await withTempDir('tl-augment-cache-', async (dir) => {
    const { result, cacheDir } = await compare(dir, 'cached', [
      '--epochs',
      '3',
      '--models',
      'transfer',
      '--augment',
      '--augment-cache-epochs',
      '2',
    ]);
    assert.equal(result.code, 0, describeRun(result));
    assert.doesNotMatch(result.stdout, /runs on every augmented training batch/);
    // two augmented training passes and the validation features
    assert.equal(readdirSync(path.join(cacheDir, 'features')).length, 3);
    const bad = await compare(dir, 'bad', ['--augment', 'flip,spin=3']);
    assert.equal(bad.result.code, 2);
    assert.match(bad.result.stderr, /--augment: unknown augmentation 'spin' \(use default, or a list of: flip/);
    const orphan = await compare(dir, 'orphan', ['--augment-cache-epochs', '2']);
    assert.equal(orphan.result.code, 2);
    assert.match(orphan.result.stderr, /--augment-cache-epochs needs --augment/);
  });
});
