import type * as tfcore from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readKerasH5Weights } from '../lib/io/keras-h5.js';
import { readTfjsLayersModel, type TfjsModelToWrite, writeTfjsLayersModel } from '../lib/io/tfjs-model.js';
import type { LayerConfig, LayerWeights } from '../lib/keras-format/config.js';
import type { TfjsModelJson } from '../lib/keras-format/tfjs-format.js';
import { fixtureValues, vgg16NoTopLayers, writeKeras2H5 } from './helpers/h5-fixtures.js';
import { mobilenetModelJson, needsMobilenet } from './helpers/paths.js';
import { writeTinyBackbone } from './helpers/tiny-backbone.js';

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'transferlab-io-tfjs-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const parameterCount = (weights: LayerWeights[]) => weights.reduce((sum, l) => sum + l.weights.reduce((s, w) => s + w.data.length, 0), 0);

// ---- a generated MobileNet-like backbone (written by the test as plain JSON + shards) ----

/** The group's shards concatenated as little-endian float32: the manifest read without lib/io. */
async function manifestValues(modelJson: string): Promise<Map<string, Float32Array>> {
  const json = JSON.parse(await readFile(modelJson, 'utf8')) as TfjsModelJson;
  const values = new Map<string, Float32Array>();
  for (const group of json.weightsManifest) {
    const bytes = Buffer.concat(await Promise.all(group.paths.map((p) => readFile(path.join(path.dirname(modelJson), p)))));
    let offset = 0;
    for (const spec of group.weights) {
      const count = spec.shape.reduce((a, b) => a * b, 1);
      values.set(
        spec.name,
        Float32Array.from({ length: count }, (_, i) => bytes.readFloatLE(offset + 4 * i)),
      );
      offset += 4 * count;
    }
  }
  return values;
}

test('reads a MobileNet-like functional chain: layer classes, order, shapes and exact weight values', async () => {
  await withTempDir(async (dir) => {
    const tiny = await writeTinyBackbone(dir, { seed: 3, inputSize: 40, shardBytes: 1024 });
    const model = await readTfjsLayersModel(tiny.modelJson);
    assert.equal(model.format, 'layers-model');
    assert.equal(model.sourceClass, 'Model');
    assert.equal(model.name, 'tiny_mobilenet');
    assert.deepEqual(model.inputShape, [40, 40, 3]);
    assert.deepEqual(
      model.layers.map((l) => l.config.name),
      tiny.layerNames,
      'InputLayer dropped, chain order kept',
    );
    const classes = new Set(model.layers.map((l) => l.class_name));
    for (const c of [
      'ZeroPadding2D',
      'Conv2D',
      'DepthwiseConv2D',
      'BatchNormalization',
      'ReLU',
      'Activation',
      'LeakyReLU',
      'MaxPooling2D',
      'AveragePooling2D',
      'GlobalAveragePooling2D',
      'Reshape',
      'Dropout',
    ]) {
      assert.ok(classes.has(c), `has a ${c} layer`);
    }
    // by hand: stem conv 3x3x3x16; three depthwise/pointwise pairs (16->24->32->32), each conv with a
    // 4-vector BatchNormalization; conv_4 3x3x32x32 + bias; conv_preds 1x1x32x10 + bias
    const bn = (c: number) => 4 * c;
    const expected =
      27 * 16 +
      bn(16) +
      (9 * 16 + bn(16) + 16 * 24 + bn(24)) +
      (9 * 24 + bn(24) + 24 * 32 + bn(32)) +
      (9 * 32 + bn(32) + 32 * 32 + bn(32)) +
      (9 * 32 * 32 + 32) +
      (32 * 10 + 10);
    assert.equal(parameterCount(model.weights), expected);

    const shapes = new Map(model.weights.flatMap((l) => l.weights.map((w) => [w.name, w.shape] as const)));
    assert.deepEqual(shapes.get('conv1/kernel'), [3, 3, 3, 16]); // Conv2D [kh, kw, in, out], no bias
    assert.equal(shapes.has('conv1/bias'), false);
    assert.deepEqual(shapes.get('conv_dw_2/depthwise_kernel'), [3, 3, 24, 1]); // DepthwiseConv2D [kh, kw, channels, 1]
    assert.deepEqual(shapes.get('conv_4/bias'), [32]);
    const bnLayer = model.weights.find((l) => l.layerName === 'conv1_bn')!;
    assert.deepEqual(
      bnLayer.weights.map((w) => w.name),
      ['conv1_bn/gamma', 'conv1_bn/beta', 'conv1_bn/moving_mean', 'conv1_bn/moving_variance'],
    );
    const order = model.layers.map((l) => l.config.name);
    const positions = model.weights.map((l) => order.indexOf(l.layerName));
    assert.deepEqual(
      positions,
      [...positions].sort((a, b) => a - b),
      'weights in layer order',
    );

    // values equal the shards read by hand (conv_4's kernel spans several 1 KiB shards)
    const json = JSON.parse(await readFile(tiny.modelJson, 'utf8')) as TfjsModelJson;
    assert.ok(
      json.weightsManifest.some((g) => g.paths.length > 1),
      'some group spans several shards',
    );
    const raw = await manifestValues(tiny.modelJson);
    const read = model.weights.flatMap((l) => l.weights);
    assert.deepEqual(read.map((w) => w.name).sort(), [...raw.keys()].sort());
    for (const w of read) assert.deepEqual(w.data, raw.get(w.name), w.name);
  });
});

