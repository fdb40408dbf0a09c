/**
 * The mixed_bfloat16 Conv2D weight gradient on AMX tiles (src/conv-weight-gradient-amx.cc): kernel
 * and bias gradients of a training step against a float64 reference, with AMX on (float32 sums of
 * exact bfloat16 products) and off (today's oneDNN path, a bfloat16 weight gradient); and a small
 * CNN's training step with AMX on and off (the input gradient, hence the first conv's kernel
 * gradient, unchanged).
 *
 * The model is conv (linear) -> flatten -> dense 1 (sigmoid, bias 4096) with binary crossentropy:
 * the logit is so large that sigmoid is exactly 1, so the gradient at the logit is (1 - y) / batch
 * whatever the conv computed, and the conv output's gradient is exactly that times the dense kernel
 * (bfloat16-exact values). With inputs and dense kernel on coarse grids every float32 sum of the
 * products is exact in any order: the tiles must match float64 to float32 rounding.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../lib/engine/native.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { needsAmx, needsBf16, withSetting } from './helpers/engine-settings.js';
import { assertClose, conv2dFilterGradient, maxAbs, prod, Rng, tensor } from './helpers/naive.js';
import { trainStepOnAndOff } from './helpers/switched-step.js';

interface Case {
  input: [number, number, number];
  filters: number;
  kernel: [number, number];
  padding: 'valid' | 'same';
}

const BATCH = 4;
/** soft labels: the logit gradients (1 - y) / BATCH are exact in bfloat16 and differ per example */
const LABELS = Float32Array.from([0, 0.5, 0.75, 0.25]);
/** SGD's step is -lr * gradient: a large power of two keeps the gradient's float32 bits */
const LR = 1024;

function model(c: Case): Sequential {
  return new Sequential(
    [
      layers.conv2d({ filters: c.filters, kernelSize: c.kernel, padding: c.padding, inputShape: c.input, name: 'c' }),
      layers.flatten({ name: 'f' }),
      layers.dense({ units: 1, activation: 'sigmoid', name: 'd' }),
    ],
    { preprocessing: 'none', name: 'wgrad', seed: 3, dtype: 'mixed_bfloat16' },
  );
}

/** The conv's kernel and bias gradients (Keras layouts) from one SGD step, and the float64 reference. */
async function gradients(c: Case, seed: number) {
  const rng = new Rng(seed);
  const [h, w, ch] = c.input;
  const m = model(c);
  const kernel = rng.grid(c.kernel[0] * c.kernel[1] * ch * c.filters, 64, -1 / 16, 1 / 16);
  const bias = rng.grid(c.filters, 16, -0.5, 0.5);
  const x = rng.grid(BATCH * h * w * ch, 8, -1, 1);
  const features = prod(m.layers[1]!.outputShape as number[]);
  const r = rng.grid(features, 256, -1 / 16, 1 / 16);
  m.setLayerWeights(0, [kernel, bias]);
  m.setLayerWeights(2, [r, Float32Array.from([4096])]);
  m.compile({ optimizer: { sgd: { learningRate: LR } }, loss: 'binaryCrossentropy' });
  await m.engine.trainStep(x, [BATCH, h, w, ch], LABELS, 0);
  const [k1, b1] = m.getLayerWeights(0).map((t) => t.data);
  const got = {
    dKernel: Array.from(kernel, (k, i) => (k - k1![i]!) / LR),
    dBias: Array.from(bias, (b, i) => (b - b1![i]!) / LR),
  };
  // the conv output's gradient: (1 - y) / BATCH times the dense kernel (flattened NHWC)
  const g = new Float64Array(BATCH * features);
  for (let n = 0; n < BATCH; n++) for (let q = 0; q < features; q++) g[n * features + q] = ((1 - LABELS[n]!) / BATCH) * r[q]!;
  const expected = conv2dFilterGradient(
    tensor(x, [BATCH, h, w, ch]),
    tensor(g, [BATCH, ...(m.layers[0]!.outputShape as number[])]),
    c.kernel,
    c.padding,
  );
  return { got, expected };
}

