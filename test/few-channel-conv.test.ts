/**
 * A mixed_bfloat16 Conv2D on an input with few channels, while training (src/few-channel-conv.cc):
 * its weight and bias gradients come from a direct kernel that sums in float32, not from oneDNN's
 * bfloat16 one. Checked against float64 naive gradients, within bfloat16's precision, and shown
 * to be taken: libtorch's bfloat16 gradient is a bfloat16 tensor (every value on bfloat16's grid),
 * the kernel's float32 sums are not.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { needsBf16 } from './helpers/engine-settings.js';
import * as naive from './helpers/naive.js';
import { numericGradient, prod, Rng, relativeError, tensor } from './helpers/naive.js';

/** bfloat16 rounds the input, the output gradient and the forward pass (see mixed-precision-layers.test.ts) */
const TOLERANCE = 2e-2;
const BATCH = 3;

interface Case {
  name: string;
  input: [number, number, number];
  filters: number;
  kernel: number;
  strides?: [number, number];
  padding?: 'valid' | 'same';
  dilation?: [number, number];
}

const CASES: Case[] = [
  { name: '3 channels, 3x3 valid, 20 filters (not a multiple of 16)', input: [10, 12, 3], filters: 20, kernel: 3 },
  { name: '3 channels, 3x3 same (symmetric padding)', input: [7, 9, 3], filters: 16, kernel: 3, padding: 'same' },
  {
    name: '2 channels, 5x5 same, strides 2 (asymmetric padding)',
    input: [9, 8, 2],
    filters: 4,
    kernel: 5,
    strides: [2, 2],
    padding: 'same',
  },
  { name: '4 channels, 3x3 dilated 2', input: [10, 9, 4], filters: 5, kernel: 3, dilation: [2, 2] },
  { name: '1 channel, 1x1', input: [5, 6, 1], filters: 3, kernel: 1 },
];

for (const c of CASES) {
  test(`mixed_bfloat16 first Conv2D, ${c.name}: weight and bias gradients in float32 sums, within bfloat16 precision of float64`, {
    skip: needsBf16,
  }, async () => {
    const rng = new Rng(11);
    const conv = { filters: c.filters, kernelSize: c.kernel, strides: c.strides, padding: c.padding, dilationRate: c.dilation };
    const model = new Sequential(
      [layers.conv2d({ ...conv, inputShape: c.input }), layers.flatten(), layers.dense({ units: 1, activation: 'sigmoid' })],
      { seed: 5, preprocessing: 'none', dtype: 'mixed_bfloat16' },
    );
    const kshape: [number, number, number, number] = [c.kernel, c.kernel, c.input[2], c.filters];
    // a zero kernel makes the SGD step's new kernel exactly minus its gradient (a linear layer:
    // its gradient does not depend on its kernel)
    const kernel = new Float32Array(prod(kshape));
    model.setLayerWeights(0, [kernel, rng.floats(c.filters, -0.1, 0.1)]);
    const head = model.layers.length - 1;
    model.setLayerWeights(head, [rng.floats(prod(model.layers[head].inputShape), -0.5, 0.5), rng.floats(1, -0.1, 0.1)]);
    const xf = rng.floats(BATCH * prod(c.input), -1, 1);
    const x = tensor(xf, [BATCH, ...c.input]);
    const weights = (): Float64Array[] =>
      [...model.getLayerWeights(0), ...model.getLayerWeights(head)].map((w) => Float64Array.from(w.data));
    const p = weights();
    const logits = () => {
      const h = naive.conv2d(x, p[0], kshape, p[1], { strides: c.strides, padding: c.padding, dilation: c.dilation });
      return naive.dense(naive.flatten(h), p[2], 1, p[3]).data;
    };
    const y = Float32Array.from({ length: BATCH }, (_, i) => i % 2);
    const [gKernel, gBias] = numericGradient(() => naive.bceFromLogits(logits(), y), p.slice(0, 2));

    // one SGD step with learning rate 1 moves every weight by minus its gradient
    model.compile({ optimizer: { sgd: { learningRate: 1 } }, loss: 'binaryCrossentropy' });
    await model.engine.trainStep(xf, [BATCH, ...c.input], y, 0);
    const after = model.getLayerWeights(0).map((w) => w.data);
    const engine = [...Array.from(kernel, (w, i) => w - after[0][i]), ...Array.from(p[1], (b, i) => b - after[1][i])];
    const err = relativeError(engine, [...gKernel, ...gBias]);
    assert.ok(err < TOLERANCE, `gradient of the first Conv2D: relative error ${err} vs float64 is beyond bfloat16's`);

    const bits = new Uint32Array(Float32Array.from(after[0]).buffer);
    const offGrid = bits.filter((b) => (b & 0xffff) !== 0).length;
    assert.ok(
      offGrid > bits.length / 2,
      `only ${offGrid} of ${bits.length} kernel gradients lie off bfloat16's grid: a bfloat16 weight gradient`,
    );
  });
}
