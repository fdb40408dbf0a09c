/**
 * Forward pass of every layer kind against the naive float64 reference (test/helpers/naive.ts),
 * on small seeded random inputs, through the public API: Keras-layout weights in, NHWC out.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LayerConfig } from '../lib/keras-format/config.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import * as naive from './helpers/naive.js';
import { assertClose, prod, Rng, type T, tensor } from './helpers/naive.js';

const TOL = { atol: 1e-5, rtol: 1e-4 };

/** A model of `configs` on float inputs ('none' preprocessing). */
function model(configs: LayerConfig[], seed = 1): Sequential {
  return new Sequential(configs, { seed, preprocessing: 'none', name: 'forward' });
}

async function predict(
  m: Sequential,
  x: T,
  options: { fromLayer?: number; toLayer?: number } = {},
): Promise<{ output: Float32Array; shape: number[] }> {
  return m.predict(Float32Array.from(x.data), x.shape, options);
}

function randomInput(rng: Rng, shape: number[], lo = -1, hi = 1): T {
  return tensor(rng.floats(prod(shape), lo, hi), shape);
}

/** Sets random weights (bias included, so a zero bias cannot hide a mistake); returns them. */
function randomWeights(m: Sequential, layer: number, rng: Rng): Float32Array[] {
  const values = m.layers[layer].weights.map((w) => rng.floats(prod(w.shape), -0.5, 0.5));
  m.setLayerWeights(layer, values);
  return values;
}

// ------------------------------------------------------------------------------------------ conv

interface ConvCase {
  name: string;
  input: [number, number, number];
  filters: number;
  kernel: [number, number];
  strides?: [number, number];
  padding: 'valid' | 'same';
  dilation?: [number, number];
  useBias?: boolean;
  activation?: 'linear' | 'relu' | 'sigmoid' | 'tanh' | 'elu' | 'relu6';
  /** expected output [h, w] (guards the case choice itself) */
  out: [number, number];
  /** a known engine bug this case exposes */
}

const convCases: ConvCase[] = [
  { name: 'valid 3x3 stride 1', input: [7, 6, 3], filters: 4, kernel: [3, 3], padding: 'valid', out: [5, 4] },
  {
    name: 'valid 3x3 stride 2, odd sizes (floor)',
    input: [8, 9, 2],
    filters: 3,
    kernel: [3, 3],
    strides: [2, 2],
    padding: 'valid',
    out: [3, 4],
  },
  { name: 'same 3x3 stride 1 (symmetric pad)', input: [6, 5, 3], filters: 4, kernel: [3, 3], padding: 'same', out: [6, 5] },
  // even kernels with stride 1: total padding is odd, the extra row/column goes bottom/right
  { name: 'same 2x4 stride 1 (asymmetric pad)', input: [5, 6, 2], filters: 3, kernel: [2, 4], padding: 'same', out: [5, 6] },
  // stride 2 on an even size: total padding 1 -> (0, 1); on an odd size: 2 -> (1, 1)
  {
    name: 'same 3x3 stride 2, even height / odd width',
    input: [8, 7, 3],
    filters: 4,
    kernel: [3, 3],
    strides: [2, 2],
    padding: 'same',
    out: [4, 4],
  },
  {
    name: 'same 3x3 stride 2, even sizes (pad only bottom/right)',
    input: [6, 6, 2],
    filters: 2,
    kernel: [3, 3],
    strides: [2, 2],
    padding: 'same',
    out: [3, 3],
  },
  {
    name: 'same 5x5 stride 2, 9x10 (pads 2/2 and 1/2)',
    input: [9, 10, 2],
    filters: 3,
    kernel: [5, 5],
    strides: [2, 2],
    padding: 'same',
    out: [5, 5],
  },
  {
    name: 'same 3x3 strides (2, 1), no bias',
    input: [7, 6, 2],
    filters: 3,
    kernel: [3, 3],
    strides: [2, 1],
    padding: 'same',
    useBias: false,
    out: [4, 6],
  },
  { name: 'valid 3x3 dilation 2', input: [9, 8, 2], filters: 3, kernel: [3, 3], dilation: [2, 2], padding: 'valid', out: [5, 4] },
  { name: 'same 3x3 dilation (2, 3)', input: [7, 8, 2], filters: 3, kernel: [3, 3], dilation: [2, 3], padding: 'same', out: [7, 8] },
  {
    name: 'same 2x2 dilation 2 (asymmetric dilated pad)',
    input: [5, 6, 2],
    filters: 2,
    kernel: [2, 2],
    dilation: [2, 2],
    padding: 'same',
    out: [5, 6],
  },
  { name: 'valid 1x1 with relu', input: [4, 4, 5], filters: 3, kernel: [1, 1], padding: 'valid', activation: 'relu', out: [4, 4] },
  { name: 'same 3x3 with sigmoid', input: [5, 5, 2], filters: 2, kernel: [3, 3], padding: 'same', activation: 'sigmoid', out: [5, 5] },
  { name: 'same 3x3 with tanh', input: [5, 5, 2], filters: 2, kernel: [3, 3], padding: 'same', activation: 'tanh', out: [5, 5] },
  { name: 'same 3x3 with elu', input: [5, 5, 2], filters: 2, kernel: [3, 3], padding: 'same', activation: 'elu', out: [5, 5] },
];

