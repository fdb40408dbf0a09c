/**
 * The experiment's two models at 300x300 (docs/experiment.md): output shapes per layer, parameter
 * counts, the Keras summary, and the engine's weights agreeing with them. No training at 300x300.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vgg16Layers } from '../lib/applications/vgg16.js';
import { Sequential } from '../lib/models/sequential.js';
import { defaultHeadLayers, experimentCnn } from '../lib/models/zoo.js';
import { Rng } from './helpers/naive.js';

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

test('experiment CNN at 300x300: 298→149→147→73→71→35→33→16→14→7, flatten 6272, 3,367,649 params', async () => {
  const m = experimentCnn([300, 300, 3], { seed: 1 });
  const shapes = m.layers.map((l) => l.outputShape);
  assert.deepEqual(shapes, [
    [298, 298, 32],
    [149, 149, 32],
    [147, 147, 32],
    [73, 73, 32],
    [71, 71, 64],
    [35, 35, 64],
    [33, 33, 64],
    [16, 16, 64],
    [14, 14, 128],
    [7, 7, 128],
    [6272],
    [512],
    [32],
    [1],
  ]);
  const perLayer = m.layers.map((l) => l.weights.reduce((a, w) => a + count(w.shape), 0));
  assert.deepEqual(perLayer, [896, 0, 9248, 0, 18496, 0, 36928, 0, 73856, 0, 0, 3211776, 16416, 33]);
  assert.deepEqual(m.countParams(), { total: 3367649, trainable: 3367649, nonTrainable: 0 });

  const text = m.summary(false);
  assert.match(text, /^Total params: 3,367,649$/m);
  assert.match(text, /^Trainable params: 3,367,649$/m);
  assert.match(text, /^Non-trainable params: 0$/m);
  // Keras columns (widened for long names, never wrapped): every row lines up under the header
  const lines = text.split('\n');
  const header = lines.find((l) => l.includes('Layer (type)'))!;
  const row = lines.find((l) => l.includes('(None, 298, 298, 32)'));
  assert.ok(row, 'a row for the first conv');
  assert.match(row, /conv2d \(Conv2D\)/);
  assert.equal(row.indexOf('(None, 298, 298, 32)'), header.indexOf('Output Shape'));
  assert.equal(row.indexOf('896'), header.indexOf('Param #'));
  const longRow = lines.find((l) => l.includes('max_pooling2d_1 (MaxPooling2D)'))!;
  assert.equal(longRow.indexOf('(None, 73, 73, 32)'), header.indexOf('Output Shape'));
  assert.ok(header.indexOf('Output Shape') >= 29, "at least Keras's first column width");
  assert.ok(text.indexOf('dense_2 (Dense)') > text.indexOf('dense_1 (Dense)'), 'Keras default names, in order');

  // the engine holds exactly those weights, in Keras layout
  const engineCount = m.getWeights().reduce((a, l) => a + l.weights.reduce((b, w) => b + w.data.length, 0), 0);
  assert.equal(engineCount, 3367649);
  assert.deepEqual(
    m.getLayerWeights(11).map((w) => w.shape),
    [[6272, 512], [512]],
  );
  // and runs a 300x300 image (one forward pass, no training) to one probability
  const { output, shape } = await m.predict(new Rng(1).bytes(300 * 300 * 3), [1, 300, 300, 3]);
  assert.deepEqual(shape, [1, 1]);
  assert.ok(output[0] > 0 && output[0] < 1);
});

function transferModel(inputShape: [number, number, number]): Sequential {
  const m = new Sequential([...vgg16Layers(inputShape), ...defaultHeadLayers()], { seed: 2, preprocessing: 'caffe', name: 'transfer' });
  for (const l of m.layers) if (l.config.config.name.startsWith('block')) m.setTrainable(l.config.config.name, false);
  return m;
}

test('VGG16 base (frozen) + head at 300x300: 9x9x512, 17,369,025 params of which 2,654,337 trainable', () => {
  const m = transferModel([300, 300, 3]);
  const names = m.layers.map((l) => l.config.config.name);
  assert.deepEqual(names.slice(0, 18), [
    'block1_conv1',
    'block1_conv2',
    'block1_pool',
    'block2_conv1',
    'block2_conv2',
    'block2_pool',
    'block3_conv1',
    'block3_conv2',
    'block3_conv3',
    'block3_pool',
    'block4_conv1',
    'block4_conv2',
    'block4_conv3',
    'block4_pool',
    'block5_conv1',
    'block5_conv2',
    'block5_conv3',
    'block5_pool',
  ]);
  const pool = m.layers[m.layerIndex('block5_pool')];
  assert.deepEqual(pool.outputShape, [9, 9, 512]);
  assert.deepEqual(
    m.layers.slice(18).map((l) => l.outputShape),
    [[41472], [64], [1]],
  );
  assert.deepEqual(m.countParams(), { total: 17369025, trainable: 2654337, nonTrainable: 14714688 });
  const text = m.summary(false);
  assert.match(text, /^Total params: 17,369,025$/m);
  assert.match(text, /^Trainable params: 2,654,337$/m);
  assert.match(text, /^Non-trainable params: 14,714,688$/m);
  assert.match(text, /block5_pool \(MaxPooling2D\) *\(None, 9, 9, 512\) *0/);
  const engineCount = m.getWeights().reduce((a, l) => a + l.weights.reduce((b, w) => b + w.data.length, 0), 0);
  assert.equal(engineCount, 17369025);
});

test('transfer model: a train step leaves the frozen VGG16 base unchanged and updates the head (at 32x32)', async () => {
  const m = transferModel([32, 32, 3]);
  assert.deepEqual(m.layers[m.layerIndex('block5_pool')].outputShape, [1, 1, 512]);
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  const base = m.getLayerWeights('block5_conv3').map((w) => w.data);
  const first = m.getLayerWeights('block1_conv1').map((w) => w.data);
  const head = m.getLayerWeights(m.layers.length - 1).map((w) => w.data);
  const rng = new Rng(3);
  const r = await m.engine.trainStep(rng.bytes(2 * 32 * 32 * 3), [2, 32, 32, 3], Float32Array.from([0, 1]), 0);
  assert.ok(Number.isFinite(r.loss));
  assert.deepEqual(
    m.getLayerWeights('block5_conv3').map((w) => w.data),
    base,
  );
  assert.deepEqual(
    m.getLayerWeights('block1_conv1').map((w) => w.data),
    first,
  );
  const after = m.getLayerWeights(m.layers.length - 1).map((w) => w.data);
  assert.ok(
    after[0].some((v, i) => v !== head[0][i]),
    'the output layer kernel moved',
  );
  assert.ok(
    after[1].some((v, i) => v !== head[1][i]),
    'the output layer bias moved',
  );
});
