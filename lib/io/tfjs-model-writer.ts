/**
 * Writes a model in the TF.js layers-model format (`model.json` + `group1-shardKofN.bin`), the
 * project's save format and what `tf.loadLayersModel` reads. Crash-safe: shards go to temporary
 * names first and `model.json` appears last, so a reader never finds a model.json whose shards
 * are missing or belong to another model.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { LayerConfig, LayerWeights } from '../keras-format/config.js';
import { formatShape, isValidShape, shapeSize } from '../keras-format/shape.js';
import { DEFAULT_SHARD_BYTES, MODEL_JSON, shardFileName, type TfjsModelJson, type TfjsWeightSpec } from '../keras-format/tfjs-format.js';
import { canonicalWeightName } from '../keras-format/weight-names.js';
import { temporarySibling, writeJsonAtomic } from '../util/atomic.js';
import { float32ToLittleEndianBytes } from './float-bytes.js';

export interface TfjsModelToWrite {
  name: string;
  /** In order, without an InputLayer; the first gets `batch_input_shape: [null, ...inputShape]`. */
  layers: LayerConfig[];
  /** Without the batch dimension, e.g. `[300, 300, 3]`. */
  inputShape: number[];
  /** Weight names are written as `<layer>/<short name>` (`block1_conv1_W_1:0` → `block1_conv1/kernel`), as TF.js matches them. */
  weights: LayerWeights[];
}

export interface WriteTfjsOptions {
  /** Bytes per shard file (a multiple of 4); default 4 MiB like the TF.js converter. */
  shardBytes?: number;
  generatedBy?: string;
}

export interface WrittenTfjsModel {
  modelJsonPath: string;
  shardPaths: string[];
}

/**
 * The Keras config dialect written: Keras 2 (`batch_input_shape`, no `module`/`registered_name`),
 * which TF.js and Keras-2 readers use to pick their deserializer.
 */
const KERAS_VERSION = '2.15.0';

