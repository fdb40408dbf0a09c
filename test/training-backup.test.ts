/**
 * BackupAndRestore (Keras semantics): a fit interrupted after epoch k and run again with the same
 * callback ends with the weights and history of a fit that never stopped; the backup is deleted
 * when fit completes unless `deleteCheckpoint: false`.
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { BackupAndRestore } from '../lib/training/backup-and-restore.js';
import type { Callback } from '../lib/training/callbacks.js';
import { ArrayDataset, Rng } from './helpers/naive.js';
import { withTempDir } from './helpers/transfer-helpers.js';

const EPOCHS = 4;
// 10 batches per pass, 7 steps per epoch: epochs 2.. start mid-pass, so a resumed fit must put the
// stream where the uninterrupted one had it.
const STEPS = 7;

function data(n: number, seed: number): ArrayDataset {
  const rng = new Rng(seed);
  const x = new Float32Array(n * 6);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < 6; j++) s += (x[i * 6 + j] = rng.uniform(-1, 1)) * (j - 2.5);
    y[i] = s > 0 ? 1 : 0;
  }
  return new ArrayDataset(x, [6], y, 8);
}

function model(): Sequential {
  const m = new Sequential(
    [layers.dense({ units: 5, activation: 'relu', inputShape: [6] }), layers.dense({ units: 1, activation: 'sigmoid' })],
    {
      seed: 11,
      preprocessing: 'none',
    },
  );
  m.compile({ optimizer: { adam: { learningRate: 0.05 } }, loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  return m;
}

class InterruptAfter implements Callback {
  constructor(private readonly epochs: number) {}
  onEpochEnd(epoch: number): void {
    if (epoch + 1 === this.epochs) throw new Error(`interrupted after epoch ${epoch + 1}`);
  }
}

const fitOptions = (callbacks: Callback[]) => ({
  epochs: EPOCHS,
  stepsPerEpoch: STEPS,
  validationData: data(24, 2),
  validationSteps: 2,
  verbose: 0 as const,
  callbacks,
});

async function uninterrupted() {
  const m = model();
  const history = await m.fit(data(80, 1), fitOptions([]));
  return { history, weights: m.getWeights() };
}

test('a fit interrupted after epoch k and fitted again with BackupAndRestore equals an uninterrupted fit', async () => {
  const straight = await uninterrupted();
  for (const k of [1, 3]) {
    await withTempDir('backup', async (dir) => {
      const backupDir = path.join(dir, 'backup');
      const first = model();
      await assert.rejects(
        first.fit(data(80, 1), fitOptions([new BackupAndRestore(backupDir), new InterruptAfter(k)])),
        /interrupted after epoch/,
      );
      const saved = await new BackupAndRestore(backupDir).saved();
      assert.equal(saved?.completedEpochs, k, 'the backup records the epochs done');
      assert.deepEqual(saved?.history.loss, straight.history.history.loss.slice(0, k));

      // a new process would start from a freshly built model: the backup supplies the rest
      const second = model();
      const history = await second.fit(data(80, 1), fitOptions([new BackupAndRestore(backupDir)]));
      assert.deepEqual(history.epoch, straight.history.epoch);
      for (const key of ['loss', 'accuracy', 'val_loss', 'val_accuracy']) {
        assert.deepEqual(history.history[key], straight.history.history[key], `history.${key} after an interruption at epoch ${k}`);
      }
      const weights = second.getWeights();
      straight.weights.forEach((layer, i) =>
        layer.weights.forEach((w, j) => {
          assert.deepEqual(weights[i]!.weights[j]!.data, w.data, `${w.name} after an interruption at epoch ${k}`);
        }),
      );
      assert.ok(!existsSync(backupDir), 'the backup is deleted once fit completes');
    });
  }
});

test("deleteCheckpoint: false keeps the backup; a backup at initialEpoch is an earlier fit's", async () => {
  const straight = await uninterrupted();
  await withTempDir('backup-keep', async (dir) => {
    const backupDir = path.join(dir, 'backup');
    const first = model();
    await assert.rejects(first.fit(data(80, 1), fitOptions([new BackupAndRestore(backupDir), new InterruptAfter(2)])));

    const resumed = model();
    const history = await resumed.fit(data(80, 1), fitOptions([new BackupAndRestore(backupDir, { deleteCheckpoint: false })]));
    assert.deepEqual(history.history.loss, straight.history.history.loss);
    assert.equal((await new BackupAndRestore(backupDir).saved())?.completedEpochs, EPOCHS, 'kept, at the last epoch');

    // a backup at the fit's initialEpoch belongs to an earlier fit: not restored, its history continues
    const later = model();
    const more = await later.fit(data(80, 1), {
      ...fitOptions([new BackupAndRestore(backupDir, { deleteCheckpoint: false })]),
      initialEpoch: EPOCHS,
      epochs: EPOCHS + 1,
    });
    assert.deepEqual(more.epoch, [EPOCHS]);
    const saved = await new BackupAndRestore(backupDir).saved();
    assert.equal(saved?.completedEpochs, EPOCHS + 1);
    assert.deepEqual(saved?.history.loss.slice(0, EPOCHS), straight.history.history.loss);
  });
});
