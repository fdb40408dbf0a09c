/**
 * Convolutions without a bias (Keras `useBias: false`: MobileNet's, ResNet's) train on every path
 * the engine's own autograd functions take: libtorch 1.13's custom Function::apply throws on an
 * undefined tensor, so each passes an empty one for "no bias" (src/layers.h functionBias). Each
 * case trains one SGD step of a model without bias and of its twin with a zero bias: the first
 * step's kernel gradient does not depend on a zero bias, so the kernels and losses must agree.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../lib/engine/native.js';
import type { LayerConfig } from '../lib/keras-format/config.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { needsAmx, needsBf16, needsDnnl } from './helpers/engine-settings.js';
import { assertClose, prod, Rng } from './helpers/naive.js';

type Dtype = 'float32' | 'mixed_bfloat16';

interface Case {
  name: string;
  channels: number;
  /** conv (the one without bias), then these */
  after: LayerConfig[];
  dtype: Dtype;
  skip: false | string;
  /** an engine counter (info()) the path advances, where it has one */
  counter?: 'dnnlCalls' | 'blockedStretches';
}

const CASES: Case[] = [
  { name: "float32 Winograd training (oneDNN's)", channels: 16, after: [], dtype: 'float32', skip: needsDnnl, counter: 'dnnlCalls' },
  {
    name: 'float32 blocked stretch, conv + pool + conv',
    channels: 16,
    after: [
      layers.maxPooling2d({ poolSize: 2, name: 'p' }),
      layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', useBias: false, name: 'c2' }),
    ],
    dtype: 'float32',
    skip: needsDnnl,
    counter: 'blockedStretches',
  },
  {
    name: 'float32 fused first block',
    channels: 3,
    after: [layers.maxPooling2d({ poolSize: 2, name: 'p' })],
    dtype: 'float32',
    skip: false,
  },
  { name: 'mixed_bfloat16 few-channel convolution', channels: 3, after: [], dtype: 'mixed_bfloat16', skip: needsBf16 },
  {
    name: 'mixed_bfloat16 fused first block',
    channels: 3,
    after: [layers.maxPooling2d({ poolSize: 2, name: 'p' })],
    dtype: 'mixed_bfloat16',
    skip: needsBf16,
  },
  { name: 'mixed_bfloat16 weight gradient on AMX tiles', channels: 16, after: [], dtype: 'mixed_bfloat16', skip: needsAmx },
];

const SIZE = 8;
const BATCH = 4;

function model(c: Case, useBias: boolean): Sequential {
  return new Sequential(
    [
      layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', useBias, name: 'c' }),
      ...c.after,
      layers.flatten({ name: 'f' }),
      layers.dense({ units: 1, activation: 'sigmoid', name: 'd' }),
    ],
    { inputShape: [SIZE, SIZE, c.channels], preprocessing: 'none', dtype: c.dtype, seed: 3 },
  );
}

for (const c of CASES) {
  test(`a convolution without bias trains: ${c.name}, the kernels of its zero-bias twin after one step`, { skip: c.skip }, async () => {
    const rng = new Rng(31);
    const shape = [BATCH, SIZE, SIZE, c.channels];
    const x = rng.floats(prod(shape), -1, 1);
    const y = Float32Array.from([0, 1, 1, 0]);
    const kernel = rng.floats(3 * 3 * c.channels * 16, -0.3, 0.3);
    const second = rng.floats(3 * 3 * 16 * 16, -0.1, 0.1);
    const step = async (useBias: boolean) => {
      const m = model(c, useBias);
      m.setLayerWeights('c', useBias ? [kernel, new Float32Array(16)] : [kernel]);
      if (c.after.length > 1) m.setLayerWeights('c2', [second]);
      m.compile({ optimizer: { sgd: { learningRate: 0.5 } }, loss: 'binaryCrossentropy' });
      const { loss } = await m.engine.trainStep(x, shape, y, 0);
      return { loss, kernel: m.getLayerWeights('c')[0]!.data, count: m.getLayerWeights('c').length };
    };
    const count = () => (c.counter ? native().info()[c.counter] : 0);
    const before = count();
    const without = await step(false);
    if (c.counter) assert.ok(count() > before, `the path ran (${c.counter})`);
    const twin = await step(true);
    assert.equal(without.count, 1, 'no bias weight');
    assert.ok(Number.isFinite(without.loss));
    assertClose([without.loss], [twin.loss], { atol: 0, rtol: 1e-6, what: 'loss' });
    assert.ok(
      without.kernel.some((v, i) => v !== kernel[i]),
      'the kernel moved',
    );
    assertClose(without.kernel, twin.kernel, { atol: 1e-7, rtol: 1e-6, what: 'kernel after one step' });
  });
}
