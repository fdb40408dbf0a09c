import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import h5wasm from 'h5wasm/node';
import { float16ToNumber, floatsFromBytes } from '../lib/io/float-bytes.js';
import { h5Module } from '../lib/io/h5.js';
import { readKerasH5, readKerasH5Weights } from '../lib/io/keras-h5.js';
import { matchWeights } from '../lib/io/weight-matching.js';
import type { LayerWeights } from '../lib/keras-format/config.js';
import { keras3LayerKeys } from '../lib/keras-format/weight-names.js';
import {
  type FixtureLayer,
  type Keras2Naming,
  VGG16_CONVS_PER_BLOCK,
  VGG16_FILTERS,
  vgg16NoTopLayers,
  writeKeras2H5,
  writeKeras3WeightsH5,
} from './helpers/h5-fixtures.js';

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'transferlab-io-h5-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Same layers, names, shapes and bit-identical values, in the same order. */
function assertSameWeights(actual: LayerWeights[], expected: FixtureLayer[]): void {
  assert.deepEqual(
    actual.map((l) => l.layerName),
    expected.map((l) => l.layerName),
  );
  actual.forEach((layer, i) => {
    const want = expected[i]!;
    assert.equal(layer.weights.length, want.weights.length, `weights of ${layer.layerName}`);
    layer.weights.forEach((weight, j) => {
      assert.equal(weight.name, want.weights[j]!.name);
      assert.deepEqual(weight.shape, want.weights[j]!.shape);
      assert.ok(weight.data instanceof Float32Array, `${weight.name} is a Float32Array`);
      assert.deepEqual(weight.data, want.weights[j]!.data, `values of ${weight.name}`);
    });
  });
}

for (const naming of ['official', 'tf-keras2', 'keras3-legacy'] as Keras2Naming[]) {
  test(`Keras 2 layout with ${naming} weight names round-trips exactly`, async () => {
    await withTempDir(async (dir) => {
      const layers = vgg16NoTopLayers({ channelDivisor: 16, naming });
      const file = path.join(dir, 'vgg16.h5');
      await writeKeras2H5(file, layers);
      const { layout, layers: read } = await readKerasH5(file);
      assert.equal(layout, 'keras2');
      assertSameWeights(read, layers);
      // The input and pooling layers are listed with no weights, as in the official file.
      assert.equal(read[0]!.layerName, 'input_1');
      assert.deepEqual(read.find((l) => l.layerName === 'block1_pool')!.weights, []);
    });
  });
}

test('split layer_names0..N and variable-length string attributes are read in order', async () => {
  await withTempDir(async (dir) => {
    const layers = vgg16NoTopLayers({ channelDivisor: 32, naming: 'tf-keras2' });
    const file = path.join(dir, 'split.h5');
    await writeKeras2H5(file, layers, { layerNameChunks: 4, strings: 'vlen' });
    assertSameWeights(await readKerasH5Weights(file), layers);
  });
});

test('full-model files keep the weights under model_weights', async () => {
  await withTempDir(async (dir) => {
    const layers = vgg16NoTopLayers({ channelDivisor: 32 });
    const file = path.join(dir, 'model.h5');
    await writeKeras2H5(file, layers, { fullModel: true, layerNameChunks: 2 });
    const { layout, layers: read } = await readKerasH5(file);
    assert.equal(layout, 'keras2-full-model');
    assertSameWeights(read, layers);
  });
});

test('float64 weights come back as the same float32 values', async () => {
  await withTempDir(async (dir) => {
    const layers = vgg16NoTopLayers({ channelDivisor: 32 });
    const file = path.join(dir, 'f64.h5');
    await writeKeras2H5(file, layers, { dtype: 'float64' });
    assertSameWeights(await readKerasH5Weights(file), layers);
  });
});

test('integer weights are a clear error naming the file, layer and weight', async () => {
  await withTempDir(async (dir) => {
    const file = path.join(dir, 'int.h5');
    await writeKeras2H5(file, vgg16NoTopLayers({ channelDivisor: 32 }), { dtype: 'int32' });
    await assert.rejects(readKerasH5Weights(file), (error: Error) => {
      assert.match(error.message, /int\.h5: layer "block1_conv1" weight "block1_conv1_W_1:0": unsupported dtype <i/);
      return true;
    });
  });
});

