/**
 * VGG16 as a pretrained base: the official Keras no-top HDF5 layout (and tf.keras naming) at full
 * VGG16 shapes lands in the model exactly; wrong shapes and missing files are clear errors.
 */

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { MissingWeightsError, vgg16 } from '../lib/applications/vgg16.js';
import { formatShape } from '../lib/keras-format/shape.js';
import { Sequential } from '../lib/models/sequential.js';
import { type FixtureLayer, fixtureValues, vgg16NoTopLayers, writeKeras2H5 } from './helpers/h5-fixtures.js';
import { withTempDir } from './helpers/transfer-helpers.js';

const INPUT: [number, number, number] = [64, 64, 3];

function fixtureWeight(layers: FixtureLayer[], layer: string, index: number): Float32Array {
  return layers.find((l) => l.layerName === layer)!.weights[index]!.data;
}

/** Builds the base from the backbone and checks a few exact values against the file's. */
async function assertLoadsExactly(weightsPath: string, fixture: FixtureLayer[]): Promise<void> {
  const backbone = await vgg16({ inputShape: INPUT, weights: weightsPath });
  assert.equal(backbone.name, 'vgg16');
  assert.equal(backbone.outputLayer, 'block5_pool');
  assert.equal(backbone.weights.length, 13, 'thirteen conv layers with weights');
  const model = new Sequential(backbone.layers, { inputShape: INPUT, preprocessing: 'caffe', seed: 1 });
  model.setWeights(backbone.weights);
  assert.deepEqual(model.outputShape, [2, 2, 512]);

  const [kernel1, bias1] = model.getLayerWeights('block1_conv1');
  assert.deepEqual(kernel1!.shape, [3, 3, 3, 64]);
  const wantKernel1 = fixtureWeight(fixture, 'block1_conv1', 0);
  assert.deepEqual(
    Array.from(kernel1!.data.subarray(0, 16)),
    Array.from(wantKernel1.subarray(0, 16)),
    'first values of block1_conv1 kernel',
  );
  assert.equal(kernel1!.data[1000], wantKernel1[1000]);
  assert.equal(kernel1!.data.at(-1), wantKernel1.at(-1));
  assert.deepEqual(kernel1!.data, wantKernel1, 'whole block1_conv1 kernel, bit for bit (HWIO order kept)');
  assert.deepEqual(bias1!.data, fixtureWeight(fixture, 'block1_conv1', 1));

  const [kernel53, bias53] = model.getLayerWeights('block5_conv3');
  assert.deepEqual(bias53!.shape, [512]);
  const wantBias53 = fixtureWeight(fixture, 'block5_conv3', 1);
  assert.deepEqual(Array.from(bias53!.data.subarray(0, 8)), Array.from(wantBias53.subarray(0, 8)), 'first values of block5_conv3 bias');
  assert.deepEqual(bias53!.data, wantBias53);
  const wantKernel53 = fixtureWeight(fixture, 'block5_conv3', 0);
  for (const i of [0, 1, 12345, 512 * 512 * 4 + 7, wantKernel53.length - 1])
    assert.equal(kernel53!.data[i], wantKernel53[i], `block5_conv3 kernel[${i}]`);
}

test('VGG16 loads the official no-top file layout (full shapes, old weight names) exactly', { timeout: 600_000 }, async () => {
  await withTempDir('vgg16-official', async (dir) => {
    const fixture = vgg16NoTopLayers({ naming: 'official' });
    assert.equal(fixture[1]!.weights[0]!.name, 'block1_conv1_W_1:0', 'fixture uses the official names');
    const file = path.join(dir, 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5');
    await writeKeras2H5(file, fixture);
    await assertLoadsExactly(file, fixture);
  });
});

test('VGG16 weights saved by tf.keras (block1_conv1/kernel:0 names) load too', { timeout: 600_000 }, async () => {
  await withTempDir('vgg16-tfkeras', async (dir) => {
    const fixture = vgg16NoTopLayers({ naming: 'tf-keras2', includeInputLayer: false });
    assert.equal(fixture[0]!.weights[0]!.name, 'block1_conv1/kernel:0');
    const file = path.join(dir, 'vgg16_tfkeras.h5');
    await writeKeras2H5(file, fixture, { strings: 'vlen' });
    await assertLoadsExactly(file, fixture);
  });
});

test('a VGG16 file with one wrongly shaped weight is an error naming the layer and both shapes', { timeout: 600_000 }, async () => {
  await withTempDir('vgg16-wrong', async (dir) => {
    const fixture = vgg16NoTopLayers({ naming: 'official' });
    const layer = fixture.find((l) => l.layerName === 'block3_conv2')!;
    const wrong = [3, 3, 256, 128];
    layer.weights[0] = { name: layer.weights[0]!.name, shape: wrong, data: fixtureValues(99, 3 * 3 * 256 * 128) };
    // keep the next layer consistent with the file, so exactly one problem is reported
    const file = path.join(dir, 'vgg16_bad.h5');
    await writeKeras2H5(file, fixture);
    await assert.rejects(vgg16({ inputShape: INPUT, weights: file }), (error: Error) => {
      assert.match(error.message, /block3_conv2/, 'names the layer');
      assert.ok(error.message.includes(formatShape(wrong)), `names the file's shape ${formatShape(wrong)}: ${error.message}`);
      assert.ok(error.message.includes(formatShape([3, 3, 256, 256])), `names the expected shape: ${error.message}`);
      assert.ok(error.message.includes(file), 'names the file');
      assert.doesNotMatch(error.message, /block3_conv1|block3_conv3/, 'only the wrong layer is blamed');
      return true;
    });
  });
});

test('missing VGG16 weights offline: the error says where they are looked for and how to get them', async () => {
  await withTempDir('vgg16-missing', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    await mkdir(cacheDir);
    // ~/.keras/models is also searched: point HOME at the empty temp folder for this call.
    const savedHome = process.env.HOME;
    process.env.HOME = dir;
    try {
      await assert.rejects(vgg16({ inputShape: INPUT, cacheDir }), (error: Error) => {
        assert.ok(error instanceof MissingWeightsError, `a MissingWeightsError: ${error.message}`);
        assert.ok(error.message.includes('download: true') && error.message.includes('as weights'), error.message);
        assert.ok(!error.message.includes('--'), `names no CLI flag: ${error.message}`);
        assert.ok(error.message.includes(path.join(cacheDir, 'downloads')), `says where the file is looked for: ${error.message}`);
        return true;
      });
      // and with download explicitly off
      await assert.rejects(vgg16({ inputShape: INPUT, cacheDir, download: false }), MissingWeightsError);
    } finally {
      if (savedHome === undefined) delete process.env.HOME;
      else process.env.HOME = savedHome;
    }
  });
});
