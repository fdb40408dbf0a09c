/**
 * Reads layer weights from Keras HDF5 files:
 * - Keras 2 layout (`model.save_weights('x.h5')`, the official VGG16 files, Keras 3's legacy h5
 *   writer): root attribute `layer_names` (or `layer_names0`, `layer_names1`, ...), one group per
 *   layer with attribute `weight_names`, each weight a dataset at `<layer>/<weight name>`;
 * - the same under a `model_weights` group (full-model `.h5` files from `model.save`);
 * - Keras 3 `.weights.h5`: datasets at `layers/<key>/vars/<i>`, where `<key>` is the snake-cased
 *   class name numbered per class (see `keras3LayerKeys`), not the layer name.
 * Weights come back as float32 in Keras layout (HWIO kernels), named as the file names them.
 */
import type { LayerWeights, WeightTensor } from '../keras-format/config.js';
import { childGroup, type Group, isDataset, isGroup, openH5, readChunkedStringList, readFloatDataset } from './h5.js';

export type KerasH5Layout = 'keras2' | 'keras2-full-model' | 'keras3';

export interface KerasH5Weights {
  layout: KerasH5Layout;
  /**
   * In file order. Keras 2: every entry of `layer_names` (layers without weights have `weights:
   * []`). Keras 3: one entry per store key, ordered by class then number (HDF5 keeps no creation
   * order), named by the key (`conv2d_3`; nested models as `functional/conv2d_3`).
   */
  layers: LayerWeights[];
}

/** Reads every layer's weights; see `readKerasH5` for the layout found. */
export async function readKerasH5Weights(filePath: string): Promise<LayerWeights[]> {
  return (await readKerasH5(filePath)).layers;
}

export async function readKerasH5(filePath: string): Promise<KerasH5Weights> {
  const file = await openH5(filePath);
  try {
    if (hasLayerNames(file)) return { layout: 'keras2', layers: await readKeras2Group(file, filePath) };
    const modelWeights = childGroup(file, 'model_weights');
    if (modelWeights && hasLayerNames(modelWeights)) {
      return { layout: 'keras2-full-model', layers: await readKeras2Group(modelWeights, filePath) };
    }
    // tf.keras 2.13's transitional format used `_layer_checkpoint_dependencies` for `layers`.
    const layersGroup = childGroup(file, 'layers') ?? childGroup(file, '_layer_checkpoint_dependencies');
    if (layersGroup) return { layout: 'keras3', layers: await readKeras3Layers(layersGroup, filePath, '') };
    throw new Error(
      `${filePath}: not a Keras weights file (no "layer_names" attribute, "model_weights" group or "layers" group; ` +
        `top-level entries: ${file.keys().join(', ') || 'none'})`,
    );
  } finally {
    file.close();
  }
}

function hasLayerNames(group: Group): boolean {
  const names = Object.keys(group.attrs);
  return names.includes('layer_names') || names.includes('layer_names0');
}

async function readKeras2Group(root: Group, filePath: string): Promise<LayerWeights[]> {
  const layerNames = readChunkedStringList(root, 'layer_names', `${filePath}: ${root.path}`) ?? [];
  const out: LayerWeights[] = [];
  for (const layerName of layerNames) {
    const where = `${filePath}: layer "${layerName}"`;
    const group = childGroup(root, layerName);
    if (!group) throw new Error(`${where} is listed in layer_names but the file has no group for it`);
    const weightNames = readChunkedStringList(group, 'weight_names', where);
    if (weightNames === undefined) throw new Error(`${where}: group has no "weight_names" attribute`);
    const weights: WeightTensor[] = [];
    for (const name of weightNames) {
      const weightWhere = `${where} weight "${name}"`;
      // Weight names may contain "/" (tf.keras: "block1_conv1/kernel:0"): they are nested paths.
      let entity: unknown;
      try {
        entity = group.get(name);
      } catch {
        entity = null;
      }
      if (!isDataset(entity)) throw new Error(`${weightWhere}: listed in weight_names but no dataset at ${group.path}/${name}`);
      const { shape, data } = await readFloatDataset(entity, weightWhere);
      weights.push({ name, shape, data });
    }
    out.push({ layerName, weights });
  }
  return out;
}

/** `conv2d_10` after `conv2d_9`: order keys by class, then by Keras's per-class counter. */
function compareStoreKeys(a: string, b: string): number {
  const split = (key: string): [string, number] => {
    const match = /^(.*?)(?:_(\d+))?$/.exec(key)!;
    return [match[1]!, match[2] === undefined ? -1 : Number(match[2])];
  };
  const [baseA, numberA] = split(a);
  const [baseB, numberB] = split(b);
  if (baseA !== baseB) return baseA < baseB ? -1 : 1;
  return numberA - numberB;
}

async function readKeras3Layers(layersGroup: Group, filePath: string, prefix: string): Promise<LayerWeights[]> {
  const out: LayerWeights[] = [];
  for (const key of [...layersGroup.keys()].sort(compareStoreKeys)) {
    const layerName = `${prefix}${key}`;
    const group = layersGroup.get(key);
    if (!isGroup(group)) continue;
    const vars = childGroup(group, 'vars');
    const weights: WeightTensor[] = [];
    if (vars) {
      // Datasets are named by index ("0", "1", ..., "10"): sort numerically, not as strings.
      const indices = vars
        .keys()
        .filter((name) => /^\d+$/.test(name))
        .sort((a, b) => Number(a) - Number(b));
      indices.forEach((index, position) => {
        if (Number(index) !== position) throw new Error(`${filePath}: layer "${layerName}": vars/${position} is missing`);
      });
      for (const index of indices) {
        const name = `${layerName}/vars/${index}`;
        const dataset = vars.get(index);
        if (!isDataset(dataset)) throw new Error(`${filePath}: layer "${layerName}": ${vars.path}/${index} is not a dataset`);
        const { shape, data } = await readFloatDataset(dataset, `${filePath}: layer "${layerName}" weight "${name}"`);
        weights.push({ name, shape, data });
      }
    }
    const nested = childGroup(group, 'layers');
    if (nested) {
      if (weights.length > 0) out.push({ layerName, weights });
      out.push(...(await readKeras3Layers(nested, filePath, `${layerName}/`)));
    } else {
      out.push({ layerName, weights });
    }
  }
  return out;
}
