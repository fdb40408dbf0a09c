/**
 * The public applications API: VGG16 as Keras builds it, TF.js bases, preprocess_input, and the
 * transfer model (frozen base + head) that fit trains.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultHeadLayers, fromTfjs, OptionError, preprocessInput, transferModel, vgg16 } from '../lib/index.js';
import { ArrayDataset, Rng } from './helpers/naive.js';
import { sharedTinyBackbone, TINY_FEATURE_CHANNELS, TINY_OUTPUT_LAYER } from './helpers/tiny-backbone.js';
import { smallHead } from './helpers/transfer-helpers.js';

test('vgg16 at 300x300 with a Flatten-Dense64-Dense1 head: 17,369,025 parameters, 2,654,337 trainable (Keras summary)', async () => {
  const base = await vgg16({ includeTop: false, weights: null, inputShape: [300, 300, 3] });
  assert.equal(base.name, 'vgg16');
  assert.equal(base.outputLayer, 'block5_pool');
  assert.equal(base.nativePreprocessing, 'caffe');
  assert.equal(base.layers.length, 18, '13 convs and 5 pools, without the InputLayer');
  const model = transferModel({ base, head: defaultHeadLayers(), trainableBase: false });
  assert.equal(model.baseLayers, 18);
  assert.deepEqual(model.inputShape, [300, 300, 3]);
  assert.deepEqual(model.layers[model.baseLayers - 1]!.outputShape, [9, 9, 512]);
  // Keras: VGG16 base 14,714,688; Flatten 41,472 -> Dense 64: 41,472*64+64 = 2,654,272; Dense 1: 65
  assert.deepEqual(model.countParams(), { total: 17_369_025, trainable: 2_654_337, nonTrainable: 14_714_688 });
  const unfrozen = transferModel({ base, head: defaultHeadLayers(), trainableBase: true });
  assert.equal(unfrozen.countParams().trainable, 17_369_025);
});

test('vgg16 refuses includeTop: true and names what to do', async () => {
  await assert.rejects(vgg16({ includeTop: true as unknown as false, weights: null }), /includeTop: false/);
});

test('fromTfjs on a generated MobileNet-style model: cut at outputLayer, its weights, tf preprocessing', async () => {
  const tiny = await sharedTinyBackbone();
  const base = await fromTfjs(tiny.modelJson, { outputLayer: TINY_OUTPUT_LAYER, inputShape: [32, 32, 3] });
  assert.equal(base.outputLayer, TINY_OUTPUT_LAYER);
  assert.equal(base.layers.at(-1)!.config.name, TINY_OUTPUT_LAYER);
  assert.equal(base.nativePreprocessing, 'tf');
  assert.ok(base.weights.length > 0);
  const model = transferModel({ base, head: smallHead(4), seed: 3 });
  assert.deepEqual(model.layers[model.baseLayers - 1]!.outputShape, [4, 4, TINY_FEATURE_CHANNELS]);
  assert.equal(model.preprocessing, 'tf');
  // the model holds the file's weights exactly
  const first = base.weights[0]!;
  assert.deepEqual(model.getLayerWeights(first.layerName)[0]!.data, first.weights[0]!.data);
  // the library names its own option when the cut is missing; front ends put their flag there
  await assert.rejects(fromTfjs(tiny.modelJson), (error: Error) => {
    assert.ok(error instanceof OptionError && error.option === 'outputLayer', error.message);
    assert.match(error.message, /with `outputLayer`, e\.g\./);
    assert.match(error.messageFor('--backbone-output'), /with --backbone-output, e\.g\./);
    return true;
  });
});

test('transferModel trains the head only: base weights unchanged after a step, head weights changed', async () => {
  const tiny = await sharedTinyBackbone();
  const base = await fromTfjs(tiny.modelJson, { outputLayer: TINY_OUTPUT_LAYER, inputShape: [32, 32, 3] });
  const model = transferModel({ base, head: smallHead(4), seed: 5 });
  model.compile({ optimizer: { adam: { learningRate: 0.01 } }, loss: 'binaryCrossentropy' });
  const rng = new Rng(9);
  const n = 8;
  const x = Uint8Array.from({ length: n * 32 * 32 * 3 }, () => Math.floor(rng.next() * 256));
  const y = Float32Array.from({ length: n }, (_, i) => i % 2);
  const before = model.getWeights();
  await model.fit(new ArrayDataset(x, [32, 32, 3], y, n), { epochs: 1, verbose: 0 });
  const after = new Map(model.getWeights().map((l) => [l.layerName, l]));
  const baseNames = new Set(base.layers.map((l) => l.config.name));
  let headChanged = 0;
  for (const layer of before) {
    const now = after.get(layer.layerName)!;
    layer.weights.forEach((w, k) => {
      const same = w.data.every((v, i) => v === now.weights[k]!.data[i]);
      if (baseNames.has(layer.layerName)) assert.ok(same, `frozen base weight ${w.name} is unchanged`);
      else if (!same) headChanged++;
    });
  }
  assert.ok(
    before.some((l) => baseNames.has(l.layerName)),
    'the base has weights to check',
  );
  assert.equal(headChanged, 4, 'both Dense layers of the head (kernels and biases) moved');
});

test('preprocessInput matches hand-computed caffe, tf and scale01 values', () => {
  const rgb = Uint8Array.from([10, 20, 30, 255, 0, 128]);
  // caffe: BGR order minus the ImageNet mean (103.939, 116.779, 123.68)
  const caffe = [30 - 103.939, 20 - 116.779, 10 - 123.68, 128 - 103.939, 0 - 116.779, 255 - 123.68];
  const tf = [10 / 127.5 - 1, 20 / 127.5 - 1, 30 / 127.5 - 1, 1, -1, 128 / 127.5 - 1];
  const scale01 = [10 / 255, 20 / 255, 30 / 255, 1, 0, 128 / 255];
  const close = (actual: Float32Array, expected: number[], what: string) =>
    expected.forEach((e, i) => assert.ok(Math.abs(actual[i]! - e) < 1e-4, `${what}[${i}]: ${actual[i]} vs ${e}`));
  close(preprocessInput(rgb, 'caffe'), caffe, 'caffe');
  close(preprocessInput(rgb, 'tf'), tf, 'tf');
  close(preprocessInput(rgb, 'scale01'), scale01, 'scale01');
  assert.deepEqual([...preprocessInput(rgb, 'none')], [10, 20, 30, 255, 0, 128]);
  assert.throws(() => preprocessInput(Uint8Array.from([1, 2]), 'tf'), /multiple of 3/);
});