test('Keras 3 .weights.h5 is read by store key and matches a model through keras3LayerKeys', async () => {
  await withTempDir(async (dir) => {
    const layers = vgg16NoTopLayers({ channelDivisor: 16, includeInputLayer: true });
    const file = path.join(dir, 'vgg16.weights.h5');
    const keys = await writeKeras3WeightsH5(file, layers);
    const { layout, layers: read } = await readKerasH5(file);
    assert.equal(layout, 'keras3');
    // conv2d_10 must follow conv2d_9, not conv2d_1 (HDF5 lists names alphabetically).
    const convKeys = read.filter((l) => l.layerName.startsWith('conv2d')).map((l) => l.layerName);
    assert.deepEqual(convKeys, ['conv2d', ...Array.from({ length: 12 }, (_, i) => `conv2d_${i + 1}`)]);

    // A model maps its layers to store keys; matching then restores the model's own order.
    const modelKeys = keras3LayerKeys(layers.map((l) => ({ class_name: l.className })));
    assert.deepEqual(modelKeys, keys);
    const expected = layers.map((l, i) => ({ layerName: modelKeys[i]!, shapes: l.weights.map((w) => w.shape) }));
    const matched = matchWeights(expected, read, { source: file });
    matched.forEach((layer, i) => {
      layers[i]!.weights.forEach((w, j) => {
        assert.equal(layer.weights[j]!.name, `${modelKeys[i]}/vars/${j}`);
        assert.deepEqual(layer.weights[j]!.data, w.data, `${layers[i]!.layerName} weight ${j}`);
      });
    });
  });
});

test('official VGG16 no-top layout at full size matches the model shapes (14,714,688 parameters)', async () => {
  await withTempDir(async (dir) => {
    const layers = vgg16NoTopLayers({ naming: 'official' });
    const file = path.join(dir, 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5');
    await writeKeras2H5(file, layers);
    // Expected shapes derived from the architecture alone (docs/experiment.md: filters 64/128/256/512/512).
    const expected: { layerName: string; shapes: number[][] }[] = [{ layerName: 'input_1', shapes: [] }];
    let channels = 3;
    VGG16_FILTERS.forEach((filters, block) => {
      for (let conv = 1; conv <= VGG16_CONVS_PER_BLOCK[block]!; conv++) {
        expected.push({ layerName: `block${block + 1}_conv${conv}`, shapes: [[3, 3, channels, filters], [filters]] });
        channels = filters;
      }
      expected.push({ layerName: `block${block + 1}_pool`, shapes: [] });
    });
    const matched = matchWeights(expected, await readKerasH5Weights(file), { source: file });
    const parameters = matched.reduce((sum, l) => sum + l.weights.reduce((s, w) => s + w.data.length, 0), 0);
    assert.equal(parameters, 14_714_688);
    const last = matched.find((l) => l.layerName === 'block5_conv3')!.weights[0]!;
    assert.deepEqual(last.data, layers.find((l) => l.layerName === 'block5_conv3')!.weights[0]!.data);
  });
});

test('a weight listed in weight_names without its dataset is an error naming both', async () => {
  await withTempDir(async (dir) => {
    const file = path.join(dir, 'broken.h5');
    await h5Module();
    const h5 = new h5wasm.File(file, 'w');
    h5.create_attribute('layer_names', ['dense'], [1], 'A5');
    h5.create_group('dense').create_attribute('weight_names', ['dense/kernel:0'], [1], 'A14');
    h5.close();
    await assert.rejects(
      readKerasH5Weights(file),
      /broken\.h5: layer "dense" weight "dense\/kernel:0": listed in weight_names but no dataset/,
    );
  });
});

test('missing files, non-HDF5 files and HDF5 files that are not Keras weights are clear errors', async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(readKerasH5Weights(path.join(dir, 'absent.h5')), /absent\.h5: cannot open weights file \(ENOENT\)/);
    const text = path.join(dir, 'text.h5');
    await writeFile(text, 'not hdf5');
    await assert.rejects(readKerasH5Weights(text), /text\.h5: not an HDF5 file/);
    const other = path.join(dir, 'other.h5');
    await h5Module();
    const h5 = new h5wasm.File(other, 'w');
    h5.create_group('entry');
    h5.close();
    await assert.rejects(readKerasH5Weights(other), /other\.h5: not a Keras weights file .*top-level entries: entry/);
  });
});

test('float16 and big-endian bytes decode to the right float32 values', () => {
  assert.equal(float16ToNumber(0x3c00), 1);
  assert.equal(float16ToNumber(0xc000), -2);
  assert.equal(float16ToNumber(0x7bff), 65504);
  assert.equal(float16ToNumber(0x0001), 2 ** -24);
  assert.equal(float16ToNumber(0x7c00), Infinity);
  assert.ok(Number.isNaN(float16ToNumber(0x7e00)));
  const half = new Uint8Array([0x00, 0x3e, 0x00, 0xc0]); // 1.5, -2 little-endian
  assert.deepEqual(floatsFromBytes(half, 2, true, 2), new Float32Array([1.5, -2]));
  const bigEndian = new Uint8Array(8);
  new DataView(bigEndian.buffer).setFloat64(0, -0.15625, false);
  assert.deepEqual(floatsFromBytes(bigEndian, 8, false, 1), new Float32Array([-0.15625]));
});