function validate(model: TfjsModelToWrite, where: string): void {
  const problems: string[] = [];
  if (!model.name) problems.push('model has no name');
  if (model.layers.length === 0) problems.push('model has no layers');
  if (!isValidShape(model.inputShape) || model.inputShape.length === 0 || model.inputShape.some((d) => d <= 0)) {
    problems.push(`input shape ${JSON.stringify(model.inputShape)} is not a list of positive sizes`);
  }
  const layerNames = new Set<string>();
  for (const layer of model.layers) {
    if (layerNames.has(layer.config.name)) problems.push(`two layers are named "${layer.config.name}"`);
    layerNames.add(layer.config.name);
  }
  const weightLayers = new Set<string>();
  for (const { layerName, weights } of model.weights) {
    if (!layerNames.has(layerName)) problems.push(`weights given for layer "${layerName}", which the model does not have`);
    if (weightLayers.has(layerName)) problems.push(`weights for layer "${layerName}" are given twice`);
    weightLayers.add(layerName);
    const names = new Set<string>();
    for (const weight of weights) {
      const name = canonicalWeightName(layerName, weight.name);
      if (names.has(name)) problems.push(`layer "${layerName}" has two weights named "${name}"`);
      names.add(name);
      if (!isValidShape(weight.shape))
        problems.push(`layer "${layerName}" weight "${weight.name}" has invalid shape ${JSON.stringify(weight.shape)}`);
      else if (weight.data.length !== shapeSize(weight.shape)) {
        problems.push(
          `layer "${layerName}" weight "${weight.name}": shape ${formatShape(weight.shape)} needs ${shapeSize(weight.shape)} values, the data has ` +
            `${weight.data.length}`,
        );
      }
    }
  }
  const first = model.layers[0];
  const given = first?.config.batch_input_shape;
  if (first && given !== undefined && JSON.stringify(given) !== JSON.stringify([null, ...model.inputShape])) {
    problems.push(
      `first layer "${first.config.name}" has batch_input_shape ${JSON.stringify(given)}, but the input shape is ${formatShape(model.inputShape)}`,
    );
  }
  if (problems.length > 0) throw new Error(`${where}: cannot write model:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
}

/** The weights in layer order and their concatenated little-endian float32 bytes. */
function packWeights(model: TfjsModelToWrite): { specs: TfjsWeightSpec[]; bytes: Uint8Array } {
  const byLayer = new Map(model.weights.map((w) => [w.layerName, w.weights]));
  const specs: TfjsWeightSpec[] = [];
  const parts: Uint8Array[] = [];
  for (const layer of model.layers) {
    for (const weight of byLayer.get(layer.config.name) ?? []) {
      specs.push({ name: canonicalWeightName(layer.config.name, weight.name), shape: [...weight.shape], dtype: 'float32' });
      parts.push(float32ToLittleEndianBytes(weight.data));
    }
  }
  return { specs, bytes: Buffer.concat(parts) };
}

/** Shard names listed by an existing model.json in `dir`, so that stale ones can be removed. */
async function previousShards(modelJsonPath: string): Promise<string[]> {
  try {
    const json = JSON.parse(await fs.readFile(modelJsonPath, 'utf8')) as Partial<TfjsModelJson>;
    // Only names this writer would have made: a hostile model.json must not get other files deleted.
    return (json.weightsManifest ?? [])
      .flatMap((g) => g.paths ?? [])
      .filter((p) => typeof p === 'string' && /^group\d+-shard\d+of\d+\.bin$/.test(p));
  } catch {
    return [];
  }
}

async function writeSynced(file: string, data: Uint8Array): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function writeTfjsLayersModel(
  dir: string,
  model: TfjsModelToWrite,
  options: WriteTfjsOptions = {},
): Promise<WrittenTfjsModel> {
  const modelJsonPath = path.join(dir, MODEL_JSON);
  validate(model, modelJsonPath);
  const shardBytes = options.shardBytes ?? DEFAULT_SHARD_BYTES;
  if (!Number.isInteger(shardBytes) || shardBytes <= 0 || shardBytes % 4 !== 0) {
    throw new Error(`${modelJsonPath}: shardBytes must be a positive multiple of 4, got ${shardBytes}`);
  }

  const { specs, bytes } = packWeights(model);
  const shardCount = Math.ceil(bytes.byteLength / shardBytes);
  const shardNames = Array.from({ length: shardCount }, (_, i) => shardFileName(1, i + 1, shardCount));
  const [first, ...rest] = model.layers;
  const layers = [{ ...first!, config: { ...first!.config, batch_input_shape: [null, ...model.inputShape] } }, ...rest];
  const json: TfjsModelJson = {
    format: 'layers-model',
    generatedBy: options.generatedBy ?? 'TransferLab',
    convertedBy: 'TransferLab writeTfjsLayersModel',
    modelTopology: {
      class_name: 'Sequential',
      config: { name: model.name, layers },
      keras_version: KERAS_VERSION,
      backend: 'tensorflow',
    },
    weightsManifest: shardCount === 0 ? [] : [{ paths: shardNames, weights: specs }],
  };

  await fs.mkdir(dir, { recursive: true });
  const temporaries = shardNames.map((name) => temporarySibling(path.join(dir, name)));
  try {
    for (let i = 0; i < shardCount; i++) {
      await writeSynced(temporaries[i]!, bytes.subarray(i * shardBytes, Math.min((i + 1) * shardBytes, bytes.byteLength)));
    }
    // An old model.json must not pair with new shards of the same names: remove it before they
    // land. A crash from here on leaves no model rather than a mixed one.
    const stale = await previousShards(modelJsonPath);
    await fs.rm(modelJsonPath, { force: true });
    for (let i = 0; i < shardCount; i++) await fs.rename(temporaries[i]!, path.join(dir, shardNames[i]!));
    await writeJsonAtomic(modelJsonPath, json);
    const current = new Set(shardNames);
    await Promise.all(stale.filter((name) => !current.has(name)).map((name) => fs.rm(path.join(dir, name), { force: true })));
  } finally {
    await Promise.all(temporaries.map((file) => fs.rm(file, { force: true })));
  }
  return { modelJsonPath, shardPaths: shardNames.map((name) => path.join(dir, name)) };
}
