/**
 * The Conv2D(relu) + 2x2 MaxPooling2D pair of a frozen base in mixed_bfloat16 inference on AMX tiles
 * (src/conv-pool-amx.cc). Inputs and kernels lie on coarse grids that bfloat16 holds exactly; the
 * bias does not (autocast rounds it to bfloat16 first), and every conv sum stays exact in float32
 * in any order: the engine's bfloat16 output must then equal, bit for bit, a float64 reference
 * that rounds as autocast does (input, kernel, bias, conv output to bfloat16), then pools with
 * libtorch's window rule and applies the relu. The same cases run with AMX switched
 * off (oneDNN's convolution, then max-pool-relu) against the same reference. Cases cover channel
 * and filter counts, 'same' and 'valid', odd conv outputs, several work units per image, NaN
 * inputs, new weights after a first call (the packed kernel is redone), and the pairs that must
 * not take this path.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../lib/engine/native.js';
import { layers } from '../lib/models/layers.js';
import type { DtypePolicyName } from '../lib/models/mixed-precision.js';
import { Sequential } from '../lib/models/sequential.js';
import { needsAmx, needsBf16, withSetting } from './helpers/engine-settings.js';
import { assertBitExactPassingAndBlocked, bf16, naivePoolRelu, Rng, roundedConv2d } from './helpers/naive.js';

interface Case {
  input: [number, number, number];
  filters: number;
  padding: 'valid' | 'same';
  /** NaN at a few input positions */
  nan?: boolean;
}

const BATCH = 2;
const engine = native();
const calls = (): number => engine.info().amxConvPoolCalls;

/** conv(relu) -> pool -> flatten: the pool is not the model's output, as in a base with a head */
function pair(c: Case, dtype: DtypePolicyName = 'mixed_bfloat16'): Sequential {
  return new Sequential(
    [
      layers.conv2d({ filters: c.filters, kernelSize: 3, padding: c.padding, activation: 'relu', inputShape: c.input, name: 'c' }),
      layers.maxPooling2d({ poolSize: 2, name: 'p' }),
      layers.flatten({ name: 'f' }),
    ],
    { preprocessing: 'none', seed: 4, dtype },
  );
}

interface Weights {
  x: Float32Array;
  kernel: Float32Array;
  bias: Float32Array;
}

/**
 * Input and kernel on grids (exact in bfloat16; conv sums multiples of 2^-7 below 2^10); the bias
 * 1/8..1 in magnitude, off bfloat16's grid but a multiple of 2^-10 once rounded to it, so a sum
 * plus the bias stays exact in float32. Mostly negative: some windows are blocked.
 */
function weights(c: Case, seed: number): Weights {
  const rng = new Rng(seed);
  const [h, w, ch] = c.input;
  const x = rng.grid(BATCH * h * w * ch, 8, -1, 1);
  if (c.nan) for (const i of [0, 7 * ch + 3, x.length >> 1, x.length - 1]) x[i] = Number.NaN;
  const bias = rng.offGridBias(c.filters, -1, 0.5);
  return { x, kernel: rng.grid(9 * ch * c.filters, 16, -0.25, 0.25), bias };
}

/** relu(maxpool(round(conv(x) + b))) in float64, NHWC; `round` is autocast's bfloat16 rounding, or float32's */
function reference(c: Case, { x, kernel, bias }: Weights, round: (v: number) => number = bf16): number[] {
  const [h, w, ch] = c.input;
  const conv = roundedConv2d(x, [BATCH, h, w, ch], kernel, [3, 3, ch, c.filters], bias, { padding: c.padding }, round);
  const [, oh, ow] = conv.shape;
  return naivePoolRelu(conv.data, [BATCH, oh!, ow!, c.filters], 2, new Float64Array(conv.data.length)).out;
}

async function run(c: Case, wts: Weights, model = pair(c)): Promise<Float32Array> {
  model.setLayerWeights(0, [wts.kernel, wts.bias]);
  const [h, w, ch] = c.input;
  return (await model.predict(wts.x, [BATCH, h, w, ch])).output;
}