for (const c of convCases) {
  test(`Conv2D ${c.name} matches the naive NHWC/HWIO convolution`, async () => {
    const rng = new Rng(c.name.length * 7919 + c.filters);
    const m = model([
      layers.conv2d({
        filters: c.filters,
        kernelSize: c.kernel,
        strides: c.strides,
        padding: c.padding,
        dilationRate: c.dilation,
        useBias: c.useBias,
        activation: c.activation,
        inputShape: c.input,
      }),
    ]);
    const w = randomWeights(m, 0, rng);
    assert.equal(w.length, c.useBias === false ? 1 : 2);
    const x = randomInput(rng, [3, ...c.input]);
    const { output, shape } = await predict(m, x);
    let expected = naive.conv2d(x, w[0], [c.kernel[0], c.kernel[1], c.input[2], c.filters], w[1], {
      strides: c.strides,
      padding: c.padding,
      dilation: c.dilation,
    });
    expected = naive.activation(expected, c.activation ?? 'linear');
    assert.deepEqual(shape, [3, ...c.out, c.filters]);
    assert.deepEqual(expected.shape, shape);
    assert.deepEqual(m.outputShape, [...c.out, c.filters]);
    assertClose(output, expected.data, { ...TOL, what: c.name });
  });
}

test('Conv2D same padding really is asymmetric: the extra zero row/column is at the bottom/right', async () => {
  // a 2x2 kernel that only looks at the bottom-right tap: output (i, j) = x(i + 1, j + 1) or 0
  const m = model([layers.conv2d({ filters: 1, kernelSize: 2, padding: 'same', useBias: false, inputShape: [3, 3, 1] })]);
  m.setLayerWeights(0, [Float32Array.from([0, 0, 0, 1])]);
  const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const { output } = await m.predict(x, [1, 3, 3, 1]);
  assert.deepEqual(Array.from(output), [5, 6, 0, 8, 9, 0, 0, 0, 0]);
});

test('DepthwiseConv2D (multiplier 1 and 2, same stride 2, valid) matches the naive depthwise convolution', async () => {
  const cases = [
    {
      multiplier: 1,
      strides: [2, 2] as [number, number],
      padding: 'same' as const,
      input: [8, 7, 3] as [number, number, number],
      out: [4, 4],
    },
    {
      multiplier: 2,
      strides: [2, 2] as [number, number],
      padding: 'same' as const,
      input: [6, 8, 3] as [number, number, number],
      out: [3, 4],
    },
    {
      multiplier: 2,
      strides: [1, 1] as [number, number],
      padding: 'valid' as const,
      input: [5, 6, 2] as [number, number, number],
      out: [3, 4],
    },
  ];
  for (const c of cases) {
    const rng = new Rng(100 + c.multiplier * 13 + c.input[0]);
    const m = model([
      layers.depthwiseConv2d({ kernelSize: 3, strides: c.strides, padding: c.padding, depthMultiplier: c.multiplier, inputShape: c.input }),
    ]);
    assert.deepEqual(
      m.layers[0].weights.map((w) => w.shape),
      [[3, 3, c.input[2], c.multiplier], [c.input[2] * c.multiplier]],
    );
    const w = randomWeights(m, 0, rng);
    const x = randomInput(rng, [2, ...c.input]);
    const { output, shape } = await predict(m, x);
    const expected = naive.depthwiseConv2d(x, w[0], [3, 3, c.input[2], c.multiplier], w[1], { strides: c.strides, padding: c.padding });
    assert.deepEqual(shape, [2, ...c.out, c.input[2] * c.multiplier]);
    assert.deepEqual(expected.shape, shape);
    assertClose(output, expected.data, { ...TOL, what: `depthwise x${c.multiplier} ${c.padding}` });
    // the Keras-layout kernel comes back unchanged
    assert.deepEqual(m.getLayerWeights(0)[0].data, w[0]);
  }
});

