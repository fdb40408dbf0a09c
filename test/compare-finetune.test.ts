// Fine-tuning (beyond the experiment): after the head, the top of the base is unfrozen and trained
// on at a low learning rate; the layers below stay exactly as pretrained.

import assert from 'node:assert/strict';
import path from 'node:path';
import test from 'node:test';
import { readTfjsLayersModel } from '../lib/io/tfjs-model.js';
import { describeRun, generatedCompareInputs, readJson, runCli, withTempDir } from './helpers/transfer-helpers.js';

test('compare --fine-tune-epochs trains the top base layers after the head, and only those', { timeout: 900_000 }, async () => {
  await withTempDir('finetune', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const out = path.join(dir, 'run');
    const { dataDir, backboneArgs } = await generatedCompareInputs();
    const modelJson = backboneArgs[1]!;
    const run = await runCli(
      [
        'compare',
        '--data-dir',
        dataDir,
        '--models',
        'transfer',
        ...backboneArgs,
        '--image-size',
        '64',
        '--epochs',
        '1',
        '--batch-size',
        '16',
        '--fine-tune-epochs',
        '1',
        '--fine-tune-layers',
        '3',
        '--fine-tune-learning-rate',
        '0.001',
        '--out',
        out,
        '--cache-dir',
        cacheDir,
      ],
      { cacheDir },
    );
    assert.equal(run.code, 0, describeRun(run));
    // of the last 3 layers (conv_pw_3, conv_pw_3_bn, conv_pw_3_relu) batch norm stays frozen
    assert.match(run.stdout, /fine-tuning the last 2 base layers \(conv_pw_3, conv_pw_3_relu\)/);
    const summary = await readJson(path.join(out, 'summary.json'));
    assert.equal(summary.models[0].history.val_loss.length, 2, 'one head epoch + one fine-tuning epoch');

    const pretrained = await readTfjsLayersModel(modelJson);
    const tuned = await readTfjsLayersModel(path.join(out, 'transfer', 'last', 'model.json'));
    const weightsOf = (m: typeof tuned, layer: string) => m.weights.find((w) => w.layerName === layer)!.weights[0].data;
    assert.notDeepEqual(weightsOf(tuned, 'conv_pw_3'), weightsOf(pretrained, 'conv_pw_3'), 'unfrozen layer should change');
    assert.deepEqual(weightsOf(tuned, 'conv_pw_3_bn'), weightsOf(pretrained, 'conv_pw_3_bn'), 'batch norm stays as pretrained');
    assert.deepEqual(weightsOf(tuned, 'conv_dw_3'), weightsOf(pretrained, 'conv_dw_3'), 'frozen layer must stay as pretrained');
    assert.deepEqual(weightsOf(tuned, 'conv1'), weightsOf(pretrained, 'conv1'), 'frozen layer must stay as pretrained');
  });
});
