/**
 * VGG16's block 1 whole on AMX tiles in mixed_bfloat16 inference (fewChannelConvIntoPairAmx,
 * src/conv-pool-amx.cc): a few-channel Conv2D whose rows are computed straight into the next
 * Conv2D(relu) + MaxPooling2D pair's work units, its own output never stored. Inputs and kernels
 * lie on grids bfloat16 holds exactly, the biases off them (autocast rounds them first), and every
 * sum stays exact in float32: the engine's output must equal, bit for bit, a float64 reference that
 * rounds as autocast does after each convolution (input, kernels, biases and both conv outputs to
 * bfloat16), then pools with libtorch's window rule and applies the relu. The same cases run with
 * AMX off (oneDNN's convolutions, then max-pool-relu) against the same reference, but for NaN
 * inputs (oneDNN's fused relu turns NaN into 0). Cases cover VGG16's width (a unit boundary inside
 * an image, odd row counts at the borders), 'valid' on either conv, a linear first conv, several
 * units per image, new weights after a first call, and the chains that must not take this path.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../lib/engine/native.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { needsAmx, needsBf16, withLayerTimes, withSetting } from './helpers/engine-settings.js';
import { activation, assertBitExactPassingAndBlocked, naivePoolRelu, Rng, roundedConv2d } from './helpers/naive.js';

interface Case {
  /** height, width, channels (at most 4) */
  input: [number, number, number];
  first: { filters: number; padding: 'valid' | 'same'; activation: 'relu' | 'linear' };
  second: { filters: number; padding: 'valid' | 'same' };
  /** NaN at a few input positions */
  nan?: boolean;
  /** the pool is the model's output (no flatten after it) */
  poolIsOutput?: boolean;
}

const BATCH = 2;
const engine = native();
const counts = (): [number, number, number] => {
  const i = engine.info();
  return [i.amxConvIntoPairCalls, i.amxConvPoolCalls, i.amxFewChannelConvCalls];
};

/** conv -> conv(relu) -> pool -> flatten, as VGG16's block 1 before the rest of the base */
function chain(c: Case): Sequential {
  return new Sequential(
    [
      layers.conv2d({ ...c.first, kernelSize: 3, inputShape: c.input, name: 'c1' }),
      layers.conv2d({ ...c.second, kernelSize: 3, activation: 'relu', name: 'c2' }),
      layers.maxPooling2d({ poolSize: 2, name: 'p' }),
      ...(c.poolIsOutput ? [] : [layers.flatten({ name: 'f' })]),
    ],
    { preprocessing: 'none', seed: 4, dtype: 'mixed_bfloat16' },
  );
}

interface Weights {
  x: Float32Array;
  k1: Float32Array;
  b1: Float32Array;
  k2: Float32Array;
  b2: Float32Array;
}

/**
 * The first conv's sums are multiples of 2^-10 (grids 1/8 and 1/16, the rounded bias), so its
 * bfloat16 outputs are too; the second's products are multiples of 2^-14 and its sums stay far
 * below 2^10: exact in float32 in any order. The second bias is mostly negative (blocked windows).
 */
function weights(c: Case, seed: number): Weights {
  const rng = new Rng(seed);
  const [h, w, ch] = c.input;
  const x = rng.grid(BATCH * h * w * ch, 8, -1, 1);
  if (c.nan) for (const i of [0, 5 * ch + 1, x.length >> 1, x.length - 1]) x[i] = Number.NaN;
  return {
    x,
    k1: rng.grid(9 * ch * c.first.filters, 16, -0.5, 0.5),
    b1: rng.offGridBias(c.first.filters, -0.75, 0.5),
    k2: rng.grid(9 * c.first.filters * c.second.filters, 16, -0.25, 0.25),
    b2: rng.offGridBias(c.second.filters, -1, 0.5),
  };
}

function reference(c: Case, wts: Weights): number[] {
  const [h, w, ch] = c.input;
  const conv1 = roundedConv2d(wts.x, [BATCH, h, w, ch], wts.k1, [3, 3, ch, c.first.filters], wts.b1, { padding: c.first.padding });
  const y1 = activation(conv1, c.first.activation).data;
  const conv2 = roundedConv2d(y1, conv1.shape, wts.k2, [3, 3, c.first.filters, c.second.filters], wts.b2, { padding: c.second.padding });
  const [, oh, ow] = conv2.shape;
  return naivePoolRelu(conv2.data, [BATCH, oh!, ow!, c.second.filters], 2, new Float64Array(conv2.data.length)).out;
}

async function run(c: Case, wts: Weights, model = chain(c)): Promise<Float32Array> {
  model.setLayerWeights(0, [wts.k1, wts.b1]);
  model.setLayerWeights(1, [wts.k2, wts.b2]);
  const [h, w, ch] = c.input;
  return (await model.predict(wts.x, [BATCH, h, w, ch])).output;
}