// ------------------------------------------------------------------------------------------ pooling

const poolCases: {
  mode: 'max' | 'avg';
  pool: [number, number];
  strides: [number, number];
  padding: 'valid' | 'same';
  input: [number, number, number];
  out: [number, number];
}[] = [
  { mode: 'max', pool: [2, 2], strides: [2, 2], padding: 'valid', input: [7, 7, 3], out: [3, 3] },
  { mode: 'max', pool: [3, 3], strides: [2, 2], padding: 'valid', input: [8, 9, 2], out: [3, 4] },
  { mode: 'max', pool: [2, 2], strides: [2, 2], padding: 'same', input: [7, 6, 3], out: [4, 3] },
  { mode: 'max', pool: [3, 3], strides: [2, 2], padding: 'same', input: [8, 7, 2], out: [4, 4] },
  { mode: 'max', pool: [3, 3], strides: [1, 1], padding: 'same', input: [5, 4, 2], out: [5, 4] },
  { mode: 'avg', pool: [2, 2], strides: [2, 2], padding: 'valid', input: [7, 6, 2], out: [3, 3] },
  { mode: 'avg', pool: [3, 3], strides: [1, 1], padding: 'same', input: [5, 6, 2], out: [5, 6] },
  { mode: 'avg', pool: [2, 2], strides: [2, 2], padding: 'same', input: [7, 7, 3], out: [4, 4] },
  { mode: 'avg', pool: [3, 3], strides: [2, 2], padding: 'same', input: [8, 8, 2], out: [4, 4] },
  { mode: 'avg', pool: [2, 3], strides: [1, 2], padding: 'same', input: [5, 7, 2], out: [5, 4] },
];

for (const c of poolCases) {
  const label = `${c.mode === 'max' ? 'MaxPooling2D' : 'AveragePooling2D'} ${c.padding} pool ${c.pool} strides ${c.strides} on ${c.input}`;
  test(`${label} matches naive pooling (padding never counted)`, async () => {
    const rng = new Rng(c.input[0] * 31 + c.input[1] + c.pool[0] * 1000 + (c.mode === 'max' ? 0 : 7));
    const factory = c.mode === 'max' ? layers.maxPooling2d : layers.averagePooling2d;
    const m = model([factory({ poolSize: c.pool, strides: c.strides, padding: c.padding, inputShape: c.input })]);
    // all-negative inputs: a max that lets a padded zero win, or an average that counts padding, shows
    const x = randomInput(rng, [2, ...c.input], -2, -0.5);
    const { output, shape } = await predict(m, x);
    const expected = naive.pool2d(x, c.mode, c.pool, c.strides, c.padding);
    assert.deepEqual(shape, [2, ...c.out, c.input[2]]);
    assert.deepEqual(expected.shape, shape);
    assertClose(output, expected.data, { ...TOL, what: label });
  });
}

test('GlobalAveragePooling2D averages each channel over height and width', async () => {
  const rng = new Rng(5);
  const m = model([layers.globalAveragePooling2d({ inputShape: [4, 5, 3] })]);
  const x = randomInput(rng, [3, 4, 5, 3]);
  const { output, shape } = await predict(m, x);
  assert.deepEqual(shape, [3, 3]);
  assertClose(output, naive.globalAvgPool(x).data, TOL);
});

// ------------------------------------------------------------------------------------------ dense etc.

