/**
 * Dtype policies on whole models: where a layer's policy comes from (its own, the model's, the
 * global one), the summary, saving (float32 weights, the policy in transferlab.json) and loading,
 * and a small model learning as well in bfloat16 as in float32.
 */

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { layers } from '../lib/models/layers.js';
import { mixedPrecision } from '../lib/models/mixed-precision.js';
import { Sequential } from '../lib/models/sequential.js';
import { loadModel, METADATA_FILE, saveModel } from '../lib/saving/persistence.js';
import { needsBf16 } from './helpers/engine-settings.js';
import { ArrayDataset, Rng } from './helpers/naive.js';

/** conv -> flatten -> dense 1 sigmoid, the output layer pinned to float32 as in Keras's guide */
function small(options: { dtype?: 'float32' | 'mixed_bfloat16'; seed?: number } = {}): Sequential {
  return new Sequential(
    [
      layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', inputShape: [8, 8, 1] }),
      layers.flatten(),
      layers.dense({ units: 1, activation: 'sigmoid', dtype: 'float32', name: 'out' }),
    ],
    { preprocessing: 'none', seed: options.seed ?? 1, dtype: options.dtype },
  );
}

test("a layer takes its own policy, else its model's, else the global one; summary() shows them", () => {
  assert.equal(mixedPrecision.globalPolicy().name, 'float32');
  mixedPrecision.setGlobalPolicy('mixed_bfloat16');
  let global: Sequential;
  try {
    global = small();
  } finally {
    mixedPrecision.setGlobalPolicy('float32');
  }
  assert.deepEqual(global.dtypePolicy, { name: 'mixed_bfloat16', computeDtype: 'bfloat16', variableDtype: 'float32' });
  assert.deepEqual(global.layerDtypePolicies(), ['mixed_bfloat16', 'mixed_bfloat16', 'float32']);
  // built after the global policy went back: float32, unless the model says otherwise
  assert.deepEqual(small().layerDtypePolicies(), ['float32', 'float32', 'float32']);
  const mixed = small({ dtype: 'mixed_bfloat16' });
  assert.deepEqual(mixed.layerDtypePolicies(), ['mixed_bfloat16', 'mixed_bfloat16', 'float32']);

  const text = mixed.summary(false);
  assert.match(text, /^Dtype policy: mixed_bfloat16$/m);
  assert.match(text, /^ out \(Dense\) \[float32\] /m, 'a layer with its own policy shows it');
  assert.doesNotMatch(text, /conv2d.*\[/, 'layers following the model show none');

  assert.throws(
    () => mixedPrecision.setGlobalPolicy('mixed_float16' as never),
    /unknown dtype policy "mixed_float16".*'float32', 'mixed_bfloat16'/,
  );
  assert.throws(
    () => new Sequential([layers.dense({ units: 1, inputShape: [2], name: 'd' })], { dtype: 'bf16' as never }),
    /model 'sequential': unknown dtype policy "bf16"/,
  );
});

test('a mixed model saves float32 weights that reload equal, with its policies in transferlab.json', { skip: needsBf16 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-mixed-save-'));
  try {
    const rng = new Rng(5);
    const model = small({ dtype: 'mixed_bfloat16' });
    model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
    const x = rng.floats(16 * 64, -1, 1);
    await model.engine.trainStep(
      x,
      [16, 8, 8, 1],
      Float32Array.from({ length: 16 }, (_, i) => i % 2),
      0,
    );
    await saveModel(model, dir);

    const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
    const configs = json.modelTopology.config.layers as { config: { dtype?: unknown } }[];
    assert.ok(
      configs.every((l) => l.config.dtype === undefined || l.config.dtype === 'float32'),
      'model.json names no policy TF.js could not read',
    );
    const manifest = json.weightsManifest[0];
    assert.ok(
      manifest.weights.every((w: { dtype: string }) => w.dtype === 'float32'),
      'weights are stored as float32',
    );
    const metadata = JSON.parse(await readFile(path.join(dir, METADATA_FILE), 'utf8'));
    assert.equal(metadata.dtypePolicy, 'mixed_bfloat16');
    assert.deepEqual(metadata.layerDtypePolicies, { out: 'float32' });

    const { model: loaded } = await loadModel(dir);
    assert.equal(loaded.dtypePolicy.name, 'mixed_bfloat16');
    assert.deepEqual(loaded.layerDtypePolicies(), model.layerDtypePolicies());
    assert.deepEqual(loaded.getWeights(), model.getWeights(), 'float32 master weights reload bit for bit');
    const before = await model.predict(x, [16, 8, 8, 1]);
    const after = await loaded.predict(x, [16, 8, 8, 1]);
    assert.deepEqual(after.output, before.output, 'same weights, same policy, same outputs');
    // float32 changes the outputs a little: the reloaded model really computes in bfloat16
    loaded.setDtypePolicy('float32');
    const fp32 = await loaded.predict(x, [16, 8, 8, 1]);
    assert.notDeepEqual(fp32.output, before.output);
    const worst = Math.max(...fp32.output.map((v, i) => Math.abs(v - before.output[i])));
    assert.ok(worst < 2e-2, `float32 and bfloat16 outputs differ by ${worst}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/**
 * Two classes of 8x8 noise images, told apart by a faint fixed pattern: separable with about 90%
 * accuracy at best (the noise overlaps), so the accuracy each precision reaches says something.
 */
function patternData(n: number, seed: number): ArrayDataset {
  const pattern = new Rng(99).floats(64, -1, 1).map((v) => (v < 0 ? -1 : 1));
  const rng = new Rng(seed);
  const x = new Float32Array(n * 64);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = rng.int(2);
    const sign = y[i] ? 1 : -1;
    for (let k = 0; k < 64; k++) x[i * 64 + k] = rng.uniform(-1, 1) + sign * 0.09 * pattern[k];
  }
  return new ArrayDataset(x, [8, 8, 1], y, 32);
}

test('a small model reaches the same validation accuracy (within 1 point) in mixed_bfloat16 as in float32', {
  skip: needsBf16,
  timeout: 300_000,
}, async () => {
  const train = patternData(2000, 1);
  const validation = patternData(2000, 2);
  const accuracy = async (dtype: 'float32' | 'mixed_bfloat16') => {
    const model = small({ dtype, seed: 3 });
    model.compile({ optimizer: { adam: { learningRate: 3e-3 } }, loss: 'binaryCrossentropy', metrics: ['accuracy'] });
    await model.fit(train, { epochs: 6, verbose: 0 });
    return (await model.evaluate(validation)).accuracy;
  };
  const fp32 = await accuracy('float32');
  const bf16 = await accuracy('mixed_bfloat16');
  assert.ok(fp32 > 0.8, `float32 learned the pattern (${fp32})`);
  assert.ok(Math.abs(bf16 - fp32) <= 0.01, `bfloat16 accuracy ${bf16} vs float32 ${fp32}`);
});
