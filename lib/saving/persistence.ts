import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { OptimizerState } from '../engine/native.js';
import { readTfjsLayersModel, writeTfjsLayersModel } from '../io/tfjs-model.js';
import type { LayerConfig } from '../keras-format/config.js';
import { isAugmentation } from '../models/augmentation.js';
import { configPolicy, type DtypePolicyName, policyConfig } from '../models/mixed-precision.js';
import { type Preprocessing, parsePreprocessing } from '../models/preprocessing.js';
import { type CompileOptions, Sequential } from '../models/sequential.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';

/**
 * A saved model is a TF.js layers model (`model.json` + shards: JSON and raw floats, nothing that
 * executes on load), readable by `tf.loadLayersModel` in a browser, plus `transferlab.json` (how
 * pixels are preprocessed, class names, how it was compiled) and, for resuming, the optimizer
 * state. The directory is replaced as a whole, so a crash never mixes two saves.
 */
export const METADATA_FILE = 'transferlab.json';
const OPTIMIZER_JSON = 'optimizer.json';
const OPTIMIZER_BIN = 'optimizer.bin';

export interface ModelMetadata {
  format: 'transferlab-model';
  version: 1;
  name: string;
  preprocessing: Preprocessing;
  seed: number;
  classNames?: string[];
  compile?: CompileOptions;
  /** layers before this index are a frozen pretrained base. */
  baseLayers?: number;
  /** augmentation layers model.json leaves out (TF.js has none), with their positions: loadModel puts them back. */
  augmentation?: { note: string; layers: { index: number; config: LayerConfig }[] };
  /** the model's dtype policy (absent in saves from before policies: float32). */
  dtypePolicy?: DtypePolicyName;
  /** layers that chose their own policy; model.json says float32 for them, so TF.js reads it. */
  layerDtypePolicies?: Record<string, DtypePolicyName>;
  extra?: Record<string, unknown>;
}

export interface SaveOptions {
  includeOptimizer?: boolean;
  classNames?: string[];
  baseLayers?: number;
  extra?: Record<string, unknown>;
}

interface OptimizerHeader {
  /** absent in checkpoints written before SGD and RMSprop existed: those are Adam's. */
  optimizer?: string;
  iterations: number;
  /** slots per weight (Adam: m, v); absent means Adam's 2. */
  slots?: number;
  entries: { layer: number; param: number; length: number }[];
  /** the fixed rate when saved, which ReduceLROnPlateau may have lowered (Keras saves it as an optimizer variable). */
  learningRate?: number;
}

// optimizer.bin: for each entry, its slots one after the other (Adam: m then v), float32.
async function writeOptimizerState(dir: string, state: OptimizerState, learningRate: number | undefined): Promise<void> {
  const slots = state.moments[0]?.slots.length ?? 0;
  const entries = state.moments.map((e) => ({ layer: e.layer, param: e.param, length: e.slots[0]?.length ?? 0 }));
  const data = new Float32Array(entries.reduce((a, e) => a + slots * e.length, 0));
  let offset = 0;
  for (const e of state.moments) {
    for (const slot of e.slots) {
      data.set(slot, offset);
      offset += slot.length;
    }
  }
  await writeFileAtomic(path.join(dir, OPTIMIZER_BIN), new Uint8Array(data.buffer));
  const header: OptimizerHeader = { optimizer: state.optimizer, iterations: state.iterations, slots, entries, learningRate };
  await writeJsonAtomic(path.join(dir, OPTIMIZER_JSON), header);
}

async function readOptimizerState(dir: string): Promise<(OptimizerState & { learningRate?: number }) | undefined> {
  const jsonPath = path.join(dir, OPTIMIZER_JSON);
  if (!existsSync(jsonPath)) return undefined;
  const header = JSON.parse(await fs.readFile(jsonPath, 'utf8')) as OptimizerHeader;
  const slots = header.slots ?? 2;
  const bytes = await fs.readFile(path.join(dir, OPTIMIZER_BIN));
  const expected = header.entries.reduce((a, e) => a + slots * e.length, 0) * 4;
  if (bytes.length !== expected)
    throw new Error(`${path.join(dir, OPTIMIZER_BIN)} has ${bytes.length} bytes, expected ${expected}: the optimizer state is damaged`);
  const floats = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  let offset = 0;
  const moments = header.entries.map((e) => {
    const values: Float32Array[] = [];
    for (let s = 0; s < slots; s++, offset += e.length) values.push(floats.slice(offset, offset + e.length));
    return { layer: e.layer, param: e.param, slots: values };
  });
  return { optimizer: header.optimizer ?? 'adam', iterations: header.iterations, moments, learningRate: header.learningRate };
}

