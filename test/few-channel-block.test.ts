/**
 * The fused first block (src/few-channel-block.cc): Conv2D(relu) on a few-channel input + 2x2
 * MaxPooling2D as one kernel. Its forward output and its kernel and bias gradients are checked
 * against a float64 reference written here (convolution, pool with libtorch's window rule, relu,
 * and the gradient through each window's winner), in float32 and mixed_bfloat16 (the reference then
 * rounds input, kernel, bias and conv output to bfloat16 as autocast does). mixed_bfloat16 runs
 * on AMX tiles where the CPU has them and on the AVX-512 code with `setAmx(false)`: both checked
 * against the same reference, with the same tolerances (AMX changes only the float32 summation
 * order and flushes denormals, which the grids below never produce). A training step with the
 * fused path and with it switched off (today's conv, then max-pool-relu) must agree, and so must a
 * mixed_bfloat16 one with AMX on and off.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../lib/engine/native.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { needsAmx, needsBf16, withLayerTimes, withSetting } from './helpers/engine-settings.js';
import {
  assertClose,
  bf16,
  conv2d,
  conv2dFilterGradient,
  maxAbs,
  naivePoolRelu,
  prod,
  Rng,
  relativeError,
  sigmoid,
  tensor,
} from './helpers/naive.js';
import { trainStepOnAndOff } from './helpers/switched-step.js';

type Dtype = 'float32' | 'mixed_bfloat16';

interface Case {
  input: [number, number, number];
  filters: number;
  padding: 'valid' | 'same';
  dtype: Dtype;
  /** NaN at a few input positions: only the forward pass is checked (the loss, hence every gradient, is NaN) */
  nan?: boolean;
}

const BATCH = 3;
/** SGD's step is -lr * gradient: a large power of two keeps the gradient's float32 bits (see below) */
const LR = 1024;

interface Reference {
  out: Float64Array; // pooled output, NHWC
  blocked: number; // windows whose max was <= 0
  dKernel: Float64Array; // Keras layout [3][3][C][F]
  dBias: Float64Array;
}

/**
 * Conv2D 3x3 stride 1 (+ bias) -> 2x2 max pool + relu (naivePoolRelu: libtorch's window rule) ->
 * flatten -> dense 1 (kernel r, bias 0) -> binary crossentropy from logits (mean over the batch),
 * with the kernel and bias gradients taken through each window's winner.
 */
function reference(c: Case, x: Float32Array, kernel: Float32Array, bias: Float32Array, r: Float32Array, y: Float32Array): Reference {
  const [h, w, ch] = c.input;
  const f = c.filters;
  const round = c.dtype === 'mixed_bfloat16' ? bf16 : (v: number) => v;
  const p = c.padding === 'same' ? 1 : 0;
  const [oh, ow] = [h + 2 * p - 2, w + 2 * p - 2];
  const [ph, pw] = [Math.floor(oh / 2), Math.floor(ow / 2)];
  const xr = tensor(Float64Array.from(x, round), [BATCH, h, w, ch]);
  // exact sums on the test's grids; autocast rounds the conv output to bfloat16
  const conv = conv2d(xr, Float64Array.from(kernel, round), [3, 3, ch, f], Float64Array.from(bias, round), {
    padding: c.padding,
  }).data.map(round);
  const shape: [number, number, number, number] = [BATCH, oh, ow, f];
  const pooled = ph * pw * f;
  const out = Float64Array.from(naivePoolRelu(conv, shape, 2, new Float64Array(BATCH * pooled)).out);
  const blocked = out.filter((v) => v === 0).length;
  // the dense layer as its policy computes it: under mixed_bfloat16 its kernel, output and the
  // gradient it hands back are bfloat16 (the loss and dz float32)
  const rr = Float64Array.from(r, round);
  const g = new Float64Array(BATCH * pooled);
  for (let n = 0; n < BATCH; n++) {
    let z = 0;
    for (let q = 0; q < pooled; q++) z += out[n * pooled + q]! * rr[q]!;
    const dz = round((sigmoid(round(z)) - y[n]!) / BATCH);
    for (let q = 0; q < pooled; q++) g[n * pooled + q] = round(dz * rr[q]!);
  }
  // the gradient at the conv output: each window's g at its winner, nothing where relu clamped
  const dConv = naivePoolRelu(conv, shape, 2, g).dx;
  return { out, blocked, ...conv2dFilterGradient(xr, tensor(dConv, shape), [3, 3], c.padding) };
}

function block(c: Case, head: boolean): Sequential {
  const body = [
    layers.conv2d({ filters: c.filters, kernelSize: 3, padding: c.padding, activation: 'relu', inputShape: c.input, name: 'c' }),
    layers.maxPooling2d({ poolSize: 2, name: 'p' }),
    layers.flatten({ name: 'f' }),
  ];
  const all = head ? [...body, layers.dense({ units: 1, activation: 'sigmoid', name: 'd' })] : body;
  return new Sequential(all, { preprocessing: 'none', name: 'block', seed: 2, dtype: c.dtype });
}

