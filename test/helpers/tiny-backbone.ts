/**
 * A small pretrained-backbone stand-in: a TF.js layers model (model.json + raw float32 shards)
 * shaped like a Keras-Applications MobileNet converted by tensorflowjs_converter (Keras 2
 * functional `Model`, linear chain, one weight group per layer), with seeded weights.
 *
 * It is written here as plain JSON and bytes, not with lib/io's writer, so that it is an
 * independent fixture for the reader and the engine. It has the layer classes of real backbones
 * (Conv2D without bias, DepthwiseConv2D, BatchNormalization with non-trivial statistics, ReLU6 as
 * both `Activation('relu6')` and `ReLU(max_value=6)`, LeakyReLU, ZeroPadding2D before a stride-2
 * 'valid' conv, a stride-2 'same' conv, max and average pooling) and a classifier top, so that
 * cutting at `conv_pw_3_relu` (the MobileNet-style feature layer) leaves layers out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rng } from './naive.js';

export interface TinyBackboneOptions {
  seed?: number;
  /** the stored input size (square); the loader may override it. Default 32, the smallest the top allows. */
  inputSize?: number;
  /** weight shard size in bytes; large groups span several shards, as the converter writes them. */
  shardBytes?: number;
}

export interface TinyBackbone {
  modelJson: string;
  /** the layer to take features from (the MobileNet-style `conv_pw_N_relu`). */
  outputLayer: string;
  /** every layer after the InputLayer, in order. */
  layerNames: string[];
  /** number of float32 weights in the whole model. */
  parameterCount: number;
  /** ImageNet-style classes of the top. */
  classes: number;
}

export const TINY_OUTPUT_LAYER = 'conv_pw_3_relu';
/** Channels of `conv_pw_3_relu`; its spatial size is input / 8. */
export const TINY_FEATURE_CHANNELS = 32;
const CLASSES = 10;

interface Layer {
  className: string;
  config: Record<string, unknown>;
  /** Keras weight names and shapes, in the order the converter lists them. */
  weights: Array<{ name: string; shape: number[] }>;
}

const conv = (
  name: string,
  filters: number,
  kernel: number,
  strides: number,
  padding: string,
  inChannels: number,
  useBias: boolean,
): Layer => ({
  className: 'Conv2D',
  config: {
    name,
    trainable: true,
    filters,
    kernel_size: [kernel, kernel],
    strides: [strides, strides],
    padding,
    data_format: 'channels_last',
    dilation_rate: [1, 1],
    activation: 'linear',
    use_bias: useBias,
    kernel_initializer: { class_name: 'VarianceScaling', config: { distribution: 'uniform', scale: 1, seed: null, mode: 'fan_avg' } },
    bias_initializer: { class_name: 'Zeros', config: {} },
    kernel_regularizer: null,
    bias_regularizer: null,
    activity_regularizer: null,
    kernel_constraint: null,
    bias_constraint: null,
  },
  weights: [{ name: 'kernel', shape: [kernel, kernel, inChannels, filters] }, ...(useBias ? [{ name: 'bias', shape: [filters] }] : [])],
});

const depthwise = (name: string, strides: number, padding: string, channels: number): Layer => ({
  className: 'DepthwiseConv2D',
  config: {
    name,
    trainable: true,
    kernel_size: [3, 3],
    strides: [strides, strides],
    padding,
    depth_multiplier: 1,
    data_format: 'channels_last',
    dilation_rate: [1, 1],
    activation: 'linear',
    use_bias: false,
    depthwise_initializer: { class_name: 'VarianceScaling', config: { distribution: 'uniform', scale: 1, seed: null, mode: 'fan_avg' } },
    bias_initializer: { class_name: 'Zeros', config: {} },
    depthwise_regularizer: null,
    bias_regularizer: null,
    activity_regularizer: null,
    depthwise_constraint: null,
    bias_constraint: null,
  },
  weights: [{ name: 'depthwise_kernel', shape: [3, 3, channels, 1] }],
});

const batchNorm = (name: string, channels: number): Layer => ({
  className: 'BatchNormalization',
  config: {
    name,
    trainable: true,
    axis: -1,
    momentum: 0.99,
    epsilon: 0.001,
    center: true,
    scale: true,
    beta_initializer: { class_name: 'Zeros', config: {} },
    gamma_initializer: { class_name: 'Ones', config: {} },
    moving_mean_initializer: { class_name: 'Zeros', config: {} },
    moving_variance_initializer: { class_name: 'Ones', config: {} },
    beta_regularizer: null,
    gamma_regularizer: null,
    beta_constraint: null,
    gamma_constraint: null,
  },
  weights: ['gamma', 'beta', 'moving_mean', 'moving_variance'].map((w) => ({ name: w, shape: [channels] })),
});

