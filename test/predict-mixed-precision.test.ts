/**
 * `transferlab predict --mixed-precision bf16|fp32` (alias `--bf16`): bfloat16 changes the
 * probabilities a little, never the flags' meaning; a bad value is refused naming it.
 */

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { layers } from '../lib/models/layers.js';
import { bf16Support } from '../lib/models/mixed-precision.js';
import { Sequential } from '../lib/models/sequential.js';
import { saveModel } from '../lib/saving/persistence.js';
import { Rng } from './helpers/naive.js';
import { describeRun, runCli, withTempDir } from './helpers/transfer-helpers.js';

const support = bf16Support();

test('predict --mixed-precision bf16 gives bfloat16-close probabilities; --bf16 is the same; fp16 is refused', {
  skip: support.supported ? false : `bfloat16 is emulated here (${support.reason})`,
}, async () => {
  await withTempDir('predict-bf16', async (dir) => {
    const rng = new Rng(11);
    const m = new Sequential(
      [
        layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', inputShape: [8, 8, 3] }),
        layers.flatten(),
        layers.dense({ units: 1, activation: 'sigmoid' }),
      ],
      { preprocessing: 'tf', seed: 2 },
    );
    m.setLayerWeights(0, [rng.floats(3 * 3 * 3 * 4, -0.3, 0.3), rng.floats(4, 0, 0.1)]);
    m.setLayerWeights(2, [rng.floats(6 * 6 * 4, -0.2, 0.2), rng.floats(1, -0.1, 0.1)]);
    const model = path.join(dir, 'model');
    await saveModel(m, model, { classNames: ['cat', 'dog'] });
    const image = path.join(dir, 'noise.png');
    await sharp(Buffer.from(rng.bytes(8 * 8 * 3)), { raw: { width: 8, height: 8, channels: 3 } })
      .png()
      .toFile(image);

    const output = async (...flags: string[]) => {
      const r = await runCli(['predict', '--model', model, '--json', ...flags, image], { cacheDir: dir });
      assert.equal(r.code, 0, describeRun(r));
      return (JSON.parse(r.stdout) as { output: number[] }).output[0]!;
    };
    const fp32 = await output();
    assert.equal(await output('--mixed-precision', 'fp32'), fp32, 'fp32 is the default');
    const bf16 = await output('--mixed-precision', 'bf16');
    assert.notEqual(bf16, fp32, 'bf16 computes differently');
    assert.ok(Math.abs(bf16 - fp32) < 1e-2, `bf16 ${bf16} vs fp32 ${fp32}`);
    assert.equal(await output('--bf16'), bf16, '--bf16 is an alias');

    const bad = await runCli(['predict', '--model', model, '--mixed-precision', 'fp16', image], { cacheDir: dir });
    assert.equal(bad.code, 2, describeRun(bad));
    assert.match(bad.stderr, /--mixed-precision takes bf16 or fp32 \(got 'fp16'\)/);
  });
});