const relu64 = { filters: 64, padding: 'same', activation: 'relu' } as const;
const CASES: Case[] = [
  // VGG16's width: units of 8 rows (302 padded columns), so 8 + 2 rows per image; the first unit's
  // first conv rows run from the padding row, the last unit's past the input's last row
  { input: [10, 300, 3], first: relu64, second: { filters: 64, padding: 'same' } },
  // 'valid' second conv: odd conv outputs (an unpooled last row and column)
  { input: [9, 13, 3], first: { filters: 32, padding: 'same', activation: 'relu' }, second: { filters: 32, padding: 'valid' } },
  // a linear, 'valid' first conv on 4 channels (negative inputs to the pair), 96 filters after it
  { input: [8, 10, 4], first: { filters: 32, padding: 'valid', activation: 'linear' }, second: { filters: 96, padding: 'same' } },
  // one channel; units of 30 rows at width 70 (72 padded): 30 + 10 per image, a boundary inside
  { input: [40, 70, 1], first: { filters: 32, padding: 'same', activation: 'relu' }, second: { filters: 32, padding: 'same' } },
  { input: [10, 12, 3], first: { filters: 32, padding: 'same', activation: 'relu' }, second: { filters: 32, padding: 'same' }, nan: true },
];

for (const [i, c] of CASES.entries()) {
  const what = `${c.input} input, ${c.first.filters} ${c.first.padding} ${c.first.activation} -> ${c.second.filters} ${c.second.padding}${c.nan ? ', NaN inputs' : ''}`;
  test(`AMX: ${what}: bit-exact against float64 with autocast's rounding`, { skip: needsAmx }, async () => {
    const wts = weights(c, 80 + i);
    const [into, pairs, convs] = counts();
    const out = await run(c, wts);
    assert.deepEqual(counts(), [into + 1, pairs, convs], 'the block ran as one kernel on AMX tiles');
    assertBitExactPassingAndBlocked(out, reference(c, wts), `AMX ${what}`);
  });
  test(`AMX off: ${what}: the same against float64`, { skip: needsBf16 || (c.nan && "oneDNN's fused relu turns NaN into 0") }, async () => {
    const wts = weights(c, 80 + i);
    const before = counts();
    const out = await withSetting(engine.setAmx, false, () => run(c, wts));
    assert.deepEqual(counts(), before, 'AMX off: not on tiles');
    assertBitExactPassingAndBlocked(out, reference(c, wts), `AMX off ${what}`);
  });
}

test('AMX: new weights for either conv after a first call are used', { skip: needsAmx }, async () => {
  const c: Case = {
    input: [8, 9, 3],
    first: { filters: 32, padding: 'same', activation: 'relu' },
    second: { filters: 32, padding: 'same' },
  };
  const model = chain(c);
  const first = weights(c, 90);
  assertBitExactPassingAndBlocked(await run(c, first, model), reference(c, first), 'first weights');
  const other = weights(c, 91);
  const newFirstConv = { ...first, k1: other.k1, b1: other.b1 };
  assertBitExactPassingAndBlocked(await run(c, newFirstConv, model), reference(c, newFirstConv), 'new first conv weights');
  const newSecondConv = { ...newFirstConv, k2: other.k2, b2: other.b2 };
  assertBitExactPassingAndBlocked(await run(c, newSecondConv, model), reference(c, newSecondConv), 'new second conv weights');
});

test('AMX: chains outside the kernel take the other paths, and agree with them', { skip: needsAmx }, async () => {
  const base: Case = {
    input: [6, 8, 3],
    first: { filters: 32, padding: 'same', activation: 'relu' },
    second: { filters: 32, padding: 'same' },
  };
  const others: [string, Case, [number, number, number]][] = [
    // the first conv alone on tiles, then oneDNN and max-pool-relu (48 channels do not fit the pair)
    ['48 filters first', { ...base, first: { ...base.first, filters: 48 } }, [0, 0, 1]],
    // the pool as the model's output (float32 there): the first conv alone on tiles, the pair on oneDNN
    ['the pool as the output', { ...base, poolIsOutput: true }, [0, 0, 1]],
  ];
  for (const [name, c, moved] of others) {
    const wts = weights(c, 95);
    const before = counts();
    const out = await run(c, wts);
    assert.deepEqual(
      counts().map((n, i) => n - before[i]!),
      moved,
      `${name}: [into pair, pair alone, first conv alone] calls`,
    );
    assertBitExactPassingAndBlocked(out, reference(c, wts), name);
  }
});

test('AMX: layer timing gives the first conv a row with no time of its own, before the second conv', { skip: needsAmx }, async () => {
  // bench/roofline.ts counts a conv without time in the next conv's rate
  const c: Case = {
    input: [8, 9, 3],
    first: { filters: 32, padding: 'same', activation: 'relu' },
    second: { filters: 32, padding: 'same' },
  };
  const model = chain(c);
  const wts = weights(c, 97);
  await run(c, wts, model);
  const [into] = counts();
  const { rows } = await withLayerTimes(() => run(c, wts, model));
  assert.equal(counts()[0], into + 1, 'the block ran as one kernel');
  assert.deepEqual(
    rows.slice(0, 3).map((r) => r.layer),
    ['c1', 'c2', 'p'],
  );
  assert.deepEqual([rows[0]!.forwardSeconds, rows[0]!.forwardCalls], [0, 1], 'c1: a call, no time');
  assert.ok(rows[1]!.forwardSeconds > 0, 'c2 holds the block');
});