/** The layer's kernel and bias gradients (Keras layouts), as the engine computed them; none for a NaN case */
interface Gradients {
  dKernel: number[];
  dBias: number[];
}

async function check(c: Case, seed: number): Promise<Gradients | undefined> {
  const rng = new Rng(seed);
  const [h, w, ch] = c.input;
  // values on coarse grids: exact in bfloat16, and every conv sum exact in float32 in any order, so
  // the bfloat16 rounding of the conv output (and each window's winner, ties included) is the
  // reference's; a bias mostly negative blocks more windows
  const kernel = rng.grid(9 * ch * c.filters, 16, -0.5, 0.5);
  const bias = rng.grid(c.filters, 16, -0.25, 0.125);
  const x = rng.grid(BATCH * h * w * ch, 8, -1, 1);
  if (c.nan) for (const i of [0, 5 * ch, x.length >> 1, x.length - 1]) x[i] = Number.NaN;
  const y = Float32Array.from({ length: BATCH }, (_, i) => i % 2);
  const features = block(c, false);
  features.setLayerWeights(0, [kernel, bias]);
  // a small dense kernel keeps the logits small: bfloat16's rounding of them (in whatever order the
  // engine sums) then moves the loss gradient by ~0.1%
  const r = rng.grid(prod(features.layers[2]!.outputShape as number[]), 256, -1 / 32, 1 / 32);
  const expected = reference(c, x, kernel, bias, r, y);
  const what = `${c.dtype} ${c.input} ${c.filters} filters ${c.padding}`;
  assert.ok(expected.blocked > 0 && expected.blocked < expected.out.length, `${what}: the case needs blocked and passing windows`);

  const { output } = await features.predict(x, [BATCH, h, w, ch]);
  const bf = c.dtype === 'mixed_bfloat16';
  const finite = expected.out.filter((v) => !Number.isNaN(v));
  assertClose(output, expected.out, { atol: 1e-6 * maxAbs(finite), rtol: bf ? 2 ** -7 : 1e-5, what: `${what}: forward` });
  if (c.nan) {
    assert.ok(finite.length > 0 && finite.length < expected.out.length, `${what}: the case needs NaN and finite outputs`);
    return undefined;
  }

  const trained = block(c, true);
  trained.setLayerWeights(0, [kernel, bias]);
  trained.setLayerWeights(3, [r, new Float32Array(1)]);
  trained.compile({ optimizer: { sgd: { learningRate: LR } }, loss: 'binaryCrossentropy' });
  await trained.engine.trainStep(x, [BATCH, h, w, ch], y, 0);
  const [k1, b1] = trained.getLayerWeights(0).map((t) => t.data);
  const dKernel = Array.from(kernel, (k, i) => (k - k1![i]!) / LR);
  const dBias = Array.from(bias, (b, i) => (b - b1![i]!) / LR);
  if (bf) {
    // a winner may differ where two conv outputs round to the same bfloat16 in another sum order
    for (const [name, a, e] of [
      ['kernel', dKernel, expected.dKernel],
      ['bias', dBias, expected.dBias],
    ] as const) {
      const err = relativeError(a, e);
      assert.ok(err < 2e-2, `${what}: ${name} gradient relative error ${err} vs float64 is beyond bfloat16's`);
    }
  } else {
    assertClose(dKernel, expected.dKernel, { atol: 1e-5 * maxAbs(expected.dKernel), rtol: 1e-5, what: `${what}: kernel gradient` });
    assertClose(dBias, expected.dBias, { atol: 1e-5 * maxAbs(expected.dBias), rtol: 1e-5, what: `${what}: bias gradient` });
  }
  return { dKernel, dBias };
}

const CASES: Case[] = [
  // odd conv outputs (an uncovered last row and/or column), 20 filters (not a multiple of 16)
  { input: [10, 13, 3], filters: 32, padding: 'valid', dtype: 'float32' },
  { input: [9, 11, 1], filters: 20, padding: 'same', dtype: 'float32' },
  { input: [12, 9, 3], filters: 20, padding: 'same', dtype: 'float32' },
  { input: [7, 8, 1], filters: 32, padding: 'valid', dtype: 'float32' },
  // conv widths that are not a multiple of 16 (the AMX forward's block) or 32 (its gradient's), 40 filters: a partial second 32
  { input: [7, 37, 3], filters: 40, padding: 'valid', dtype: 'float32' },
  { input: [4, 300, 3], filters: 20, padding: 'same', dtype: 'float32' },
  { input: [8, 37, 3], filters: 32, padding: 'same', dtype: 'float32', nan: true },
];

for (const [i, c] of CASES.entries()) {
  test(`float32: ${c.input} input, ${c.filters} filters, ${c.padding}: forward and gradients match float64`, async () => {
    await check(c, 10 + i);
  });
}

