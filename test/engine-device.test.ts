/**
 * Device selection on a machine without a GPU: `auto` is the CPU, a model on the selected device
 * trains to the hand-computed SGD update, and asking for CUDA from a CPU-only engine is a clear
 * error from the library and from `compare` (also through the launcher).
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { native } from '../lib/engine/native.js';
import { layers } from '../lib/models/layers.js';
import { type DeviceName, Sequential } from '../lib/models/sequential.js';
import { describeRun, runCli, withTempDir } from './helpers/transfer-helpers.js';

const info = native().deviceInfo();
const cpuOnly = info.cudaBuilt ? 'this engine is built with CUDA' : false;

test('deviceInfo and resolveDevice: auto is cuda:0 only with a CUDA build and a GPU', () => {
  if (!info.cudaBuilt) assert.deepEqual(info, { cudaBuilt: false, cudaAvailable: false, cudaDevices: 0 });
  assert.equal(native().resolveDevice('cpu'), 'cpu');
  assert.equal(native().resolveDevice('auto'), info.cudaAvailable ? 'cuda:0' : 'cpu');
  assert.throws(() => native().resolveDevice('gpu'), /unknown device 'gpu': use cpu, cuda, cuda:N \(N = GPU index\) or auto/);
  assert.throws(() => native().resolveDevice('cuda:x'), /unknown device 'cuda:x'/);
});

test('asking a CPU-only engine for CUDA says to rebuild against a CUDA libtorch', { skip: cpuOnly }, () => {
  for (const name of ['cuda', 'cuda:0', 'cuda:3']) {
    assert.throws(
      () => native().resolveDevice(name),
      (e: Error) =>
        e.message.startsWith(`device '${name}' needs CUDA, but this engine was built against a CPU-only libtorch`) &&
        /LIBTORCH=/.test(e.message),
    );
  }
  const model = new Sequential([layers.dense({ units: 1, inputShape: [3] })], { device: 'cuda', preprocessing: 'none' });
  assert.throws(() => model.getLayerWeights(0), /device 'cuda' needs CUDA/);
});

/** One SGD step of Dense(1) + BCE on logits, by hand: w -= lr * X^T (sigmoid(Xw + b) - y) / n. */
function sgdStep(x: number[][], y: number[], w: number[], b: number, lr: number): { w: number[]; b: number } {
  const err = x.map((row, i) => 1 / (1 + Math.exp(-row.reduce((s, v, j) => s + v * w[j]!, b))) - y[i]!);
  const gw = w.map((_, j) => x.reduce((s, row, i) => s + row[j]! * err[i]!, 0) / x.length);
  const gb = err.reduce((s, e) => s + e, 0) / x.length;
  return { w: w.map((v, j) => v - lr * gw[j]!), b: b - lr * gb };
}

for (const device of ['cpu', 'auto'] as DeviceName[]) {
  test(`a model on device '${device}' trains to the hand-computed SGD step`, async () => {
    const model = new Sequential([layers.dense({ units: 1, activation: 'sigmoid', inputShape: [3] })], {
      device,
      preprocessing: 'none',
      seed: 3,
    });
    assert.equal(model.device, device);
    const w = [0.5, -0.25, 0.125];
    const b = 0.1;
    model.setLayerWeights(0, [Float32Array.from(w), Float32Array.from([b])]);
    model.compile({ optimizer: { sgd: { learningRate: 0.5 } }, loss: 'binaryCrossentropy' });
    const x = [
      [1, 2, -1],
      [0.5, -1, 2],
      [-2, 0.25, 1],
      [1, 1, 1],
    ];
    const y = [1, 0, 1, 0];
    await model.engine.trainStep(Float32Array.from(x.flat()), [4, 3], Float32Array.from(y), 0);
    const expected = sgdStep(x, y, w, b, 0.5);
    const [kernel, bias] = model.getLayerWeights(0).map((t) => Array.from(t.data));
    for (const [got, want] of [...kernel!.map((v, j) => [v, expected.w[j]!]), [bias![0]!, expected.b]]) {
      assert.ok(Math.abs(got! - want!) < 1e-6, `${got} vs ${want}`);
    }
  });
}

test('compare --device: a bad name and CUDA on a CPU-only engine exit 2 before any work', { skip: cpuOnly, timeout: 120_000 }, async () => {
  await withTempDir('tl-device-cli-', async (dir) => {
    const out = path.join(dir, 'run');
    const bad = await runCli(['compare', '--device', 'tpu', '--out', out], { cacheDir: dir });
    assert.equal(bad.code, 2, describeRun(bad));
    assert.match(bad.stderr, /--device takes cpu, cuda, cuda:N \(a GPU index\) or auto \(got 'tpu'\)/);
    const cuda = await runCli(['compare', '--device', 'cuda', '--out', out], { cacheDir: dir });
    assert.equal(cuda.code, 2, describeRun(cuda));
    assert.match(cuda.stderr, /--device: device 'cuda' needs CUDA, but this engine was built against a CPU-only libtorch/);
    // through the launcher: the first worker to refuse (its own GPU, cuda:LOCAL_RANK) stops the other
    const launched = await runCli(['compare', '--nproc-per-node', '2', '--device', 'cuda', '--out', out], { cacheDir: dir });
    assert.equal(launched.code, 2, describeRun(launched));
    const failed = /rank ([01]) of 2 \(pid \d+\) exited with code 2/.exec(launched.stderr);
    assert.ok(failed, describeRun(launched));
    const prefix = failed[1] === '1' ? '\\[rank 1\\] ' : '';
    assert.match(launched.stderr, new RegExp(`${prefix}transferlab compare: --device: device 'cuda:${failed[1]}' needs CUDA`));
    assert.equal(existsSync(out), false, 'no run folder');
  });
});