// Keras Applications write ReLU6 both ways depending on the Keras version; keep both in the chain.
const relu6Activation = (name: string): Layer => ({
  className: 'Activation',
  config: { name, trainable: true, activation: 'relu6' },
  weights: [],
});
const relu6Layer = (name: string): Layer => ({
  className: 'ReLU',
  config: { name, trainable: true, max_value: 6, negative_slope: 0, threshold: 0 },
  weights: [],
});
const simple = (className: string, name: string, config: Record<string, unknown>): Layer => ({
  className,
  config: { name, trainable: true, ...config },
  weights: [],
});

function tinyLayers(): Layer[] {
  return [
    // stem: explicit asymmetric padding, then a stride-2 'valid' conv (Keras 2.2+ MobileNet)
    simple('ZeroPadding2D', 'conv1_pad', {
      padding: [
        [0, 1],
        [0, 1],
      ],
      data_format: 'channels_last',
    }),
    conv('conv1', 16, 3, 2, 'valid', 3, false),
    batchNorm('conv1_bn', 16),
    relu6Layer('conv1_relu'),
    depthwise('conv_dw_1', 1, 'same', 16),
    batchNorm('conv_dw_1_bn', 16),
    relu6Activation('conv_dw_1_relu'),
    conv('conv_pw_1', 24, 1, 1, 'same', 16, false),
    batchNorm('conv_pw_1_bn', 24),
    relu6Layer('conv_pw_1_relu'),
    // stride-2 'same' depthwise conv: TensorFlow's asymmetric padding
    depthwise('conv_dw_2', 2, 'same', 24),
    batchNorm('conv_dw_2_bn', 24),
    relu6Activation('conv_dw_2_relu'),
    conv('conv_pw_2', 32, 1, 1, 'same', 24, false),
    batchNorm('conv_pw_2_bn', 32),
    relu6Layer('conv_pw_2_relu'),
    depthwise('conv_dw_3', 2, 'same', 32),
    batchNorm('conv_dw_3_bn', 32),
    relu6Activation('conv_dw_3_relu'),
    conv('conv_pw_3', TINY_FEATURE_CHANNELS, 1, 1, 'same', 32, false),
    batchNorm('conv_pw_3_bn', TINY_FEATURE_CHANNELS),
    relu6Activation(TINY_OUTPUT_LAYER),
    // beyond the feature layer: a biased conv, LeakyReLU, pooling and MobileNet's classifier top
    conv('conv_4', 32, 3, 1, 'same', TINY_FEATURE_CHANNELS, true),
    simple('LeakyReLU', 'conv_4_leaky', { alpha: 0.2 }),
    simple('MaxPooling2D', 'pool_4', { pool_size: [2, 2], strides: [2, 2], padding: 'valid', data_format: 'channels_last' }),
    simple('AveragePooling2D', 'pool_5', { pool_size: [2, 2], strides: [1, 1], padding: 'valid', data_format: 'channels_last' }),
    simple('GlobalAveragePooling2D', 'global_average_pooling2d_1', { data_format: 'channels_last' }),
    simple('Reshape', 'reshape_1', { target_shape: [1, 1, 32] }),
    simple('Dropout', 'dropout', { rate: 0.001, noise_shape: null, seed: null }),
    conv('conv_preds', CLASSES, 1, 1, 'same', 32, true),
    simple('Activation', 'act_softmax', { activation: 'softmax' }),
    simple('Reshape', 'reshape_2', { target_shape: [CLASSES] }),
  ];
}

/**
 * Seeded values at pretrained-like magnitudes: LeCun-uniform kernels keep each conv's output
 * variance near its input's, and BatchNormalization statistics near (not at) the identity, so
 * activations stay in ReLU6's working range through the chain.
 */