test('a truncated shard is an error naming the shard and both sizes', async () => {
  await withTempDir(async (dir) => {
    const { modelJson } = await writeTinyBackbone(dir, { seed: 1 });
    const shard = path.join(dir, 'group5-shard1of1');
    const size = (await stat(shard)).size;
    await truncate(shard, size - 4);
    await assert.rejects(readTfjsLayersModel(modelJson), (error: Error) => {
      assert.ok(error.message.includes(`shard "group5-shard1of1" has ${size - 4} bytes, the manifest needs ${size}`), error.message);
      return true;
    });
  });
});

// ---- the real MobileNet (optional large asset, read in place) ----

test('reads the real MobileNet v1 0.75: linear functional chain, 2,601,976 parameters', { skip: needsMobilenet }, async () => {
  const modelJson = mobilenetModelJson!;
  const raw = JSON.parse(await readFile(modelJson, 'utf8')) as { modelTopology: { model_config: { config: { layers: unknown[] } } } };
  assert.equal(raw.modelTopology.model_config.config.layers.length, 88, 'functional config incl. InputLayer');

  const model = await readTfjsLayersModel(modelJson);
  assert.equal(model.format, 'layers-model');
  assert.equal(model.sourceClass, 'Model');
  assert.equal(model.layers.length, 87, 'InputLayer dropped');
  assert.ok(model.layers.every((l) => l.class_name !== 'InputLayer'));
  assert.deepEqual(model.inputShape, [224, 224, 3]);
  assert.equal(model.layers[0]!.config.name, 'conv1');
  assert.equal(model.layers.at(-1)!.config.name, 'reshape_2');
  assert.ok(model.layers.some((l) => l.config.name === 'conv_pw_13_relu'));
  assert.equal(parameterCount(model.weights), 2_601_976);

  const shapes = new Map(model.weights.flatMap((l) => l.weights.map((w) => [w.name, w.shape] as const)));
  assert.deepEqual(shapes.get('conv1/kernel'), [3, 3, 3, 24]);
  assert.deepEqual(shapes.get('conv_dw_1/depthwise_kernel'), [3, 3, 24, 1]);
  assert.deepEqual(shapes.get('conv_pw_13/kernel'), [1, 1, 768, 768]);
  assert.deepEqual(shapes.get('conv_preds/kernel'), [1, 1, 768, 1000]);
});

// ---- hand-written topologies ----

function functionalLayer(name: string, className: string, inputs: string[], config: Record<string, unknown> = {}) {
  return {
    class_name: className,
    name,
    config: { name, ...config },
    inbound_nodes: inputs.length ? [inputs.map((i) => [i, 0, 0, {}])] : [],
  };
}

async function writeModelJson(dir: string, modelTopology: unknown, weightsManifest: unknown = []): Promise<string> {
  const file = path.join(dir, 'model.json');
  await writeFile(file, JSON.stringify({ modelTopology, weightsManifest }));
  return file;
}