test('Dense (linear, relu, sigmoid, softmax, no bias) matches x·W + b with W [in, out]', async () => {
  const rng = new Rng(11);
  for (const activation of ['linear', 'relu', 'sigmoid', 'softmax', 'tanh'] as const) {
    for (const useBias of [true, false]) {
      const m = model([layers.reshape({ targetShape: [7], inputShape: [7] }), layers.dense({ units: 5, activation, useBias })]);
      const w = randomWeights(m, 1, rng);
      const x = randomInput(rng, [4, 7], -2, 2);
      const { output, shape } = await predict(m, x);
      assert.deepEqual(shape, [4, 5]);
      const expected = naive.activation(naive.dense(x, w[0], 5, useBias ? w[1] : undefined), activation);
      assertClose(output, expected.data, { ...TOL, what: `dense ${activation} bias=${useBias}` });
      if (activation === 'softmax') {
        for (let r = 0; r < 4; r++) assert.ok(Math.abs(output.slice(r * 5, r * 5 + 5).reduce((a, b) => a + b, 0) - 1) < 1e-5);
      }
    }
  }
});

test('Dense kernel orientation: [in, out] (a non-square hand-set kernel)', async () => {
  const m = model([layers.reshape({ targetShape: [2], inputShape: [2] }), layers.dense({ units: 3 })]);
  // kernel[i][u]: row i = input feature
  m.setLayerWeights(1, [Float32Array.from([1, 2, 3, 10, 20, 30]), Float32Array.from([0.5, 0, -0.5])]);
  const { output } = await m.predict(Float32Array.from([1, 1, 2, 0]), [2, 2]);
  assert.deepEqual(Array.from(output), [11.5, 22, 32.5, 2.5, 4, 5.5]);
});

test('BatchNormalization in inference: (x - mean) / sqrt(var + eps) * gamma + beta', async () => {
  const rng = new Rng(21);
  for (const [center, scale] of [
    [true, true],
    [false, true],
    [true, false],
  ] as const) {
    const eps = 0.01;
    const m = model([layers.batchNormalization({ epsilon: eps, center, scale, inputShape: [3, 4, 3] })]);
    const names = m.layers[0].weights.map((w) => w.name);
    const expectedNames = [...(scale ? ['gamma'] : []), ...(center ? ['beta'] : []), 'moving_mean', 'moving_variance'];
    assert.deepEqual(names, expectedNames);
    const values: Record<string, Float32Array> = {
      gamma: rng.floats(3, 0.5, 2),
      beta: rng.floats(3, -1, 1),
      moving_mean: rng.floats(3, -1, 1),
      moving_variance: rng.floats(3, 0.05, 3),
    };
    m.setLayerWeights(
      0,
      names.map((n) => values[n]),
    );
    const x = randomInput(rng, [2, 3, 4, 3], -3, 3);
    const { output } = await predict(m, x);
    const expected = naive.batchNorm(
      x,
      scale ? values.gamma : [1, 1, 1],
      center ? values.beta : [0, 0, 0],
      values.moving_mean,
      values.moving_variance,
      eps,
    );
    assertClose(output, expected.data, { ...TOL, what: `batchnorm center=${center} scale=${scale}` });
  }
});

test('ZeroPadding2D with asymmetric ((1, 2), (0, 3)) padding', async () => {
  const rng = new Rng(3);
  const m = model([
    layers.zeroPadding2d({
      padding: [
        [1, 2],
        [0, 3],
      ],
      inputShape: [3, 2, 2],
    }),
  ]);
  const x = randomInput(rng, [2, 3, 2, 2]);
  const { output, shape } = await predict(m, x);
  assert.deepEqual(shape, [2, 6, 5, 2]);
  assertClose(output, naive.zeroPad(x, 1, 2, 0, 3).data, { atol: 0, rtol: 1e-6 });
});

test('Flatten is NHWC (height, width, channel): Dense weights after it follow that order', async () => {
  const rng = new Rng(8);
  const m = model([layers.conv2d({ filters: 3, kernelSize: 1, inputShape: [3, 4, 2] }), layers.flatten(), layers.dense({ units: 2 })]);
  // identity-ish 1x1 conv with a distinct bias per channel, so the channel of each flattened value matters
  const conv = randomWeights(m, 0, rng);
  const dense = randomWeights(m, 2, rng);
  const x = randomInput(rng, [2, 3, 4, 2]);
  const flat = await predict(m, x, { toLayer: 2 });
  assert.deepEqual(flat.shape, [2, 36]);
  const convOut = naive.conv2d(x, conv[0], [1, 1, 2, 3], conv[1]);
  assertClose(flat.output, naive.flatten(convOut).data, { ...TOL, what: 'flatten output' });
  const { output } = await predict(m, x);
  const expected = naive.dense(naive.flatten(convOut), dense[0], 2, dense[1]);
  assertClose(output, expected.data, { ...TOL, what: 'dense after flatten' });
});

