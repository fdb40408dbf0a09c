/**
 * mixed_bfloat16 training convolutions through oneDNN directly (src/dnnl-conv-train.cc): bfloat16
 * forward, backward data and backward weights, the weight and bias gradients in float32.
 *
 * Two stacked Conv2D layers under a Dense head, one SGD step with learning rate 1 (each weight
 * moves by minus its gradient): the loss checks the forward outputs, the second conv's kernel and
 * bias gradients check its backward weights (they read the first conv's output), and the first
 * conv's gradients check the second conv's input gradient (backward data). All against float64
 * with input, kernels, biases and each layer's output rounded to bfloat16, as autocast computes;
 * the gradients flow in bfloat16, hence the tolerance. The same with the path off
 * (native().setDnnlConv(false): libtorch's conv2d), and a small CNN trained a few steps on and off.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../lib/engine/native.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { needsBf16, withSetting } from './helpers/engine-settings.js';
import * as naive from './helpers/naive.js';
import { type ConvOptions, prod, Rng, relativeError, type T, tensor } from './helpers/naive.js';

const skip = native().info().dnnl ? needsBf16 : 'the engine was built without oneDNN headers (apt-get install libdnnl-dev, rebuild)';

/** relative L2 error of bfloat16 computations (8 significant bits) vs float64 */
const TOLERANCE = 2e-2;

interface Conv extends ConvOptions {
  filters: number;
  activation: 'relu' | 'linear';
}

interface Case {
  name: string;
  batch: number;
  input: [number, number, number];
  convs: [Conv, Conv];
}

const CASES: Case[] = [
  {
    name: '16 -> 32 same relu, 32 -> 16 valid',
    batch: 3,
    input: [9, 11, 16],
    convs: [
      { filters: 32, padding: 'same', activation: 'relu' },
      { filters: 16, padding: 'valid', activation: 'linear' },
    ],
  },
  {
    name: '32 -> 64 valid, 64 -> 32 same strides 2 (asymmetric padding) relu',
    batch: 2,
    input: [8, 7, 32],
    convs: [
      { filters: 64, padding: 'valid', activation: 'linear' },
      { filters: 32, padding: 'same', strides: [2, 2], activation: 'relu' },
    ],
  },
  {
    name: '64 -> 64 same dilated 2 relu, 64 -> 16 valid',
    batch: 2,
    input: [7, 6, 64],
    convs: [
      { filters: 64, padding: 'same', dilation: [2, 2], activation: 'relu' },
      { filters: 16, padding: 'valid', activation: 'linear' },
    ],
  },
];

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** `v` rounded to bfloat16, nearest even (as libtorch's and oneDNN's casts) */
function bf16(v: number): number {
  f32[0] = v;
  const u = u32[0];
  u32[0] = (u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000;
  return f32[0];
}
const round = (values: ArrayLike<number>): Float64Array => Float64Array.from(values, bf16);
const roundT = (t: T): T => ({ data: round(t.data), shape: t.shape });

/** Conv2D's kernel, bias and input gradients for the output gradient `g` (NHWC, HWIO kernel), float64 */
function convBackward(x: T, kernel: ArrayLike<number>, kshape: [number, number, number, number], g: T, o: ConvOptions) {
  const [n, h, w, c] = x.shape;
  const [kh, kw, , co] = kshape;
  const [sh, sw] = o.strides ?? [1, 1];
  const [dh, dw] = o.dilation ?? [1, 1];
  const py = naive.tfPadding(h, kh, sh, dh, o.padding ?? 'valid');
  const px = naive.tfPadding(w, kw, sw, dw, o.padding ?? 'valid');
  const dKernel = new Float64Array(prod(kshape));
  const dBias = new Float64Array(co);
  const dx = new Float64Array(x.data.length);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < py.out; oy++)
      for (let ox = 0; ox < px.out; ox++)
        for (let f = 0; f < co; f++) {
          const gv = g.data[((b * py.out + oy) * px.out + ox) * co + f];
          dBias[f] += gv;
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * sh - py.before + ky * dh;
            if (iy < 0 || iy >= h) continue;
            for (let kx = 0; kx < kw; kx++) {
              const ix = ox * sw - px.before + kx * dw;
              if (ix < 0 || ix >= w) continue;
              for (let ch = 0; ch < c; ch++) {
                const xi = ((b * h + iy) * w + ix) * c + ch;
                const ki = ((ky * kw + kx) * c + ch) * co + f;
                dKernel[ki] += x.data[xi] * gv;
                dx[xi] += kernel[ki] * gv;
              }
            }
          }
        }
  return { dKernel, dBias, dx };
}