test('a functional model with a merge is rejected as not a linear chain', async () => {
  await withTempDir(async (dir) => {
    const layers = [
      functionalLayer('input_1', 'InputLayer', [], { batch_input_shape: [null, 8] }),
      functionalLayer('a', 'Dense', ['input_1'], { units: 4 }),
      functionalLayer('b', 'Dense', ['input_1'], { units: 4 }),
      functionalLayer('add', 'Add', ['a', 'b']),
    ];
    const file = await writeModelJson(dir, { model_config: { class_name: 'Model', config: { name: 'branchy', layers } } });
    await assert.rejects(
      readTfjsLayersModel(file),
      /model\.json: model "branchy" is not a linear chain \(layer add has 2 inputs\): not supported yet/,
    );
  });
});

test('a functional model whose layer feeds two layers is rejected too', async () => {
  await withTempDir(async (dir) => {
    const layers = [
      functionalLayer('input_1', 'InputLayer', [], { batch_input_shape: [null, 8] }),
      functionalLayer('a', 'Dense', ['input_1']),
      functionalLayer('b', 'Dense', ['a']),
      functionalLayer('c', 'Dense', ['a']),
    ];
    const file = await writeModelJson(dir, { class_name: 'Functional', config: { name: 'fork', layers } });
    await assert.rejects(readTfjsLayersModel(file), /model "fork" is not a linear chain \(layer a feeds 2 layers: b, c\)/);
  });
});

test('a functional chain listed out of order is returned in execution order', async () => {
  await withTempDir(async (dir) => {
    const layers = [
      functionalLayer('second', 'Dense', ['first'], { units: 2 }),
      functionalLayer('input_1', 'InputLayer', [], { batch_input_shape: [null, 3] }),
      functionalLayer('first', 'Dense', ['input_1'], { units: 4 }),
    ];
    const file = await writeModelJson(dir, { class_name: 'Model', config: { name: 'm', layers } });
    const model = await readTfjsLayersModel(file);
    assert.deepEqual(
      model.layers.map((l) => l.config.name),
      ['first', 'second'],
    );
    assert.deepEqual(model.inputShape, [3]);
    assert.deepEqual(Object.keys(model.layers[0]!), ['class_name', 'config'], 'graph fields dropped');
  });
});

test('a Sequential config that starts with an InputLayer takes the input shape from it', async () => {
  await withTempDir(async (dir) => {
    const layers = [
      { class_name: 'InputLayer', config: { name: 'input', batch_input_shape: [null, 5, 5, 1] } },
      { class_name: 'Flatten', config: { name: 'flatten' } },
    ];
    const model = await readTfjsLayersModel(await writeModelJson(dir, { class_name: 'Sequential', config: { name: 's', layers } }));
    assert.deepEqual(
      model.layers.map((l) => l.config.name),
      ['flatten'],
    );
    assert.deepEqual(model.inputShape, [5, 5, 1]);
  });
});

test('quantized or non-float32 weights, unknown owners and escaping shard paths are clear errors', async () => {
  await withTempDir(async (dir) => {
    const topology = {
      class_name: 'Sequential',
      config: { name: 's', layers: [{ class_name: 'Dense', config: { name: 'd', units: 1, batch_input_shape: [null, 2] } }] },
    };
    await writeFile(path.join(dir, 'w.bin'), Buffer.alloc(12));
    const manifest = (weights: unknown[], paths = ['w.bin']) => [{ paths, weights }];
    const cases: [unknown, RegExp][] = [
      [
        manifest([{ name: 'd/kernel', shape: [2, 1], dtype: 'float32', quantization: { dtype: 'uint8', min: 0, scale: 1 } }]),
        /weight "d\/kernel" is quantized \(uint8\); only float32/,
      ],
      [manifest([{ name: 'd/kernel', shape: [2, 1], dtype: 'int32' }]), /weight "d\/kernel" has dtype int32; only float32/],
      [
        manifest([
          { name: 'd/kernel', shape: [2, 1], dtype: 'float32' },
          { name: 'other/bias', shape: [1], dtype: 'float32' },
        ]),
        /1 weights belong to no layer of the model: other\/bias \[1\]/,
      ],
      [
        manifest([{ name: 'd/kernel', shape: [3], dtype: 'float32' }], ['../w.bin']),
        /shard path "\.\.\/w\.bin" points outside the model folder/,
      ],
    ];
    for (const [weightsManifest, pattern] of cases) {
      await assert.rejects(readTfjsLayersModel(await writeModelJson(dir, topology, weightsManifest)), pattern);
    }
  });
});