/** Puts a saved optimizer state, and the fixed rate it was saved at, into the compiled model. */
async function restoreOptimizer(model: Sequential, dir: string): Promise<void> {
  const state = await readOptimizerState(dir);
  if (!state) return;
  model.engine.setOptimizerState(state);
  if (state.learningRate !== undefined && !model.learningRateSchedule) model.learningRate = state.learningRate;
}

/** `transferlab.json` of a saved model; undefined for a plain TF.js model. */
async function readMetadata(dir: string): Promise<ModelMetadata | undefined> {
  const file = path.join(dir, METADATA_FILE);
  return existsSync(file) ? (JSON.parse(await fs.readFile(file, 'utf8')) as ModelMetadata) : undefined;
}

const warnedAugmentation = new WeakSet<Sequential>();
/** Layer configs as TF.js and Keras read them (weights are float32 whatever the policy), and the policies taken out. */
function withoutPolicies(configs: LayerConfig[]): { layers: LayerConfig[]; layerDtypePolicies: Record<string, DtypePolicyName> } {
  const layerDtypePolicies: Record<string, DtypePolicyName> = {};
  const layers = configs.map((l) => {
    const policy = configPolicy(l.config.dtype, `layer '${l.config.name}'`);
    if (!policy) return l;
    layerDtypePolicies[l.config.name] = policy;
    return { class_name: l.class_name, config: { ...l.config, dtype: 'float32' } };
  });
  return { layers, layerDtypePolicies };
}

export async function saveModel(model: Sequential, dir: string, options: SaveOptions = {}): Promise<void> {
  const target = path.resolve(dir);
  const staging = `${target}.saving-${process.pid}`;
  // half-written saves of killed processes are never read; clear them with our own
  const parent = path.dirname(target);
  const stale = existsSync(parent) ? (await fs.readdir(parent)).filter((n) => n.startsWith(`${path.basename(target)}.saving-`)) : [];
  for (const name of stale) await fs.rm(path.join(parent, name), { recursive: true, force: true });
  await fs.mkdir(staging, { recursive: true });
  const config = model.toConfig();
  const leftOut = config.config.layers.map((c, index) => ({ index, config: c })).filter((l) => isAugmentation(l.config.class_name));
  const note = `${leftOut.map((l) => `${l.config.config.name} (${l.config.class_name})`).join(', ')}: training-only augmentation, left out of model.json (TF.js layers models have no such layers; the identity at inference)`;
  if (leftOut.length > 0 && !warnedAugmentation.has(model)) {
    warnedAugmentation.add(model); // once per model, not at every checkpoint
    process.emitWarning(`model '${model.name}': ${note}; transferlab.json records them`, { code: 'TRANSFERLAB_AUGMENTATION_NOT_EXPORTED' });
  }
  const { layers, layerDtypePolicies } = withoutPolicies(config.config.layers.filter((c) => !isAugmentation(c.class_name)));
  await writeTfjsLayersModel(staging, {
    name: model.name,
    layers,
    inputShape: model.inputShape,
    weights: model.getWeights(),
  });
  const metadata: ModelMetadata = {
    format: 'transferlab-model',
    version: 1,
    name: model.name,
    preprocessing: model.preprocessing,
    seed: model.seed,
    classNames: options.classNames,
    compile: model.compiled,
    baseLayers: options.baseLayers,
    ...(leftOut.length > 0 ? { augmentation: { note, layers: leftOut } } : {}),
    dtypePolicy: model.dtypePolicy.name,
    layerDtypePolicies,
    extra: options.extra,
  };
  await writeJsonAtomic(path.join(staging, METADATA_FILE), metadata);
  if (options.includeOptimizer && model.compiled)
    // a schedule's rate follows from the iterations; a fixed one is saved as it is now
    await writeOptimizerState(staging, model.engine.getOptimizerState(), model.learningRateSchedule ? undefined : model.learningRate);
  // Swap directories: the old save stays complete until the new one is.
  const previous = `${target}.previous-${process.pid}`;
  const hadPrevious = existsSync(target);
  if (hadPrevious) await fs.rename(target, previous);
  await fs.rename(staging, target);
  if (hadPrevious) await fs.rm(previous, { recursive: true, force: true });
}

