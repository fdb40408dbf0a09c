/**
 * A few-channel Conv2D without a pool after it (VGG16's first convolution) in mixed_bfloat16
 * inference on AMX tiles (fewChannelConvAmx, src/few-channel-block.cc). Inputs and kernels lie on
 * grids bfloat16 holds exactly, the bias off them (rounded to bfloat16 first, as autocast does),
 * and every conv sum stays exact in float32: the engine's output must equal, bit for bit, a float64
 * reference that rounds input, kernel, bias and output to bfloat16, then applies the activation
 * (torch's relu keeps a NaN). The same cases run with AMX off
 * (oneDNN) against the same reference, but for NaN inputs: oneDNN's fused relu turns NaN into 0.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../lib/engine/native.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { needsAmx, needsBf16, withSetting } from './helpers/engine-settings.js';
import { activation, assertBitExact, Rng, roundedConv2d } from './helpers/naive.js';

interface Case {
  input: [number, number, number];
  filters: number;
  padding: 'valid' | 'same';
  activation: 'relu' | 'linear';
  /** NaN at a few input positions */
  nan?: boolean;
}

const BATCH = 2;
const engine = native();
const calls = (): number => engine.info().amxFewChannelConvCalls;

async function run(c: Case, seed: number): Promise<{ out: Float32Array; expected: number[] }> {
  const rng = new Rng(seed);
  const [h, w, ch] = c.input;
  const x = rng.grid(BATCH * h * w * ch, 8, -1, 1);
  if (c.nan) for (const i of [0, 5 * ch + 1, x.length >> 1, x.length - 1]) x[i] = Number.NaN;
  const kernel = rng.grid(9 * ch * c.filters, 16, -0.5, 0.5);
  const bias = rng.offGridBias(c.filters, -0.75, 0.5);
  const model = new Sequential(
    [
      layers.conv2d({ filters: c.filters, kernelSize: 3, padding: c.padding, activation: c.activation, inputShape: c.input, name: 'c' }),
      layers.flatten({ name: 'f' }),
    ],
    { preprocessing: 'none', seed: 4, dtype: 'mixed_bfloat16' },
  );
  model.setLayerWeights(0, [kernel, bias]);
  const { output } = await model.predict(x, [BATCH, h, w, ch]);
  const conv = roundedConv2d(x, [BATCH, h, w, ch], kernel, [3, 3, ch, c.filters], bias, { padding: c.padding });
  // Math.max(0, NaN) is NaN: torch's relu keeps a NaN
  return { out: output, expected: Array.from(activation(conv, c.activation).data) };
}

const CASES: Case[] = [
  { input: [7, 9, 3], filters: 64, padding: 'same', activation: 'relu' },
  // VGG16's width, an odd number of rows (the last pair has one)
  { input: [5, 300, 3], filters: 64, padding: 'same', activation: 'relu' },
  // 20 filters (a partial block of 32), no activation, 'valid', one channel
  { input: [6, 21, 1], filters: 20, padding: 'valid', activation: 'linear' },
  { input: [8, 17, 4], filters: 32, padding: 'same', activation: 'relu', nan: true },
];

for (const [i, c] of CASES.entries()) {
  const what = `${c.input} input, ${c.filters} filters, ${c.padding}, ${c.activation}${c.nan ? ', NaN inputs' : ''}`;
  test(`AMX: ${what}: bit-exact against float64 with autocast's rounding`, { skip: needsAmx }, async () => {
    const before = calls();
    const { out, expected } = await run(c, 70 + i);
    assert.equal(calls(), before + 1, 'the conv ran on AMX tiles');
    assertBitExact(out, expected, `AMX ${what}`);
  });
  test(`AMX off: ${what}: the same against float64`, { skip: needsBf16 || (c.nan && "oneDNN's fused relu turns NaN into 0") }, async () => {
    const before = calls();
    const { out, expected } = await withSetting(engine.setAmx, false, () => run(c, 70 + i));
    assert.equal(calls(), before, 'AMX off: not on tiles');
    assertBitExact(out, expected, `AMX off ${what}`);
  });
}

test('AMX: 5 channels, or a 5x5 kernel, take the general path', { skip: needsAmx }, async () => {
  for (const [name, channels, kernelSize] of [
    ['5 channels', 5, 3],
    ['5x5 kernel', 3, 5],
  ] as const) {
    const model = new Sequential(
      [
        layers.conv2d({ filters: 32, kernelSize, padding: 'same', activation: 'relu', inputShape: [6, 6, channels], name: 'c' }),
        layers.flatten(),
      ],
      { preprocessing: 'none', seed: 4, dtype: 'mixed_bfloat16' },
    );
    const before = calls();
    const { output } = await model.predict(new Float32Array(BATCH * 36 * channels).fill(0.5), [BATCH, 6, 6, channels]);
    assert.equal(calls(), before, `${name}: not on tiles`);
    assert.equal(output.length, BATCH * 36 * 32);
  }
});