function model(c: Case, seed: number): Sequential {
  return new Sequential(
    [
      ...c.convs.map((conv, i) =>
        layers.conv2d({
          filters: conv.filters,
          kernelSize: 3,
          strides: conv.strides,
          dilationRate: conv.dilation,
          padding: conv.padding,
          activation: conv.activation,
          name: `conv${i}`,
          ...(i === 0 ? { inputShape: c.input } : {}),
        }),
      ),
      layers.flatten(),
      layers.dense({ units: 1, activation: 'sigmoid', name: 'head' }),
    ],
    { seed, preprocessing: 'none', dtype: 'mixed_bfloat16' },
  );
}

/** The float64 loss and gradients of the convs' kernels and biases (conv0, then conv1), bfloat16 rounding as autocast */
function reference(c: Case, x: Float32Array, y: Float32Array, w: Float64Array[]) {
  const kshapes: [number, number, number, number][] = [];
  let channels = c.input[2];
  for (const conv of c.convs) {
    kshapes.push([3, 3, channels, conv.filters]);
    channels = conv.filters;
  }
  const input = roundT(tensor(x, [c.batch, ...c.input]));
  const h0 = roundT(naive.activation(naive.conv2d(input, round(w[0]), kshapes[0], round(w[1]), c.convs[0]), c.convs[0].activation));
  const h1 = roundT(naive.activation(naive.conv2d(h0, round(w[2]), kshapes[1], round(w[3]), c.convs[1]), c.convs[1].activation));
  const units = h1.data.length / c.batch;
  const logits = roundT(naive.dense(naive.flatten(h1), round(w[4]), 1, round(w[5]))).data;
  const loss = naive.bceFromLogits(logits, y);
  // d loss / d h1 through the mean binary cross-entropy and the Dense kernel, in bfloat16 (the Dense's backward)
  const g1 = new Float64Array(h1.data.length);
  for (let b = 0; b < c.batch; b++) {
    const dz = bf16((naive.sigmoid(logits[b]) - y[b]) / c.batch);
    for (let i = 0; i < units; i++) g1[b * units + i] = bf16(dz * bf16(w[4][i]));
  }
  const masked = (g: Float64Array, h: T, act: Conv['activation']) => (act === 'relu' ? g.map((v, i) => (h.data[i] > 0 ? v : 0)) : g);
  const back1 = convBackward(h0, round(w[2]), kshapes[1], { data: masked(g1, h1, c.convs[1].activation), shape: h1.shape }, c.convs[1]);
  const back0 = convBackward(
    input,
    round(w[0]),
    kshapes[0],
    { data: masked(back1.dx, h0, c.convs[0].activation), shape: h0.shape },
    c.convs[0],
  );
  return { loss, gradients: [back0.dKernel, back0.dBias, back1.dKernel, back1.dBias] };
}

/** One SGD step (learning rate 1) of case `c`'s model: the loss, the convs' gradients, and how many convolutions oneDNN ran */
async function engineStep(c: Case, dnnl: boolean, x: Float32Array, y: Float32Array, seed: number) {
  const m = model(c, seed);
  const rng = new Rng(seed);
  // random biases, so the forward's bias and the bias gradient both count; on bfloat16's grid, as
  // libtorch's conv2d rounds them and this path adds them in float32: a ReLU input near zero would
  // otherwise change sign between the two
  for (const name of ['conv0', 'conv1']) {
    const [kernel, bias] = m.getLayerWeights(name);
    m.setLayerWeights(name, [kernel.data, rng.floats(bias.data.length, -0.3, 0.3).map(bf16)]);
  }
  const before = ['conv0', 'conv1', 'head'].flatMap((name) => m.getLayerWeights(name).map((t) => Float64Array.from(t.data)));
  m.compile({ optimizer: { sgd: { learningRate: 1 } }, loss: 'binaryCrossentropy' });
  const calls = native().info().dnnlCalls;
  const out = await withSetting(native().setDnnlConv, dnnl, () => m.engine.trainStep(x, [c.batch, ...c.input], y, 0));
  const dnnlCalls = native().info().dnnlCalls - calls;
  const after = ['conv0', 'conv1'].flatMap((name) => m.getLayerWeights(name).map((t) => t.data));
  const gradients = after.map((a, i) => Float64Array.from(a, (v, j) => before[i][j] - v));
  return { loss: out.loss, gradients, before, dnnlCalls };
}

