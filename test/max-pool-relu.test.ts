/**
 * The engine's fused Conv2D(relu) + MaxPooling2D (src/max-pool-relu.cc) against a naive NHWC max
 * pool + ReLU written here, with libtorch's CPU window rule (row-major scan, a value wins if it is
 * greater or NaN). A depthwise 1x1 convolution of weight 1 passes its input through exactly, so
 * predict gives relu(maxpool(x)) and Grad-CAM's gradient at the input of that convolution is the
 * pair's input gradient. fp32 must match bitwise; bf16 within bf16 rounding.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../lib/engine/native.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { withSetting } from './helpers/engine-settings.js';
import { assertClose, naivePoolRelu, prod, Rng } from './helpers/naive.js';

type Shape4 = [number, number, number, number];

/** Identity, depthwise 1x1 conv of weight 1 with relu, max pool k, flatten, dense 1 (linear). */
function passThroughModel(shape: Shape4, k: number, dtype: 'float32' | 'mixed_bfloat16', rng: Rng): { model: Sequential; g: Float32Array } {
  const [, h, w, c] = shape;
  const model = new Sequential(
    [
      layers.activation({ activation: 'linear', inputShape: [h, w, c] }),
      layers.depthwiseConv2d({ kernelSize: [1, 1], activation: 'relu', useBias: false }),
      layers.maxPooling2d({ poolSize: [k, k] }),
      layers.flatten(),
      layers.dense({ units: 1, useBias: false }),
    ],
    { preprocessing: 'none', name: 'pool', dtype },
  );
  model.setLayerWeights(1, [new Float32Array(c).fill(1)]);
  const pooled = Math.floor(h / k) * Math.floor(w / k) * c;
  // multiples of 1/64: exact in bfloat16, so the bf16 gradient is the naive one rounded nowhere
  const g = Float32Array.from({ length: pooled }, () => (rng.int(128) - 64) / 64);
  model.setLayerWeights(4, [g]);
  return { model, g };
}

/** Values on a coarse grid (many ties), some negative windows, optional NaNs; exact in bfloat16. */
function input(shape: Shape4, rng: Rng, nans: number): Float32Array {
  const x = Float32Array.from({ length: prod(shape) }, () => (rng.int(9) - 6) / 4);
  for (let i = 0; i < nans; i++) x[rng.int(x.length)] = Number.NaN;
  return x;
}

async function check(shape: Shape4, k: number, dtype: 'float32' | 'mixed_bfloat16', nans: number, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const { model, g } = passThroughModel(shape, k, dtype, rng);
  const x = input(shape, rng, nans);
  const [n] = shape;
  // one dense weight per pooled element, so d(sum of scores)/d(pooled) is g for every example
  const gOut = Float32Array.from({ length: n * g.length }, (_, i) => g[i % g.length]!);
  const expected = naivePoolRelu(x, shape, k, gOut);

  const { output } = await model.predict(x, shape, { toLayer: 3 });
  const cam = model.engine.gradCam(x, shape, model.engineIndex(1, true), new Array<number>(n).fill(1));
  const what = `${dtype} [${shape}] pool ${k}`;
  if (dtype === 'float32') {
    assert.deepEqual(Array.from(output), expected.out, `${what}: forward`);
    assert.deepEqual(Array.from(cam.gradient), expected.dx, `${what}: input gradient`);
  } else {
    assertClose(output, expected.out, { atol: 0, rtol: 2 ** -8, what: `${what}: forward` });
    assertClose(cam.gradient, expected.dx, { atol: 0, rtol: 2 ** -8, what: `${what}: input gradient` });
  }
  // the cases are meant to exercise both relu branches and, with NaNs, the NaN rule
  assert.ok(expected.out.some((v) => v === 0) && expected.out.some((v) => v > 0));
  if (nans > 0) assert.ok(expected.out.some(Number.isNaN));
}

test('fp32: forward and input gradient bitwise equal to the naive pool (ties, negative windows, odd sizes, C % 16 != 0)', async () => {
  await check([3, 7, 9, 5], 2, 'float32', 0, 1);
  await check([2, 6, 5, 19], 2, 'float32', 0, 2);
  await check([2, 8, 7, 3], 3, 'float32', 0, 3);
});

test('fp32 with 16 channels (the kernel compiled for a vector of them, which the blocked stretch uses) and 32', async () => {
  await check([2, 7, 9, 16], 2, 'float32', 0, 9);
  await check([2, 6, 7, 32], 2, 'float32', 0, 10);
});

test('fp32: NaN wins its window (the last NaN in row-major order takes the gradient)', async () => {
  await check([2, 7, 7, 6], 2, 'float32', 12, 4);
  await check([1, 9, 10, 4], 3, 'float32', 10, 5);
  await check([2, 7, 7, 16], 2, 'float32', 12, 11);
});

test('bf16 (mixed_bfloat16): forward and input gradient within bf16 rounding of the naive pool', async () => {
  await check([3, 7, 9, 5], 2, 'mixed_bfloat16', 0, 6);
  await check([2, 8, 7, 17], 3, 'mixed_bfloat16', 0, 7);
  await check([2, 7, 7, 6], 2, 'mixed_bfloat16', 12, 8);
});

/** conv 3x3 (relu fused into the pool, or linear + separate ReLU after it) -> pool 2 -> dense sigmoid */
function cnn(fused: boolean): Sequential {
  const head = [layers.flatten(), layers.dense({ units: 1, activation: 'sigmoid' })];
  const conv = layers.conv2d({ filters: 6, kernelSize: 3, activation: fused ? 'relu' : 'linear', inputShape: [9, 8, 2] });
  const pool = layers.maxPooling2d({ poolSize: 2 });
  const body = fused ? [conv, pool] : [conv, pool, layers.activation({ activation: 'relu' })];
  return new Sequential([...body, ...head], { preprocessing: 'none', name: fused ? 'fused' : 'unfused', seed: 3 });
}

test('training: two Adam steps of Conv2D(relu) + MaxPooling2D give the weights of conv, pool, then a separate ReLU', async () => {
  const rng = new Rng(9);
  const models = [cnn(true), cnn(false)];
  const kernel = rng.floats(3 * 3 * 2 * 6, -0.5, 0.5);
  const bias = rng.floats(6, -0.1, 0.1);
  const dense = rng.floats(3 * 3 * 6, -0.5, 0.5);
  const shape: Shape4 = [4, 9, 8, 2];
  const x = rng.floats(prod(shape), -1, 1);
  const y = Float32Array.from([0, 1, 1, 0]);
  const results: number[][][] = [];
  // the pair on a 2-channel input would run as the fused first block (few-channel-block.test.ts)
  await withSetting(native().setFirstBlockFusion, false, async () => {
    for (const m of models) {
      m.setLayerWeights(0, [kernel, bias]);
      m.setLayerWeights(m.layers.length - 1, [dense, new Float32Array(1)]);
      m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
      for (let step = 0; step < 2; step++) await m.engine.trainStep(x, shape, y, 0);
      results.push([...m.getLayerWeights(0), ...m.getLayerWeights(m.layers.length - 1)].map((w) => Array.from(w.data)));
    }
  });
  assert.deepEqual(results[0], results[1]);
  assert.notDeepEqual(results[0]![0], Array.from(kernel), 'the steps moved the kernel');
});