test('Flatten order, by hand: the Dense weight of feature (h, w, c) is row (h·W + w)·C + c', async () => {
  const m = model([layers.flatten({ inputShape: [2, 2, 2] }), layers.dense({ units: 1, useBias: false })]);
  // only the weight of pixel (h=1, w=0), channel 1 is set: row (1*2 + 0)*2 + 1 = 5
  const kernel = new Float32Array(8);
  kernel[5] = 1;
  m.setLayerWeights(1, [kernel]);
  const x = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]); // NHWC: (h, w, c) -> (h*2 + w)*2 + c
  const { output } = await m.predict(x, [1, 2, 2, 2]);
  assert.deepEqual(Array.from(output), [5]);
});

test('Reshape keeps NHWC element order (to rank 2, to rank 3 feeding a conv, and back)', async () => {
  const rng = new Rng(9);
  const flat = model([layers.reshape({ targetShape: [6, 8], inputShape: [4, 6, 2] })]);
  const x = randomInput(rng, [2, 4, 6, 2]);
  const r1 = await predict(flat, x);
  assert.deepEqual(r1.shape, [2, 6, 8]);
  assert.deepEqual(Array.from(r1.output), Array.from(Float32Array.from(x.data)));

  // Dense -> Reshape [2, 3, 4] -> 1x1 conv: the conv must see element (h, w, c) at (h*3 + w)*4 + c
  const m = model([
    layers.reshape({ targetShape: [5], inputShape: [5] }),
    layers.dense({ units: 24 }),
    layers.reshape({ targetShape: [2, 3, 4] }),
    layers.conv2d({ filters: 2, kernelSize: 1 }),
  ]);
  const d = randomWeights(m, 1, rng);
  const c = randomWeights(m, 3, rng);
  const xin = randomInput(rng, [3, 5]);
  const { output, shape } = await predict(m, xin);
  assert.deepEqual(shape, [3, 2, 3, 2]);
  const dense = naive.dense(xin, d[0], 24, d[1]);
  const expected = naive.conv2d({ data: dense.data, shape: [3, 2, 3, 4] }, c[0], [1, 1, 4, 2], c[1]);
  assertClose(output, expected.data, { ...TOL, what: 'dense -> reshape -> conv' });

  const back = model([layers.reshape({ targetShape: [3, 4, 2], inputShape: [4, 3, 2] }), layers.reshape({ targetShape: [-1] })]);
  const x2 = randomInput(rng, [2, 4, 3, 2]);
  const r3 = await predict(back, x2);
  assert.deepEqual(r3.shape, [2, 24]);
  assert.deepEqual(Array.from(r3.output), Array.from(Float32Array.from(x2.data)));
});

test('Activation elu is x for x > 0, exp(x) - 1 otherwise (Keras alpha 1)', async () => {
  const rng = new Rng(13);
  const m = model([layers.activation({ activation: 'elu', inputShape: [3, 2, 4] })]);
  const x = randomInput(rng, [2, 3, 2, 4], -3, 3);
  const { output } = await predict(m, x);
  assertClose(output, naive.activation(x, 'elu').data, TOL);
});

test('Activation softmax on a 4-D tensor normalises over channels (the last axis)', async () => {
  const rng = new Rng(14);
  const m = model([layers.activation({ activation: 'softmax', inputShape: [3, 2, 4] })]);
  const x = randomInput(rng, [2, 3, 2, 4], -3, 3);
  const { output } = await predict(m, x);
  assertClose(output, naive.activation(x, 'softmax').data, TOL);
});