for (const [i, c] of CASES.entries()) {
  const mixed: Case = { ...c, dtype: 'mixed_bfloat16' };
  for (const amx of [true, false]) {
    const checks = c.nan ? 'forward (NaN input)' : 'forward and gradients';
    test(`mixed_bfloat16 (AMX ${amx ? 'on' : 'off'}): ${c.input} input, ${c.filters} filters, ${c.padding}: ${checks} within bfloat16 of float64`, {
      skip: amx ? needsAmx : needsBf16,
    }, async () => {
      const got = await withSetting(native().setAmx, amx, () => check(mixed, 20 + i));
      if (!amx || !got) return;
      // the reference's 2e-2 above is the head's bfloat16 rounding (the same with AMX on and off);
      // the grids make both paths' block outputs and winners identical, so their gradients differ
      // only by the order of the float32 sums
      const avx = await withSetting(native().setAmx, false, () => check(mixed, 20 + i));
      for (const key of ['dKernel', 'dBias'] as const) {
        assertClose(got[key], avx![key], { atol: 1e-5 * maxAbs(avx![key]), rtol: 1e-5, what: `${c.input} ${key}: AMX vs AVX-512` });
      }
    });
  }
}

/** Two conv/pool pairs (the first fused, the second 8 channels: today's path), dense sigmoid. */
function smallCnn(dtype: Dtype = 'float32'): Sequential {
  return new Sequential(
    [
      layers.conv2d({ filters: 24, kernelSize: 3, activation: 'relu', inputShape: [21, 20, 3], name: 'c1' }),
      layers.maxPooling2d({ poolSize: 2, name: 'p1' }),
      layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2' }),
      layers.maxPooling2d({ poolSize: 2, name: 'p2' }),
      layers.flatten({ name: 'f' }),
      layers.dense({ units: 1, activation: 'sigmoid', name: 'd' }),
    ],
    { preprocessing: 'scale01', name: 'small', seed: 4, dtype },
  );
}

test('a training step of a small CNN: same loss and weights with the fused first block and with it switched off', async () => {
  const { on: fused, off: today } = await trainStepOnAndOff(
    native().setFirstBlockFusion,
    () => smallCnn(),
    { seed: 7, image: [21, 20, 3], layers: [0, 2, 5] },
    async (m, x, shape, y) => {
      const { result, rows: times } = await withLayerTimes(() => m.engine.trainStep(x, shape, y, 0));
      // the fused block is timed as the conv's forward and backward; the pool's row still counts its calls
      for (const name of ['c1', 'p1']) {
        const row = times.find((t) => t.layer === name);
        assert.ok(row && row.forwardCalls === 1 && row.backwardCalls === 1, `${name} timing row: ${JSON.stringify(row)}`);
      }
      return result;
    },
  );
  assertClose([fused.loss], [today.loss], { atol: 0, rtol: 1e-6, what: 'loss' });
  // the switch does change the path: the fused kernel sums the first kernel's gradient in another
  // order than oneDNN, so some of its float32 bits differ
  assert.ok(
    fused.weights[0]!.some((v, i) => v !== today.weights[0]![i]),
    'the first kernel came out bitwise identical: was the fused path taken?',
  );
  // SGD with learning rate 1: each weight moved by minus its gradient
  for (const [i, w] of fused.weights.entries()) {
    assertClose(w, today.weights[i]!, { atol: 1e-6, rtol: 1e-5, what: `weights ${i}` });
  }
});

test('a mixed_bfloat16 training step of a small CNN: same loss and weights with the first block on AMX tiles and on AVX-512', {
  skip: needsAmx,
}, async () => {
  const { on: tiles, off: avx } = await trainStepOnAndOff(native().setAmx, () => smallCnn('mixed_bfloat16'), {
    seed: 8,
    image: [21, 20, 3],
    layers: [0, 2, 5],
  });
  // AMX sums the first conv's products in another float32 order: a conv output could round to the
  // neighbouring bfloat16 (a relative 2^-8), moving the loss by about that; on this data none does
  // (the weights differ by ~1e-8: the first kernel's gradient summed in another float32 order)
  assertClose([tiles.loss], [avx.loss], { atol: 0, rtol: 2 ** -8, what: 'loss' });
  assert.ok(
    tiles.weights[0]!.some((v, i) => v !== avx.weights[0]![i]),
    'the first kernel came out bitwise identical: was the AMX path taken?',
  );
  for (const [i, w] of tiles.weights.entries()) {
    assertClose(w, avx.weights[i]!, { atol: 1e-6, rtol: 2 ** -8, what: `weights ${i}` });
  }
});

test('setFirstBlockFusion refuses anything but a boolean', () => {
  assert.throws(() => native().setFirstBlockFusion(1 as unknown as boolean), /pass true \(fused first block\) or false/);
});