const CASES: Case[] = [
  { input: [7, 9, 16], filters: 16, kernel: [3, 3], padding: 'valid' },
  // 37 columns: a second, partial block of 32 positions; 32 channels: one full transpose block
  { input: [6, 37, 32], filters: 32, kernel: [3, 3], padding: 'same' },
  // 48 channels (a partial second 32-channel transpose block), 48 filters (an odd filter block)
  { input: [9, 5, 48], filters: 48, kernel: [3, 3], padding: 'same' },
  { input: [12, 34, 64], filters: 16, kernel: [3, 3], padding: 'valid' },
  // wide rows: the whole image one block of rows (a block holds about 2048 positions)
  { input: [11, 130, 32], filters: 32, kernel: [3, 3], padding: 'same' },
  // 40 rows of 72 padded columns: blocks of 29 and 11 rows (a block starting inside the image, padding
  // rows at its edges, a shorter last block over the previous block's leftover rows)
  { input: [40, 70, 16], filters: 16, kernel: [3, 3], padding: 'same' },
  { input: [10, 150, 16], filters: 16, kernel: [3, 3], padding: 'valid' },
  // other kernel sizes; 'same' with an even kernel pads asymmetrically (applied before the conv)
  { input: [11, 20, 16], filters: 32, kernel: [2, 4], padding: 'same' },
  { input: [8, 40, 16], filters: 16, kernel: [5, 1], padding: 'same' },
];

for (const [i, c] of CASES.entries()) {
  const what = `${c.input} input, ${c.filters} filters, ${c.kernel.join('x')} ${c.padding}`;
  test(`mixed_bfloat16 conv on AMX tiles: ${what}: kernel and bias gradients match float64`, { skip: needsAmx }, async () => {
    const { got, expected } = await withSetting(native().setAmx, true, () => gradients(c, 30 + i));
    for (const key of ['dKernel', 'dBias'] as const) {
      assertClose(got[key], expected[key], { atol: 1e-6 * maxAbs(expected[key]), rtol: 1e-5, what: `${what}: ${key}` });
    }
  });
  test(`mixed_bfloat16 conv with AMX off: ${what}: kernel and bias gradients within bfloat16 of float64`, { skip: needsBf16 }, async () => {
    const { got, expected } = await withSetting(native().setAmx, false, () => gradients(c, 30 + i));
    // today's path rounds the weight gradient to bfloat16 (oneDNN's bfloat16 backward weights)
    for (const key of ['dKernel', 'dBias'] as const) {
      assertClose(got[key], expected[key], { atol: 2 ** -8 * maxAbs(expected[key]), rtol: 2 ** -7, what: `${what}: ${key}` });
    }
  });
}

/** A first conv on 3 channels (not this path) whose kernel gradient goes through the AMX conv's input gradient. */
function smallCnn(): Sequential {
  return new Sequential(
    [
      layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu', inputShape: [18, 21, 3], name: 'c1' }),
      layers.conv2d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2' }),
      layers.maxPooling2d({ poolSize: 2, name: 'p2' }),
      layers.conv2d({ filters: 48, kernelSize: 3, activation: 'relu', name: 'c3' }),
      layers.flatten({ name: 'f' }),
      layers.dense({ units: 1, activation: 'sigmoid', name: 'd' }),
    ],
    { preprocessing: 'scale01', name: 'small', seed: 5, dtype: 'mixed_bfloat16' },
  );
}

test('a mixed_bfloat16 training step of a small CNN: AMX on and off agree, the input gradient unchanged', { skip: needsAmx }, async () => {
  const { on: tiles, off: today } = await trainStepOnAndOff(native().setAmx, smallCnn, {
    seed: 9,
    image: [18, 21, 3],
    layers: [0, 1, 3, 5],
  });
  // the forward pass is today's either way
  assert.equal(tiles.loss, today.loss, 'loss');
  // c1's kernel and bias gradients come through the AMX convs' input gradients: bitwise today's
  assert.deepEqual(tiles.gradients[0], today.gradients[0], 'c1 kernel gradient');
  assert.deepEqual(tiles.gradients[1], today.gradients[1], 'c1 bias gradient');
  // c2, c3: float32 sums vs oneDNN's bfloat16 weight gradient
  for (const i of [2, 4]) {
    assert.ok(
      tiles.gradients[i]!.some((v, j) => v !== today.gradients[i]![j]),
      `gradient ${i} came out bitwise identical: was the AMX path taken?`,
    );
  }
  for (const [i, g] of tiles.gradients.entries()) {
    assertClose(g, today.gradients[i]!, { atol: 2 ** -8 * maxAbs(today.gradients[i]!), rtol: 2 ** -7, what: `gradient ${i}` });
  }
});