test('relu6 (ReLU maxValue 6, activation relu6, conv relu6) clips at 0 and 6', async () => {
  const rng = new Rng(15);
  const x = randomInput(rng, [2, 3, 3, 2], -10, 10);
  for (const config of [
    layers.reLU({ maxValue: 6, inputShape: [3, 3, 2] }),
    layers.activation({ activation: 'relu6', inputShape: [3, 3, 2] }),
  ]) {
    const { output } = await predict(model([config]), x);
    assertClose(output, naive.activation(x, 'relu6').data, { atol: 0, rtol: 1e-6 });
    assert.ok(output.some((v) => v === 6) && output.some((v) => v === 0), 'the input reaches both clip points');
  }
  const plain = await predict(model([layers.reLU({ inputShape: [3, 3, 2] })]), x);
  assertClose(plain.output, naive.activation(x, 'relu').data, { atol: 0, rtol: 1e-6 });
  assert.ok(
    plain.output.some((v) => v > 6),
    'ReLU without maxValue does not clip',
  );

  const m = model([layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', activation: 'relu6', inputShape: [3, 3, 2] })]);
  const w = randomWeights(m, 0, rng);
  const { output } = await predict(m, x);
  const expected = naive.activation(naive.conv2d(x, w[0], [3, 3, 2, 2], w[1], { padding: 'same' }), 'relu6');
  assertClose(output, expected.data, { ...TOL, what: 'conv relu6' });
});

test('LeakyReLU uses its alpha (and the Keras default 0.3)', async () => {
  const rng = new Rng(22);
  const x = randomInput(rng, [2, 3, 3, 2], -2, 2);
  for (const [config, alpha] of [
    [{ name: '', alpha: 0.2 }, 0.2],
    [{ name: '' }, 0.3],
  ] as const) {
    const m = model([{ class_name: 'LeakyReLU', config: { ...config, batch_input_shape: [null, 3, 3, 2] } }]);
    const { output } = await predict(m, x);
    assertClose(
      output,
      Array.from(x.data, (v) => (v > 0 ? v : alpha * v)),
      { ...TOL, what: `leaky relu ${alpha}` },
    );
  }
});

test('BatchNormalization on a rank-2 input (after Dense) normalises each unit', async () => {
  const rng = new Rng(23);
  const m = model([layers.batchNormalization({ epsilon: 1e-3, inputShape: [5] })]);
  const w = [rng.floats(5, 0.5, 2), rng.floats(5, -1, 1), rng.floats(5, -1, 1), rng.floats(5, 0.1, 2)];
  m.setLayerWeights(0, w);
  const x = randomInput(rng, [3, 5], -2, 2);
  const { output } = await predict(m, x);
  assertClose(output, naive.batchNorm(x, w[0], w[1], w[2], w[3], 1e-3).data, TOL);
});

test('rank-3 tensors (after Reshape to two dims): softmax and BatchNormalization act on the last axis, as in Keras', async () => {
  const rng = new Rng(24);
  const x = randomInput(rng, [2, 3, 4], -2, 2);
  const soft = model([layers.reshape({ targetShape: [3, 4], inputShape: [12] }), layers.activation({ activation: 'softmax' })]);
  const s = await soft.predict(Float32Array.from(x.data), [2, 12]);
  assert.deepEqual(s.shape, [2, 3, 4]);
  assertClose(s.output, naive.activation(x, 'softmax').data, { ...TOL, what: 'softmax over the last axis' });
  const bn = model([layers.reshape({ targetShape: [3, 4], inputShape: [12] }), layers.batchNormalization({ epsilon: 1e-3 })]);
  const w = [rng.floats(4, 0.5, 2), rng.floats(4, -1, 1), rng.floats(4, -1, 1), rng.floats(4, 0.1, 2)];
  bn.setLayerWeights(1, w);
  const b = await bn.predict(Float32Array.from(x.data), [2, 12]);
  assertClose(b.output, naive.batchNorm(x, w[0], w[1], w[2], w[3], 1e-3).data, { ...TOL, what: 'batchnorm over the last axis' });
});

test('Dropout is the identity at prediction time', async () => {
  const rng = new Rng(16);
  const m = model([layers.dropout({ rate: 0.5, inputShape: [4, 4, 2] })]);
  const x = randomInput(rng, [2, 4, 4, 2]);
  const { output } = await predict(m, x);
  assert.deepEqual(Array.from(output), Array.from(Float32Array.from(x.data)));
});

test('a small stack matches the composed naive ops, and fromLayer / toLayer cut it consistently', async () => {
  const rng = new Rng(17);
  const m = model([
    layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', inputShape: [8, 8, 3] }),
    layers.batchNormalization({ epsilon: 1e-3 }),
    layers.maxPooling2d({ poolSize: 2, padding: 'same' }),
    layers.flatten(),
    layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  const conv = randomWeights(m, 0, rng);
  const bn = [rng.floats(4, 0.5, 1.5), rng.floats(4, -0.5, 0.5), rng.floats(4, -0.2, 0.2), rng.floats(4, 0.5, 2)];
  m.setLayerWeights(1, bn);
  const dense = randomWeights(m, 4, rng);
  const x = randomInput(rng, [2, 8, 8, 3]);
  const a = naive.activation(naive.conv2d(x, conv[0], [3, 3, 3, 4], conv[1], { strides: [2, 2], padding: 'same' }), 'relu');
  const b = naive.batchNorm(a, bn[0], bn[1], bn[2], bn[3], 1e-3);
  const p = naive.pool2d(b, 'max', [2, 2], [2, 2], 'same');
  const out = naive.activation(naive.dense(naive.flatten(p), dense[0], 3, dense[1]), 'softmax');

  const full = await predict(m, x);
  assertClose(full.output, out.data, { ...TOL, what: 'full model' });
  const features = await predict(m, x, { toLayer: 3 });
  assert.deepEqual(features.shape, [2, 2, 2, 4]);
  assertClose(features.output, p.data, { ...TOL, what: 'features (toLayer 3)' });
  const head = await m.predict(features.output, features.shape, { fromLayer: 3 });
  assertClose(head.output, out.data, { ...TOL, what: 'head (fromLayer 3)' });
});

// ------------------------------------------------------------------------------------------ preprocessing

async function preprocessed(mode: 'scale01' | 'tf' | 'caffe' | 'none', x: Uint8Array, shape: number[]): Promise<Float32Array> {
  const m = new Sequential([layers.activation({ activation: 'linear', inputShape: shape.slice(1) })], { seed: 1, preprocessing: mode });
  const { output, shape: outShape } = await m.predict(x, shape);
  assert.deepEqual(outShape, shape);
  return output;
}

test('preprocessing of uint8 pixels: scale01, tf, caffe (BGR + ImageNet mean), none', async () => {
  const rng = new Rng(18);
  const shape = [2, 3, 2, 3];
  const x = rng.bytes(prod(shape));
  x[0] = 0;
  x[1] = 255;
  const n = x.length;
  const scale01 = Array.from(x, (v) => v / 255);
  const tf = Array.from(x, (v) => v / 127.5 - 1);
  const mean = [103.939, 116.779, 123.68]; // B, G, R
  const caffe = new Float64Array(n);
  for (let p = 0; p < n / 3; p++) {
    for (let ch = 0; ch < 3; ch++) caffe[p * 3 + ch] = x[p * 3 + (2 - ch)] - mean[ch];
  }
  assertClose(await preprocessed('scale01', x, shape), scale01, { atol: 1e-6, rtol: 1e-6, what: 'scale01' });
  assertClose(await preprocessed('tf', x, shape), tf, { atol: 1e-6, rtol: 1e-6, what: 'tf' });
  assertClose(await preprocessed('caffe', x, shape), caffe, { atol: 1e-4, rtol: 1e-6, what: 'caffe' });
  assertClose(await preprocessed('none', x, shape), Array.from(x), { atol: 0, rtol: 0, what: 'none' });
});

test('preprocessing feeds the first layer: a conv on scale01 pixels equals the conv on x / 255', async () => {
  const rng = new Rng(19);
  const m = new Sequential([layers.conv2d({ filters: 2, kernelSize: 3, inputShape: [5, 5, 3] })], { seed: 3, preprocessing: 'scale01' });
  const w = randomWeights(m, 0, rng);
  const x = rng.bytes(2 * 5 * 5 * 3);
  const { output } = await m.predict(x, [2, 5, 5, 3]);
  const expected = naive.conv2d(
    tensor(
      Array.from(x, (v) => v / 255),
      [2, 5, 5, 3],
    ),
    w[0],
    [3, 3, 3, 2],
    w[1],
  );
  assertClose(output, expected.data, { ...TOL, what: 'scale01 conv' });
  // fromLayer 1 and up take features as they are, without preprocessing
  const m2 = new Sequential(
    [layers.conv2d({ filters: 1, kernelSize: 1, useBias: false, inputShape: [1, 1, 1] }), layers.activation({ activation: 'linear' })],
    { seed: 3, preprocessing: 'scale01' },
  );
  const r = await m2.predict(Float32Array.from([200]), [1, 1, 1, 1], { fromLayer: 1 });
  assert.deepEqual(Array.from(r.output), [200]);
});
