/**
 * Reads a TensorFlow.js layers model (`model.json` + weight shards): the converter's output for
 * Keras models (e.g. MobileNet v1) and this project's own save format.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { LayerConfig, LayerWeights, WeightTensor } from '../keras-format/config.js';
import { formatShape, isValidShape, shapeSize } from '../keras-format/shape.js';
import type { TfjsModelJson, TfjsWeightsGroup } from '../keras-format/tfjs-format.js';
import { floatsFromBytes } from './float-bytes.js';
import { linearTopology } from './tfjs-topology.js';

export { type TfjsModelToWrite, type WriteTfjsOptions, type WrittenTfjsModel, writeTfjsLayersModel } from './tfjs-model-writer.js';

export interface TfjsLayersModel {
  name: string;
  /** In execution order, without the InputLayer. */
  layers: LayerConfig[];
  /** Layers that have weights, in layer order; tensors in manifest order within a layer. */
  weights: LayerWeights[];
  /** Without the batch dimension, e.g. `[224, 224, 3]`. */
  inputShape: number[];
  format: 'layers-model';
  /** The Keras class of the stored model: `Sequential`, `Model` or `Functional`. */
  sourceClass: string;
  generatedBy?: string;
}

const FLOAT32_BYTES = 4;

export async function readTfjsLayersModel(modelJsonPath: string): Promise<TfjsLayersModel> {
  const json = await readModelJson(modelJsonPath);
  if (json.format !== undefined && json.format !== 'layers-model') {
    throw new Error(`${modelJsonPath}: format "${json.format}" is not supported (only TF.js layers models)`);
  }
  const topology = linearTopology(json.modelTopology, modelJsonPath);
  const tensors = await readWeightsManifest(modelJsonPath, json.weightsManifest);
  const weights = groupByLayer(tensors, [...topology.layers.map((l) => l.config.name)], modelJsonPath);
  return {
    name: topology.name,
    layers: topology.layers,
    weights,
    inputShape: topology.inputShape,
    format: 'layers-model',
    sourceClass: topology.sourceClass,
    ...(json.generatedBy === undefined ? {} : { generatedBy: json.generatedBy }),
  };
}

async function readModelJson(modelJsonPath: string): Promise<TfjsModelJson> {
  let text: string;
  try {
    text = await fs.readFile(modelJsonPath, 'utf8');
  } catch (error) {
    throw new Error(`${modelJsonPath}: cannot read model (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${modelJsonPath}: not valid JSON (${(error as Error).message})`);
  }
  const value = json as Partial<TfjsModelJson>;
  if (typeof value !== 'object' || value === null || typeof value.modelTopology !== 'object' || !Array.isArray(value.weightsManifest)) {
    throw new Error(`${modelJsonPath}: not a TF.js layers model (needs "modelTopology" and "weightsManifest")`);
  }
  return value as TfjsModelJson;
}

/** Resolves a shard path, refusing ones that leave the model's folder (a model.json is data, not a licence to read any file). */
function shardPath(modelJsonPath: string, relative: string): string {
  const dir = path.dirname(path.resolve(modelJsonPath));
  const resolved = path.resolve(dir, relative);
  if (path.isAbsolute(relative) || !resolved.startsWith(dir + path.sep)) {
    throw new Error(`${modelJsonPath}: shard path "${relative}" points outside the model folder`);
  }
  return resolved;
}

/** Expected byte sizes of a group's shards: all as large as the largest but the last (TF.js converter layout). */
function expectedShardSizes(actual: number[], total: number): number[] {
  if (actual.length === 1) return [total];
  const full = Math.max(...actual);
  return actual.map((_, i) => (i < actual.length - 1 ? full : total - full * (actual.length - 1)));
}

