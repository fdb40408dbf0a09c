/**
 * `compare`'s feature cache through the CLI: `--no-feature-cache` promises "same results", with
 * and without `--shuffle`; and shuffled runs resume identically when several models share the data.
 */

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { assertClose, describeRun, generatedCompareInputs, readJson, runCli, withTempDir } from './helpers/transfer-helpers.js';

const HISTORY_KEYS = ['loss', 'accuracy', 'val_loss', 'val_accuracy'] as const;

interface ModelSummary {
  name: string;
  history: Record<string, number[]>;
  final: { val_loss: number; val_accuracy: number };
  error?: string;
}

async function summaryModels(runDir: string): Promise<ModelSummary[]> {
  return (await readJson<{ models: ModelSummary[] }>(path.join(runDir, 'summary.json'))).models;
}

function assertSameHistories(a: ModelSummary[], b: ModelSummary[], rel: number, what: string): void {
  assert.deepEqual(
    a.map((m) => m.name),
    b.map((m) => m.name),
  );
  a.forEach((m, i) => {
    assert.equal(m.error, undefined, `${m.name}: ${m.error}`);
    for (const k of HISTORY_KEYS) assertClose(m.history[k]!, b[i]!.history[k]!, rel, `${what}: ${m.name} history.${k}`);
  });
}

/** Runs `compare` twice, with and without --no-feature-cache, and compares the transfer histories. */
async function cacheEqualsNoCache(prefix: string, extra: string[]): Promise<void> {
  await withTempDir(prefix, async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const { dataDir, backboneArgs } = await generatedCompareInputs();
    const base = [
      'compare',
      '--data-dir',
      dataDir,
      '--image-size',
      '64',
      '--epochs',
      '2',
      '--batch-size',
      '16',
      '--models',
      'transfer',
      ...backboneArgs,
      '--head-units',
      '16',
      '--cache-dir',
      cacheDir,
      ...extra,
    ];
    const withCache = await runCli([...base, '--out', path.join(dir, 'cached')], { cacheDir });
    assert.equal(withCache.code, 0, describeRun(withCache));
    const without = await runCli([...base, '--no-feature-cache', '--out', path.join(dir, 'direct')], { cacheDir });
    assert.equal(without.code, 0, describeRun(without));
    assertSameHistories(
      await summaryModels(path.join(dir, 'cached')),
      await summaryModels(path.join(dir, 'direct')),
      1e-4,
      'cached vs --no-feature-cache',
    );
  });
}

test('compare: the transfer model trains the same with and without --no-feature-cache', { timeout: 900_000 }, async () => {
  await cacheEqualsNoCache('cli-fc-equal', []);
});

test('compare --shuffle: the transfer model trains the same with and without --no-feature-cache', {
  timeout: 900_000,
}, async () => {
  await cacheEqualsNoCache('cli-fc-shuffle', ['--shuffle']);
});

test('compare --shuffle with two models resumes identically after the first model stopped', {
  timeout: 900_000,
}, async () => {
  await withTempDir('cli-shuffle-resume', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const { dataDir, backboneArgs } = await generatedCompareInputs();
    // 96x96: the CNN runs too
    const base = [
      'compare',
      '--data-dir',
      dataDir,
      '--image-size',
      '96',
      '--epochs',
      '2',
      '--batch-size',
      '16',
      '--shuffle',
      '--no-feature-cache',
      ...backboneArgs,
      '--head-units',
      '16',
      '--cache-dir',
      cacheDir,
    ];
    const interruptedDir = path.join(dir, 'interrupted');
    const stopped = await runCli([...base, '--out', interruptedDir], { cacheDir, stopAfterEpoch: 2 });
    assert.equal(stopped.code, 130, describeRun(stopped));
    const resumed = await runCli(['compare', '--resume', interruptedDir], { cacheDir });
    assert.equal(resumed.code, 0, describeRun(resumed));
    const straightDir = path.join(dir, 'straight');
    const straight = await runCli([...base, '--out', straightDir], { cacheDir });
    assert.equal(straight.code, 0, describeRun(straight));
    assertSameHistories(await summaryModels(interruptedDir), await summaryModels(straightDir), 1e-6, 'resumed vs uninterrupted');
  });
});