// ---- writing ----

function smallModel(): TfjsModelToWrite {
  const layers: LayerConfig[] = [
    {
      class_name: 'Conv2D',
      config: {
        name: 'conv1',
        trainable: true,
        filters: 4,
        kernel_size: [3, 3],
        strides: [1, 1],
        padding: 'valid',
        data_format: 'channels_last',
        dilation_rate: [1, 1],
        activation: 'relu',
        use_bias: true,
      },
    },
    {
      class_name: 'MaxPooling2D',
      config: { name: 'pool1', trainable: true, pool_size: [2, 2], strides: [2, 2], padding: 'valid', data_format: 'channels_last' },
    },
    { class_name: 'Flatten', config: { name: 'flatten', trainable: true, data_format: 'channels_last' } },
    { class_name: 'Dense', config: { name: 'dense1', trainable: true, units: 5, activation: 'relu', use_bias: true } },
    { class_name: 'Dense', config: { name: 'out', trainable: true, units: 1, activation: 'sigmoid', use_bias: true } },
  ];
  const tensor = (layer: string, short: string, shape: number[], seed: number) => ({
    name: `${layer}/${short}`,
    shape,
    data: fixtureValues(
      seed,
      shape.reduce((a, b) => a * b, 1),
    ),
  });
  const weights: LayerWeights[] = [
    { layerName: 'conv1', weights: [tensor('conv1', 'kernel', [3, 3, 3, 4], 1), tensor('conv1', 'bias', [4], 2)] },
    { layerName: 'dense1', weights: [tensor('dense1', 'kernel', [16, 5], 3), tensor('dense1', 'bias', [5], 4)] },
    { layerName: 'out', weights: [tensor('out', 'kernel', [5, 1], 5), tensor('out', 'bias', [1], 6)] },
  ];
  return { name: 'small_cnn', layers, inputShape: [6, 6, 3], weights };
}

test('write then read round-trips layers, input shape and exact values across many shards', async () => {
  await withTempDir(async (dir) => {
    const model = smallModel();
    // 203 floats = 812 bytes in 100-byte shards: 9 shards, with tensors straddling shard ends.
    const written = await writeTfjsLayersModel(dir, model, { shardBytes: 100 });
    assert.equal(written.shardPaths.length, 9);
    assert.deepEqual(
      (await readdir(dir)).sort(),
      ['model.json', ...Array.from({ length: 9 }, (_, i) => `group1-shard${i + 1}of9.bin`)].sort(),
      'no temporary files left',
    );
    assert.equal((await stat(written.shardPaths[8]!)).size, 812 - 8 * 100);

    const json = JSON.parse(await readFile(written.modelJsonPath, 'utf8')) as TfjsModelJson;
    assert.equal(json.format, 'layers-model');
    assert.equal(typeof json.generatedBy, 'string');
    assert.equal(typeof json.convertedBy, 'string');
    const topology = json.modelTopology as {
      class_name: string;
      config: { name: string; layers: LayerConfig[] };
      backend: string;
      keras_version: string;
    };
    assert.equal(topology.class_name, 'Sequential');
    assert.equal(topology.backend, 'tensorflow');
    assert.equal(topology.config.name, 'small_cnn');
    assert.deepEqual(topology.config.layers[0]!.config.batch_input_shape, [null, 6, 6, 3]);
    assert.equal(json.weightsManifest.length, 1);
    assert.deepEqual(
      json.weightsManifest[0]!.weights.map((w) => `${w.name}:${w.dtype}`),
      [
        'conv1/kernel:float32',
        'conv1/bias:float32',
        'dense1/kernel:float32',
        'dense1/bias:float32',
        'out/kernel:float32',
        'out/bias:float32',
      ],
    );
    assert.equal(model.layers[0]!.config.batch_input_shape, undefined, "the caller's layers are not modified");

    const back = await readTfjsLayersModel(written.modelJsonPath);
    assert.equal(back.name, 'small_cnn');
    assert.deepEqual(back.inputShape, [6, 6, 3]);
    assert.deepEqual(back.layers.slice(1), model.layers.slice(1));
    assert.deepEqual(back.layers[0]!.config, { ...model.layers[0]!.config, batch_input_shape: [null, 6, 6, 3] });
    assert.deepEqual(back.weights, model.weights);
  });
});

