/**
 * `compare --resume`: a run stopped after an epoch and resumed gives the same history as one that
 * never stopped (same seed), for the CNN, for the transfer model on cached features, and with the
 * original's stepsPerEpoch / validationSteps schedule (`--faithful`).
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { assertClose, describeRun, generatedCompareInputs, readJson, runCli, withTempDir } from './helpers/transfer-helpers.js';

const HISTORY_KEYS = ['loss', 'accuracy', 'val_loss', 'val_accuracy'] as const;
// 120 generated examples: 96 train / 24 validation. At batch 20 a pass is 5 batches (4 x 20 + 16)
// and int(96 * 0.8) // 20 + 1 = 4 steps, so epochs start mid-pass; validation is 2 batches per pass
// (20 + 4) and int(24 * 0.2) // 20 + 1 = 1 step, a different window each epoch.
const FAITHFUL = ['--faithful', '--batch-size', '20'];
const TRANSFER = ['--models', 'transfer', '--head-units', '16'];

interface ModelSummary {
  name: string;
  history: Record<string, number[]>;
  best: { epoch: number; val_loss: number; val_accuracy: number };
  final: { val_loss: number; val_accuracy: number };
  error?: string;
}

async function resumeMatchesUninterrupted(
  prefix: string,
  common: string[],
  epochs: number,
  stopAfter: number,
  expectedModels: string[],
): Promise<void> {
  await withTempDir(prefix, async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const { dataDir, backboneArgs } = await generatedCompareInputs();
    // 96x96: about the smallest the experiment CNN takes
    const backbone = expectedModels.includes('transfer') ? backboneArgs : [];
    const base = [
      'compare',
      '--data-dir',
      dataDir,
      '--image-size',
      '96',
      '--cache-dir',
      cacheDir,
      '--epochs',
      String(epochs),
      ...backbone,
      ...common,
    ];

    const interruptedDir = path.join(dir, 'interrupted');
    const stopped = await runCli([...base, '--out', interruptedDir], { cacheDir, stopAfterEpoch: stopAfter });
    assert.equal(stopped.code, 130, `interrupted run exits 130\n${describeRun(stopped)}`);
    assert.ok(!existsSync(path.join(interruptedDir, 'summary.json')), 'no summary for an interrupted run');
    const first = expectedModels[0]!;
    const partial = await readJson<Record<string, number[]>>(path.join(interruptedDir, first, 'history.json'));
    assert.equal(partial.loss!.length, stopAfter, `${first} recorded ${stopAfter} epoch(s) before stopping`);
    assert.match(stopped.stdout + stopped.stderr, /--resume/, 'says how to continue');

    // a second plain run into the same folder refuses to overwrite it
    const clash = await runCli([...base, '--out', interruptedDir], { cacheDir });
    assert.notEqual(clash.code, 0, describeRun(clash));
    assert.match(clash.stderr, /--resume/);

    const resumed = await runCli(['compare', '--resume', interruptedDir], { cacheDir });
    assert.equal(resumed.code, 0, describeRun(resumed));
    assert.match(resumed.stdout, new RegExp(`resuming after epoch ${stopAfter}`));

    const straightDir = path.join(dir, 'straight');
    const straight = await runCli([...base, '--out', straightDir], { cacheDir });
    assert.equal(straight.code, 0, describeRun(straight));

    const a = (await readJson<{ models: ModelSummary[] }>(path.join(interruptedDir, 'summary.json'))).models;
    const b = (await readJson<{ models: ModelSummary[] }>(path.join(straightDir, 'summary.json'))).models;
    assert.deepEqual(
      a.map((m) => m.name),
      expectedModels,
    );
    assert.deepEqual(
      b.map((m) => m.name),
      expectedModels,
    );
    a.forEach((m, i) => {
      const n = b[i]!;
      assert.equal(m.error, undefined, `${m.name}: ${m.error}`);
      for (const k of HISTORY_KEYS) {
        assert.equal(m.history[k]!.length, epochs, `${m.name} ${k} covers all ${epochs} epochs`);
        assertClose(m.history[k]!, n.history[k]!, 1e-6, `${m.name} history.${k} (resumed vs uninterrupted)`);
      }
      assert.equal(m.best.epoch, n.best.epoch, `${m.name} best epoch`);
      assertClose([m.final.val_loss, m.final.val_accuracy], [n.final.val_loss, n.final.val_accuracy], 1e-6, `${m.name} final`);
    });
  });
}

test('compare --resume after an interruption at epoch 1 gives the uninterrupted CNN history', { timeout: 900_000 }, async () => {
  await resumeMatchesUninterrupted('resume-cnn', ['--models', 'cnn'], 3, 1, ['cnn']);
});

test('compare --resume gives the uninterrupted transfer history (feature cache)', { timeout: 900_000 }, async () => {
  await resumeMatchesUninterrupted('resume-transfer', TRANSFER, 3, 1, ['transfer']);
});

test('--faithful CNN runs (stepsPerEpoch / validationSteps windows) resume identically', { timeout: 900_000 }, async () => {
  await resumeMatchesUninterrupted('resume-faithful-cnn', [...FAITHFUL, '--models', 'cnn'], 3, 2, ['cnn']);
});

test('--faithful transfer runs on cached features resume identically', { timeout: 900_000 }, async () => {
  await resumeMatchesUninterrupted('resume-faithful-transfer', [...FAITHFUL, ...TRANSFER], 3, 1, ['transfer']);
});

test('Ctrl-C (SIGINT) during an epoch stops with exit 130 and --resume still gives the uninterrupted history', {
  timeout: 900_000,
}, async () => {
  await withTempDir('resume-sigint', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const { dataDir } = await generatedCompareInputs();
    const base = [
      'compare',
      '--data-dir',
      dataDir,
      '--image-size',
      '96',
      '--batch-size',
      '16',
      '--cache-dir',
      cacheDir,
      '--epochs',
      '3',
      '--models',
      'cnn',
    ];
    const interruptedDir = path.join(dir, 'interrupted');
    let sent = false;
    const stopped = await runCli([...base, '--out', interruptedDir], {
      cacheDir,
      onStdout: (soFar, child) => {
        if (!sent && soFar.includes('Epoch 2/3')) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    assert.ok(sent, `the run reached epoch 2\n${describeRun(stopped)}`);
    assert.equal(stopped.code, 130, describeRun(stopped));
    assert.match(stopped.stdout, /Interrupted/);
    assert.ok(!existsSync(path.join(interruptedDir, 'summary.json')), 'no summary for an interrupted run');

    const resumed = await runCli(['compare', '--resume', interruptedDir], { cacheDir });
    assert.equal(resumed.code, 0, describeRun(resumed));
    const straightDir = path.join(dir, 'straight');
    const straight = await runCli([...base, '--out', straightDir], { cacheDir });
    assert.equal(straight.code, 0, describeRun(straight));
    const [a] = (await readJson<{ models: ModelSummary[] }>(path.join(interruptedDir, 'summary.json'))).models;
    const [b] = (await readJson<{ models: ModelSummary[] }>(path.join(straightDir, 'summary.json'))).models;
    for (const k of HISTORY_KEYS) {
      assert.equal(a!.history[k]!.length, 3);
      assertClose(a!.history[k]!, b!.history[k]!, 1e-6, `history.${k} (Ctrl-C + resume vs uninterrupted)`);
    }
  });
});