async function readGroup(modelJsonPath: string, group: TfjsWeightsGroup, groupIndex: number): Promise<WeightTensor[]> {
  const where = `${modelJsonPath}: weightsManifest group ${groupIndex + 1}`;
  if (!Array.isArray(group.paths) || !Array.isArray(group.weights)) throw new Error(`${where} has no "paths" or "weights"`);
  for (const spec of group.weights) {
    if (spec.quantization) {
      throw new Error(
        `${modelJsonPath}: weight "${spec.name}" is quantized (${spec.quantization.dtype ?? 'unknown'}); only float32 weights are supported`,
      );
    }
    if (spec.dtype !== 'float32')
      throw new Error(`${modelJsonPath}: weight "${spec.name}" has dtype ${spec.dtype}; only float32 weights are supported`);
    if (!isValidShape(spec.shape))
      throw new Error(`${modelJsonPath}: weight "${spec.name}" has invalid shape ${JSON.stringify(spec.shape)}`);
  }
  const total = group.weights.reduce((sum, spec) => sum + shapeSize(spec.shape) * FLOAT32_BYTES, 0);
  const files = group.paths.map((p) => shardPath(modelJsonPath, p));
  const sizes = await Promise.all(
    files.map((file, i) =>
      fs.stat(file).then(
        (s) => s.size,
        (error: NodeJS.ErrnoException) => {
          throw new Error(`${modelJsonPath}: shard "${group.paths[i]}" cannot be read (${error.code ?? error.message})`);
        },
      ),
    ),
  );
  if (files.length === 0 && total > 0) throw new Error(`${where} lists ${group.weights.length} weights but no shard files`);
  const expected = expectedShardSizes(sizes, total);
  const problems = sizes.flatMap((size, i) =>
    size === expected[i] ? [] : [`shard "${group.paths[i]}" has ${size} bytes, the manifest needs ${expected[i]}`],
  );
  const actualTotal = sizes.reduce((a, b) => a + b, 0);
  if (actualTotal !== total)
    problems.push(`the group's shards hold ${actualTotal} bytes in all, its ${group.weights.length} float32 weights need ${total}`);
  if (problems.length > 0) throw new Error(`${modelJsonPath}: ${problems.join('; ')}`);

  const bytes = Buffer.concat(await Promise.all(files.map((file) => fs.readFile(file))));
  let offset = 0;
  return group.weights.map((spec) => {
    const count = shapeSize(spec.shape);
    const data = floatsFromBytes(bytes.subarray(offset, offset + count * FLOAT32_BYTES), FLOAT32_BYTES, true, count);
    offset += count * FLOAT32_BYTES;
    return { name: spec.name, shape: [...spec.shape], data };
  });
}

async function readWeightsManifest(modelJsonPath: string, manifest: TfjsWeightsGroup[]): Promise<WeightTensor[]> {
  const groups = await Promise.all(manifest.map((group, i) => readGroup(modelJsonPath, group, i)));
  return groups.flat();
}

/**
 * Groups `<layer name>/<weight>` tensors by layer, in layer order. The owner is the longest layer
 * name that prefixes the weight name, so `conv1/kernel` never lands on a layer named `conv`.
 */
function groupByLayer(tensors: WeightTensor[], layerNames: string[], modelJsonPath: string): LayerWeights[] {
  const byLayer = new Map<string, WeightTensor[]>(layerNames.map((name) => [name, []]));
  const byLength = [...layerNames].sort((a, b) => b.length - a.length);
  const orphans: string[] = [];
  const seen = new Set<string>();
  for (const tensor of tensors) {
    if (seen.has(tensor.name)) throw new Error(`${modelJsonPath}: weight "${tensor.name}" appears twice in the manifest`);
    seen.add(tensor.name);
    const owner = byLength.find((name) => tensor.name.startsWith(`${name}/`));
    if (owner === undefined) orphans.push(`${tensor.name} ${formatShape(tensor.shape)}`);
    else byLayer.get(owner)!.push(tensor);
  }
  if (orphans.length > 0) {
    throw new Error(`${modelJsonPath}: ${orphans.length} weights belong to no layer of the model: ${orphans.join(', ')}`);
  }
  return layerNames.filter((name) => byLayer.get(name)!.length > 0).map((layerName) => ({ layerName, weights: byLayer.get(layerName)! }));
}