const CASES: Case[] = [
  { input: [8, 10, 32], filters: 32, padding: 'same' },
  // odd conv outputs (an unpooled last row and column), 96 filters (three 32-filter blocks)
  { input: [9, 11, 64], filters: 96, padding: 'valid' },
  { input: [7, 13, 32], filters: 64, padding: 'same' },
  // 256 channels, 160 filters
  { input: [6, 6, 256], filters: 160, padding: 'same' },
  // the largest channel count taken (512): units of about 1024 positions (32 rows at width 34), 32 + 4 per image
  { input: [36, 32, 512], filters: 32, padding: 'same' },
  // 2048 positions per work unit: at width 70 (72 padded), units of 30 rows, here 30 + 10 per image
  { input: [40, 70, 32], filters: 32, padding: 'same' },
  // VGG16's first pair's width: units of 8 rows of 302 positions, 2 per image
  { input: [16, 300, 32], filters: 32, padding: 'same' },
  { input: [10, 12, 32], filters: 32, padding: 'same', nan: true },
];

for (const [i, c] of CASES.entries()) {
  const what = `${c.input} input, ${c.filters} filters, ${c.padding}${c.nan ? ', NaN inputs' : ''}`;
  test(`AMX: ${what}: bit-exact against float64 with autocast's rounding`, { skip: needsAmx }, async () => {
    const wts = weights(c, 30 + i);
    const before = calls();
    const out = await run(c, wts);
    assert.equal(calls(), before + 1, 'the pair ran on AMX tiles');
    assertBitExactPassingAndBlocked(out, reference(c, wts), `AMX ${what}`);
  });
  test(`AMX off: ${what}: the same against float64`, { skip: needsBf16 }, async () => {
    const wts = weights(c, 30 + i);
    const before = calls();
    const out = await withSetting(engine.setAmx, false, () => run(c, wts));
    assert.equal(calls(), before, 'AMX off: the pair did not run on tiles');
    assertBitExactPassingAndBlocked(out, reference(c, wts), `AMX off ${what}`);
  });
}

test('AMX: new weights after a first call are used (the packed kernel is redone)', { skip: needsAmx }, async () => {
  const c: Case = { input: [8, 8, 32], filters: 64, padding: 'same' };
  const model = pair(c);
  const first = weights(c, 50);
  assertBitExactPassingAndBlocked(await run(c, first, model), reference(c, first), 'first weights');
  const second = { ...weights(c, 51), x: first.x };
  assertBitExactPassingAndBlocked(await run(c, second, model), reference(c, second), 'second weights');
});

test('AMX: pairs outside the kernel take the other path, and agree with it', { skip: needsAmx }, async () => {
  const others: [string, Case, DtypePolicyName][] = [
    ['float32 policy', { input: [6, 6, 32], filters: 32, padding: 'same' }, 'float32'],
    ['544 channels', { input: [4, 4, 544], filters: 32, padding: 'same' }, 'mixed_bfloat16'],
    ['48 channels (not a multiple of 32)', { input: [6, 6, 48], filters: 32, padding: 'same' }, 'mixed_bfloat16'],
    ['40 filters', { input: [6, 6, 32], filters: 40, padding: 'same' }, 'mixed_bfloat16'],
  ];
  for (const [name, c, dtype] of others) {
    const wts = weights(c, 60);
    const before = calls();
    const out = await run(c, wts, pair(c, dtype));
    assert.equal(calls(), before, `${name}: not on the AMX pair kernel`);
    assertBitExactPassingAndBlocked(out, reference(c, wts, dtype === 'float32' ? Math.fround : bf16), name);
  }
  // the pool as the model's output stays on the general path (its output is float32 there)
  const c: Case = { input: [6, 6, 32], filters: 32, padding: 'same' };
  const last = new Sequential(
    [
      layers.conv2d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: c.input, name: 'c' }),
      layers.maxPooling2d({ poolSize: 2, name: 'p' }),
    ],
    { preprocessing: 'none', seed: 4, dtype: 'mixed_bfloat16' },
  );
  const before = calls();
  await run(c, weights(c, 61), last);
  assert.equal(calls(), before, 'a pool that is the output: not on the AMX pair kernel');
});
