/**
 * Writers of small Keras HDF5 weight files in each layout the readers support, with the layer
 * names, weight names and shapes of the official VGG16 no-top file (channel counts can be shrunk
 * for speed). Values are deterministic so tests can check they come back exactly.
 */

import type { Group } from 'h5wasm/node';
import h5wasm from 'h5wasm/node';
import { h5Module } from '../../lib/io/h5.js';

/** How weight names are spelled: official VGG16 file, tf.keras 2, Keras 3's legacy h5 writer. */
export type Keras2Naming = 'official' | 'tf-keras2' | 'keras3-legacy';

export interface FixtureWeight {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface FixtureLayer {
  layerName: string;
  className: 'InputLayer' | 'Conv2D' | 'MaxPooling2D';
  weights: FixtureWeight[];
}

/** Filters of VGG16's five blocks, and how many convolutions each block has. */
export const VGG16_FILTERS = [64, 128, 256, 512, 512] as const;
export const VGG16_CONVS_PER_BLOCK = [2, 2, 3, 3, 3] as const;

/**
 * Deterministic values, all multiples of 1/256 in [-3.91, 3.91]: exact in float16, float32 and
 * float64, so every conversion path can be checked with strict equality.
 */
export function fixtureValues(seed: number, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (((seed * 7919 + i * 104729) % 2001) - 1000) / 256;
  return out;
}

function weightNames(layer: string, naming: Keras2Naming): [string, string] {
  switch (naming) {
    case 'official':
      return [`${layer}_W_1:0`, `${layer}_b_1:0`];
    case 'tf-keras2':
      return [`${layer}/kernel:0`, `${layer}/bias:0`];
    case 'keras3-legacy':
      return [`${layer}/kernel`, `${layer}/bias`];
  }
}

export interface Vgg16FixtureOptions {
  /** Divides every filter count (64 → 4 with 16) to keep files small; 1 = real sizes. */
  channelDivisor?: number;
  naming?: Keras2Naming;
  /** The official file lists its input layer (`input_1`) in layer_names; default true. */
  includeInputLayer?: boolean;
}

/** VGG16 without top: input_1, block1_conv1 … block5_pool, HWIO kernels `[3, 3, in, out]`, biases `[out]`. */
export function vgg16NoTopLayers(options: Vgg16FixtureOptions = {}): FixtureLayer[] {
  const { channelDivisor = 1, naming = 'official', includeInputLayer = true } = options;
  const layers: FixtureLayer[] = includeInputLayer ? [{ layerName: 'input_1', className: 'InputLayer', weights: [] }] : [];
  let channels = 3;
  VGG16_FILTERS.forEach((fullFilters, block) => {
    const filters = Math.max(1, Math.floor(fullFilters / channelDivisor));
    for (let conv = 1; conv <= VGG16_CONVS_PER_BLOCK[block]!; conv++) {
      const layerName = `block${block + 1}_conv${conv}`;
      const [kernelName, biasName] = weightNames(layerName, naming);
      const seed = layers.length * 10;
      const kernelShape = [3, 3, channels, filters];
      layers.push({
        layerName,
        className: 'Conv2D',
        weights: [
          { name: kernelName, shape: kernelShape, data: fixtureValues(seed, 9 * channels * filters) },
          { name: biasName, shape: [filters], data: fixtureValues(seed + 1, filters) },
        ],
      });
      channels = filters;
    }
    layers.push({ layerName: `block${block + 1}_pool`, className: 'MaxPooling2D', weights: [] });
  });
  return layers;
}

export type FixtureDtype = 'float32' | 'float64' | 'int32';
const H5_DTYPES: Record<FixtureDtype, string> = { float32: '<f', float64: '<d', int32: '<i' };

function typedData(data: Float32Array, dtype: FixtureDtype): Float32Array | Float64Array | Int32Array {
  if (dtype === 'float64') return Float64Array.from(data);
  if (dtype === 'int32') return Int32Array.from(data, Math.round);
  return data;
}

/** Creates the groups along `path` (h5wasm does not create intermediate groups) and returns the last. */
function ensureGroups(root: Group, path: string[]): Group {
  let group = root;
  for (const part of path) {
    group = group.keys().includes(part) ? (group.get(part) as Group) : group.create_group(part);
  }
  return group;
}

/**
 * A string-list attribute as Keras writes it: fixed-length byte strings (h5py `S` arrays) or,
 * `vlen`, variable-length strings. An empty list is an empty float64 array, as h5py writes
 * `np.asarray([])`.
 */
function writeStringList(object: Group, name: string, values: string[], strings: 'fixed' | 'vlen'): void {
  if (values.length === 0) object.create_attribute(name, new Float64Array(0), [0], '<d');
  else if (strings === 'vlen') object.create_attribute(name, values);
  else object.create_attribute(name, values, [values.length], `A${Math.max(...values.map((v) => v.length))}`);
}

/** Splits like numpy's `array_split`, which Keras uses for `layer_names0`, `layer_names1`, ... */
function splitEvenly<T>(items: T[], chunks: number): T[][] {
  const base = Math.floor(items.length / chunks);
  const extra = items.length % chunks;
  const out: T[][] = [];
  let start = 0;
  for (let i = 0; i < chunks; i++) {
    const size = base + (i < extra ? 1 : 0);
    out.push(items.slice(start, start + size));
    start += size;
  }
  return out;
}

export interface Keras2WriteOptions {
  /** Store `layer_names` as `layer_names0` … `layer_names{n-1}` (Keras does this past 64 KiB). */
  layerNameChunks?: number;
  /** Put the layer groups under `model_weights`, as a full-model `model.save('x.h5')` does. */
  fullModel?: boolean;
  strings?: 'fixed' | 'vlen';
  dtype?: FixtureDtype;
}

async function openForWriting(file: string): Promise<InstanceType<typeof h5wasm.File>> {
  await h5Module(); // readiness and HDF5 errors as exceptions
  return new h5wasm.File(file, 'w');
}

/** Writes `layers` in the Keras 2 HDF5 layout (`layer_names`, groups with `weight_names`). */
export async function writeKeras2H5(file: string, layers: FixtureLayer[], options: Keras2WriteOptions = {}): Promise<void> {
  const { layerNameChunks, fullModel = false, strings = 'fixed', dtype = 'float32' } = options;
  const h5 = await openForWriting(file);
  try {
    let root: Group = h5;
    if (fullModel) {
      h5.create_attribute('model_config', JSON.stringify({ class_name: 'Functional', config: { name: 'vgg16' } }));
      root = h5.create_group('model_weights');
    }
    writeStringList(root, 'backend', ['tensorflow'], strings);
    writeStringList(root, 'keras_version', ['2.15.0'], strings);
    const names = layers.map((l) => l.layerName);
    if (layerNameChunks)
      splitEvenly(names, layerNameChunks).forEach((chunk, i) => writeStringList(root, `layer_names${i}`, chunk, strings));
    else writeStringList(root, 'layer_names', names, strings);
    for (const layer of layers) {
      const group = root.create_group(layer.layerName);
      writeStringList(
        group,
        'weight_names',
        layer.weights.map((w) => w.name),
        strings,
      );
      for (const weight of layer.weights) {
        // Names with "/" are nested paths: `block1_conv1/kernel:0` → group block1_conv1, dataset kernel:0.
        const parts = weight.name.split('/');
        const parent = ensureGroups(group, parts.slice(0, -1));
        parent.create_dataset({ name: parts.at(-1)!, data: typedData(weight.data, dtype), shape: weight.shape, dtype: H5_DTYPES[dtype] });
      }
    }
  } finally {
    h5.close();
  }
}

/**
 * Keras 3 stores each layer under the snake-cased class name numbered per class, not the layer
 * name. Spelled out here (not computed by the library) so tests check the library against it.
 */
const KERAS3_CLASS_KEYS: Record<FixtureLayer['className'], string> = {
  InputLayer: 'input_layer',
  Conv2D: 'conv2d',
  MaxPooling2D: 'max_pooling2d',
};

export function keras3FixtureKeys(layers: FixtureLayer[]): string[] {
  const seen = new Map<string, number>();
  return layers.map((layer) => {
    const base = KERAS3_CLASS_KEYS[layer.className];
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    return count === 0 ? base : `${base}_${count}`;
  });
}

/** Writes `layers` as a Keras 3 `.weights.h5`: `layers/<key>/vars/<i>`, plus the empty root and optimizer `vars`. */
export async function writeKeras3WeightsH5(
  file: string,
  layers: FixtureLayer[],
  options: { dtype?: FixtureDtype } = {},
): Promise<string[]> {
  const { dtype = 'float32' } = options;
  const keys = keras3FixtureKeys(layers);
  const h5 = await openForWriting(file);
  try {
    const layersGroup = h5.create_group('layers');
    layers.forEach((layer, i) => {
      const vars = layersGroup.create_group(keys[i]!).create_group('vars');
      layer.weights.forEach((weight, index) => {
        vars.create_dataset({ name: String(index), data: typedData(weight.data, dtype), shape: weight.shape, dtype: H5_DTYPES[dtype] });
      });
    });
    h5.create_group('optimizer').create_group('vars');
    h5.create_group('vars');
  } finally {
    h5.close();
  }
  return keys;
}