function weightValues(rng: Rng, layer: Layer, weight: { name: string; shape: number[] }): Float32Array {
  const count = weight.shape.reduce((a, b) => a * b, 1);
  const [kh = 1, kw = 1, inChannels = 1] = weight.shape;
  switch (weight.name) {
    case 'kernel': {
      const limit = Math.sqrt(3 / (kh * kw * inChannels));
      return rng.floats(count, -limit, limit);
    }
    case 'depthwise_kernel': {
      const limit = Math.sqrt(3 / (kh * kw));
      return rng.floats(count, -limit, limit);
    }
    case 'bias':
      return rng.floats(count, -0.1, 0.1);
    case 'gamma':
      return rng.floats(count, 0.7, 1.3);
    case 'beta':
      return rng.floats(count, 0.05, 0.4);
    case 'moving_mean':
      return rng.floats(count, -0.2, 0.2);
    case 'moving_variance':
      return rng.floats(count, 0.4, 1.2);
    default:
      throw new Error(`tiny backbone: no value rule for weight ${layer.config.name}/${weight.name}`);
  }
}

/** Writes `<dir>/model.json` and its shards; returns where, the feature layer and the layer names. */
export async function writeTinyBackbone(dir: string, options: TinyBackboneOptions = {}): Promise<TinyBackbone> {
  const size = options.inputSize ?? 32;
  const shardBytes = options.shardBytes ?? 4096;
  // Float32Array bytes are written as they lie in memory; TF.js shards are little-endian.
  if (os.endianness() !== 'LE') throw new Error('tiny backbone: this writer needs a little-endian machine');
  if (shardBytes % 4 !== 0) throw new Error(`tiny backbone: shardBytes must be a multiple of 4 (got ${shardBytes})`);
  const rng = new Rng(options.seed ?? 1);
  const layers = tinyLayers();
  await mkdir(dir, { recursive: true });

  const inputName = 'input_1';
  const configLayers: unknown[] = [
    {
      class_name: 'InputLayer',
      name: inputName,
      inbound_nodes: [],
      config: { name: inputName, dtype: 'float32', sparse: false, batch_input_shape: [null, size, size, 3] },
    },
  ];
  layers.forEach((layer, i) => {
    const previous = i === 0 ? inputName : (layers[i - 1]!.config.name as string);
    configLayers.push({
      class_name: layer.className,
      name: layer.config.name,
      inbound_nodes: [[[previous, 0, 0, {}]]],
      config: layer.config,
    });
  });

  const weightsManifest: Array<{ paths: string[]; weights: Array<{ name: string; shape: number[]; dtype: string }> }> = [];
  let parameterCount = 0;
  for (const layer of layers.filter((l) => l.weights.length > 0)) {
    const values = layer.weights.map((w) => weightValues(rng, layer, w));
    parameterCount += values.reduce((sum, v) => sum + v.length, 0);
    const bytes = Buffer.concat(values.map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength)));
    const group = weightsManifest.length + 1;
    const shards = Math.max(1, Math.ceil(bytes.length / shardBytes));
    const paths: string[] = [];
    for (let s = 0; s < shards; s++) {
      const name = `group${group}-shard${s + 1}of${shards}`;
      await writeFile(path.join(dir, name), bytes.subarray(s * shardBytes, (s + 1) * shardBytes));
      paths.push(name);
    }
    weightsManifest.push({
      paths,
      weights: layer.weights.map((w) => ({ name: `${layer.config.name as string}/${w.name}`, shape: w.shape, dtype: 'float32' })),
    });
  }

  const modelTopology = {
    keras_version: '2.1.4',
    backend: 'tensorflow',
    model_config: {
      class_name: 'Model',
      config: { name: 'tiny_mobilenet', layers: configLayers, input_layers: [[inputName, 0, 0]], output_layers: [['reshape_2', 0, 0]] },
    },
  };
  const modelJson = path.join(dir, 'model.json');
  await writeFile(modelJson, JSON.stringify({ modelTopology, weightsManifest }));
  return {
    modelJson,
    outputLayer: TINY_OUTPUT_LAYER,
    layerNames: layers.map((l) => l.config.name as string),
    parameterCount,
    classes: CLASSES,
  };
}

let shared: Promise<TinyBackbone> | undefined;

/** One tiny backbone per process (seed 1, made once in os.tmpdir(), removed at exit), for tests that only read it. */
export function sharedTinyBackbone(): Promise<TinyBackbone> {
  if (shared === undefined) {
    const root = mkdtempSync(path.join(os.tmpdir(), 'transferlab-tiny-backbone-'));
    process.on('exit', () => rmSync(root, { recursive: true, force: true }));
    shared = writeTinyBackbone(path.join(root, 'tiny_mobilenet'), { seed: 1 });
  }
  return shared;
}
