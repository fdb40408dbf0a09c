/**
 * `compare --mixed-precision bf16` trains, evaluates and extracts features under Keras's
 * 'mixed_bfloat16' policy, and records it: config.json (the flag), environment.json (the policy
 * used), each model's summary and saved transferlab.json, and the feature cache's key (a float32
 * run does not reuse bfloat16 features).
 */

import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { bf16Support } from '../lib/models/mixed-precision.js';
import { describeRun, generatedCompareInputs, readJson, runCli, withTempDir } from './helpers/transfer-helpers.js';

const support = bf16Support();

interface ModelSummary {
  name: string;
  history: Record<string, number[]>;
  error?: string;
}

test('compare --mixed-precision bf16 runs both models in mixed_bfloat16 and records the policy', {
  skip: support.supported ? false : `bfloat16 is emulated here (${support.reason})`,
  timeout: 600_000,
}, async () => {
  await withTempDir('compare-bf16', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const { dataDir, backboneArgs } = await generatedCompareInputs();
    const base = ['compare', '--data-dir', dataDir, '--image-size', '96', '--epochs', '1', '--batch-size', '16', ...backboneArgs];
    const run = async (name: string, flags: string[]) => {
      const out = path.join(dir, name);
      const r = await runCli([...base, ...flags, '--out', out, '--cache-dir', cacheDir], { cacheDir });
      assert.equal(r.code, 0, describeRun(r));
      return { out };
    };
    const bf16 = await run('bf16', ['--mixed-precision', 'bf16']);
    assert.equal((await readJson(path.join(bf16.out, 'config.json'))).mixedPrecision, 'bf16');
    assert.equal((await readJson(path.join(bf16.out, 'environment.json'))).dtypePolicy, 'mixed_bfloat16');
    for (const model of ['cnn', 'transfer']) {
      assert.match(await readFile(path.join(bf16.out, model, 'summary.txt'), 'utf8'), /^Dtype policy: mixed_bfloat16$/m, model);
      assert.equal((await readJson(path.join(bf16.out, model, 'best', 'transferlab.json'))).dtypePolicy, 'mixed_bfloat16', model);
    }
    const models = (await readJson<{ models: ModelSummary[] }>(path.join(bf16.out, 'summary.json'))).models;
    for (const m of models) {
      assert.equal(m.error, undefined, `${m.name}: ${m.error}`);
      assert.ok(m.history.val_loss!.every(Number.isFinite), `${m.name} trained to a finite loss`);
    }

    // the feature cache is keyed by the policy: float32 extracts its own, bf16 again reuses its
    const entries = async () => (await readdir(path.join(cacheDir, 'features'))).length;
    assert.equal(await entries(), 2, 'bf16 features of the train and validation splits');
    const fp32 = await run('fp32', ['--models', 'transfer']);
    assert.equal((await readJson(path.join(fp32.out, 'environment.json'))).dtypePolicy, 'float32');
    assert.equal(await entries(), 4, 'float32 features beside them');
    await run('bf16-again', ['--models', 'transfer', '--bf16']);
    assert.equal(await entries(), 4, '--bf16 found the bf16 features');
  });
});