const NAMES = ['conv0 kernel', 'conv0 bias', 'conv1 kernel', 'conv1 bias'];

for (const [i, c] of CASES.entries()) {
  test(`mixed_bfloat16 conv training through oneDNN, ${c.name}: loss and gradients within bfloat16 of float64, and of libtorch's conv2d`, {
    skip,
    timeout: 120_000,
  }, async () => {
    const rng = new Rng(100 + i);
    const x = rng.floats(c.batch * prod(c.input), -1, 1);
    const y = Float32Array.from({ length: c.batch }, (_, b) => b % 2);
    const on = await engineStep(c, true, x, y, 7 + i);
    assert.ok(on.dnnlCalls >= 2, `both convolutions ran through oneDNN (${on.dnnlCalls} calls)`);
    const ref = reference(c, x, y, on.before);
    assert.ok(Math.abs(on.loss - ref.loss) <= TOLERANCE * ref.loss, `loss ${on.loss} vs float64 ${ref.loss}`);
    for (const [k, name] of NAMES.entries()) {
      const err = relativeError(on.gradients[k], ref.gradients[k]);
      assert.ok(err < TOLERANCE, `${name} gradient: relative error ${err} vs float64 is beyond bfloat16's`);
    }

    const off = await engineStep(c, false, x, y, 7 + i);
    assert.equal(off.dnnlCalls, 0, 'setDnnlConv(false): libtorch ran the convolutions');
    assert.ok(Math.abs(on.loss - off.loss) <= TOLERANCE * off.loss, `loss ${on.loss} vs libtorch's ${off.loss}`);
    for (const [k, name] of NAMES.entries()) {
      const err = relativeError(on.gradients[k], off.gradients[k]);
      assert.ok(err < TOLERANCE, `${name} gradient: relative difference ${err} to libtorch's`);
    }
  });
}

test('a small mixed_bfloat16 CNN trains alike with the oneDNN path on and off', { skip, timeout: 120_000 }, async () => {
  const input: [number, number, number] = [20, 18, 3];
  const batch = 4;
  const rng = new Rng(3);
  const batches = Array.from({ length: 3 }, () => rng.floats(batch * prod(input), 0, 1));
  const y = Float32Array.from({ length: batch }, (_, b) => (b * 7) % 2);
  const train = async (dnnl: boolean) => {
    const m = new Sequential(
      [
        layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu', inputShape: input }),
        layers.maxPooling2d(),
        layers.conv2d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu' }),
        layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu' }),
        layers.maxPooling2d(),
        layers.flatten(),
        layers.dense({ units: 1, activation: 'sigmoid' }),
      ],
      { seed: 21, preprocessing: 'none', dtype: 'mixed_bfloat16' },
    );
    m.compile({ optimizer: { sgd: { learningRate: 0.05 } }, loss: 'binaryCrossentropy' });
    const start = m.layers.map((_, l) => m.getLayerWeights(l).map((t) => Float64Array.from(t.data)));
    const calls = native().info().dnnlCalls;
    const losses: number[] = [];
    let moved: Float64Array[] = [];
    await withSetting(native().setDnnlConv, dnnl, async () => {
      for (const x of batches) {
        losses.push((await m.engine.trainStep(x, [batch, ...input], y, 0)).loss);
        // the first step's update of every weight (minus its gradient, times the learning rate):
        // later steps start from weights that differ by it, and bfloat16's rounding then flips
        // ReLU and max-pool decisions that amplify it beyond bfloat16's precision
        if (moved.length === 0)
          moved = m.layers.flatMap((_, l) => m.getLayerWeights(l).map((t, k) => Float64Array.from(t.data, (v, j) => v - start[l][k][j])));
      }
    });
    return { losses, moved, dnnlCalls: native().info().dnnlCalls - calls };
  };
  const on = await train(true);
  const off = await train(false);
  assert.ok(on.dnnlCalls >= 2 * batches.length, `the 16- and 32-channel convolutions ran through oneDNN (${on.dnnlCalls} calls)`);
  assert.equal(off.dnnlCalls, 0);
  for (const [s, loss] of on.losses.entries()) {
    assert.ok(Math.abs(loss - off.losses[s]) <= TOLERANCE * off.losses[s], `step ${s}: loss ${loss} on, ${off.losses[s]} off`);
  }
  for (const [k, moved] of on.moved.entries()) {
    const err = relativeError(moved, off.moved[k]);
    assert.ok(err < TOLERANCE, `weight ${k}: its first update differs by ${err} (relative) with the path on and off`);
  }
});