test('rewriting a model in place removes shards the new model does not use', async () => {
  await withTempDir(async (dir) => {
    await writeTfjsLayersModel(dir, smallModel(), { shardBytes: 100 });
    const second = smallModel();
    second.weights[0]!.weights[1]!.data = new Float32Array([9, 8, 7, 6]);
    await writeTfjsLayersModel(dir, second, { shardBytes: 400 });
    assert.deepEqual((await readdir(dir)).sort(), ['group1-shard1of3.bin', 'group1-shard2of3.bin', 'group1-shard3of3.bin', 'model.json']);
    const back = await readTfjsLayersModel(path.join(dir, 'model.json'));
    assert.deepEqual(back.weights, second.weights);
  });
});

test('writing refuses weights that do not fit the model, naming the layer', async () => {
  await withTempDir(async (dir) => {
    const unknown = smallModel();
    unknown.weights.push({ layerName: 'missing', weights: [] });
    await assert.rejects(writeTfjsLayersModel(dir, unknown), /weights given for layer "missing", which the model does not have/);
    const short = smallModel();
    short.weights[1]!.weights[0]!.data = new Float32Array(3);
    await assert.rejects(
      writeTfjsLayersModel(dir, short),
      /layer "dense1" weight "dense1\/kernel": shape \[16, 5\] needs 80 values, the data has 3/,
    );
    assert.deepEqual(await readdir(dir), [], 'nothing written');
  });
});

test('Keras HDF5 weights (official names) export under TF.js names and read back unchanged', async () => {
  await withTempDir(async (dir) => {
    const h5 = path.join(dir, 'vgg.h5');
    const fixture = vgg16NoTopLayers({ channelDivisor: 32, includeInputLayer: false });
    await writeKeras2H5(h5, fixture);
    const weights = (await readKerasH5Weights(h5)).filter((l) => l.weights.length > 0);
    const layers: LayerConfig[] = fixture.map((l) => ({ class_name: l.className, config: { name: l.layerName } }));
    const out = path.join(dir, 'export');
    await writeTfjsLayersModel(out, { name: 'vgg16', layers, inputShape: [32, 32, 3], weights }, { shardBytes: 4096 });
    const back = await readTfjsLayersModel(path.join(out, 'model.json'));
    assert.deepEqual(
      back.weights.map((l) => l.weights.map((w) => w.name)),
      weights.map((l) => [`${l.layerName}/kernel`, `${l.layerName}/bias`]),
    );
    back.weights.forEach((layer, i) => layer.weights.forEach((w, j) => assert.deepEqual(w.data, weights[i]!.weights[j]!.data)));
  });
});

// ---- TF.js itself (dev dependency): the exported format is what tf.loadLayersModel reads ----

test('tf.loadLayersModel accepts what writeTfjsLayersModel writes', async () => {
  await withTempDir(async (dir) => {
    const model = smallModel();
    const { modelJsonPath } = await writeTfjsLayersModel(dir, model, { shardBytes: 100 });
    const json = JSON.parse(await readFile(modelJsonPath, 'utf8')) as TfjsModelJson;
    const shards = await Promise.all(json.weightsManifest[0]!.paths.map((p) => readFile(path.join(dir, p))));
    const weightData = new Uint8Array(Buffer.concat(shards)).buffer;
    // Pure-JS TF.js has no file:// handler; hand it the same artifacts a file loader would.
    const loaded = await tf.loadLayersModel({
      load: async () => ({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0]!.weights as tfcore.io.WeightsManifestEntry[],
        weightData,
        format: json.format,
      }),
    });
    const values = loaded.getWeights().map((w) => Array.from(w.dataSync()));
    assert.deepEqual(
      values,
      model.weights.flatMap((l) => l.weights.map((w) => Array.from(w.data))),
    );
  });
});