/**
 * A save killed between its two renames leaves the previous complete copy as
 * `<dir>.previous-<pid>` and nothing at `<dir>`: put it back, so the last good save is found.
 */
export async function recoverInterruptedSave(dir: string): Promise<void> {
  const target = path.resolve(dir);
  if (existsSync(target)) return;
  const parent = path.dirname(target);
  const prefix = `${path.basename(target)}.previous-`;
  const leftovers = existsSync(parent) ? (await fs.readdir(parent)).filter((name) => name.startsWith(prefix)) : [];
  if (leftovers.length > 0) await fs.rename(path.join(parent, leftovers[0]), target);
}

export interface LoadedModel {
  model: Sequential;
  metadata?: ModelMetadata;
}

/**
 * The model.json of a saved model: `dir` is a model folder (a save killed between its two renames
 * is put back first) or a model.json itself; undefined where there is none.
 */
export async function savedModelJson(dir: string): Promise<string | undefined> {
  if (!dir.endsWith('.json')) await recoverInterruptedSave(dir);
  const modelJson = dir.endsWith('.json') ? dir : path.join(dir, 'model.json');
  return existsSync(modelJson) ? modelJson : undefined;
}

/**
 * Loads a directory written by `saveModel` (or any TF.js layers model, with `preprocessing` given),
 * restoring weights, compile settings and optimizer state.
 */
export async function loadModel(dir: string, options: { preprocessing?: Preprocessing } = {}): Promise<LoadedModel> {
  const modelJson = await savedModelJson(dir);
  if (!modelJson) {
    const expected = dir.endsWith('.json') ? dir : path.join(dir, 'model.json');
    throw new Error(`no saved model at ${path.dirname(expected)}: ${expected} does not exist`);
  }
  const root = path.dirname(modelJson);
  const metadata = await readMetadata(root);
  const stored = await readTfjsLayersModel(modelJson);
  const preprocessing = options.preprocessing ?? (metadata ? parsePreprocessing(metadata.preprocessing) : 'none');
  const own = metadata?.layerDtypePolicies ?? {};
  const layers = stored.layers.map((l) =>
    Object.hasOwn(own, l.config.name) ? { class_name: l.class_name, config: { ...l.config, dtype: policyConfig(own[l.config.name]) } } : l,
  );
  // augmentation layers back in place: engine indices (optimizer state, baseLayers) count them
  for (const l of metadata?.augmentation?.layers ?? []) layers.splice(l.index, 0, l.config);
  const model = new Sequential(layers, {
    name: metadata?.name ?? stored.name,
    inputShape: stored.inputShape,
    preprocessing,
    seed: metadata?.seed,
    dtype: metadata?.dtypePolicy ?? 'float32',
  });
  model.setWeights(stored.weights);
  if (metadata?.compile) {
    model.compile(metadata.compile);
    await restoreOptimizer(model, root);
  }
  return { model, metadata };
}

/**
 * Puts a checkpoint's weights (and optimizer state, when saved and the model is compiled) into an
 * existing model of the same architecture: how `--resume` continues a run.
 */
export async function restoreCheckpoint(model: Sequential, dir: string): Promise<ModelMetadata | undefined> {
  const stored = await readTfjsLayersModel(path.join(dir, 'model.json'));
  model.setWeights(stored.weights);
  const metadata = await readMetadata(dir);
  if (model.compiled) await restoreOptimizer(model, dir);
  return metadata;
}
