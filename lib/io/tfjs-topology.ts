/**
 * Turns a Keras model config from a TF.js `modelTopology` (Sequential, or a functional Model that
 * is a linear chain) into the project's ordered layer list plus the input shape.
 */
import type { LayerConfig } from '../keras-format/config.js';

export interface LinearTopology {
  name: string;
  /** `Sequential` or `Model` / `Functional` (the functional class name, which Keras 3 renamed). */
  sourceClass: string;
  /** Without the InputLayer. */
  layers: LayerConfig[];
  /** Without the batch dimension, e.g. `[224, 224, 3]`. */
  inputShape: number[];
}

interface RawLayer {
  class_name?: unknown;
  config?: { name?: unknown; [key: string]: unknown };
  name?: unknown;
  inbound_nodes?: unknown;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function toLayerConfig(raw: RawLayer, where: string, index: number): LayerConfig {
  if (typeof raw.class_name !== 'string' || !isObject(raw.config) || typeof raw.config.name !== 'string') {
    throw new Error(`${where}: layer ${index} has no class_name, config or config.name`);
  }
  return { class_name: raw.class_name, config: { ...raw.config, name: raw.config.name } };
}

/** `[null, 224, 224, 3]` (Keras 2 `batch_input_shape` or Keras 3 `batch_shape`) → `[224, 224, 3]`. */
function inputShapeOf(layer: LayerConfig, where: string): number[] | undefined {
  const batchShape = layer.config.batch_input_shape ?? layer.config.batch_shape;
  if (batchShape === undefined || batchShape === null) return undefined;
  const dims = Array.isArray(batchShape) ? batchShape.slice(1) : undefined;
  if (!dims || dims.length === 0 || !dims.every((d) => Number.isInteger(d) && (d as number) > 0)) {
    throw new Error(
      `${where}: layer "${layer.config.name}" has input shape ${JSON.stringify(batchShape)}; only fixed positive sizes are supported`,
    );
  }
  return dims as number[];
}

/** Names of the layers feeding a functional layer, over all its inbound nodes (Keras 2 and 3 forms). */
function inboundLayerNames(raw: RawLayer): string[] {
  const nodes = raw.inbound_nodes;
  if (!Array.isArray(nodes)) return [];
  const names: string[] = [];
  for (const node of nodes) {
    if (Array.isArray(node)) {
      // Keras 2: [[layer_name, node_index, tensor_index, kwargs], ...]
      for (const tensor of node) if (Array.isArray(tensor) && typeof tensor[0] === 'string') names.push(tensor[0]);
    } else if (isObject(node)) {
      // Keras 3: { args: [{ class_name: '__keras_tensor__', config: { keras_history: [name, 0, 0] } }], kwargs }
      const visit = (value: unknown): void => {
        if (Array.isArray(value)) value.forEach(visit);
        else if (isObject(value)) {
          const history = isObject(value.config) ? value.config.keras_history : undefined;
          if (value.class_name === '__keras_tensor__' && Array.isArray(history) && typeof history[0] === 'string') names.push(history[0]);
          else Object.values(value).forEach(visit);
        }
      };
      visit(node);
    }
  }
  return names;
}

function sequentialTopology(config: unknown, sourceClass: string, where: string): LinearTopology {
  // Keras 2.2 and earlier wrote a Sequential config as the bare layer list.
  const rawLayers = Array.isArray(config) ? config : isObject(config) ? config.layers : undefined;
  if (!Array.isArray(rawLayers) || rawLayers.length === 0) throw new Error(`${where}: Sequential config has no layers`);
  const name = isObject(config) && typeof config.name === 'string' ? config.name : 'sequential';
  let layers = rawLayers.map((raw, i) => toLayerConfig(raw as RawLayer, where, i));
  const first = layers[0]!;
  const inputShape = inputShapeOf(first, where);
  if (!inputShape) throw new Error(`${where}: first layer "${first.config.name}" has no batch_input_shape, so the input size is unknown`);
  if (first.class_name === 'InputLayer') layers = layers.slice(1);
  return { name, sourceClass, layers, inputShape };
}

function functionalTopology(config: unknown, sourceClass: string, where: string): LinearTopology {
  if (!isObject(config) || !Array.isArray(config.layers)) throw new Error(`${where}: ${sourceClass} config has no layers`);
  const name = typeof config.name === 'string' ? config.name : 'model';
  const notChain = (detail: string) => new Error(`${where}: model "${name}" is not a linear chain (${detail}): not supported yet`);
  const raws = config.layers as RawLayer[];
  const layers = raws.map((raw, i) => toLayerConfig(raw, where, i));
  const byName = new Map<string, number>();
  layers.forEach((layer, i) => {
    if (byName.has(layer.config.name)) throw new Error(`${where}: two layers are named "${layer.config.name}"`);
    byName.set(layer.config.name, i);
  });

  const consumers = new Map<string, string[]>();
  const inputs: number[] = [];
  layers.forEach((layer, i) => {
    const inbound = inboundLayerNames(raws[i]!);
    if (layer.class_name === 'InputLayer') {
      inputs.push(i);
      return;
    }
    if (inbound.length !== 1) throw notChain(`layer ${layer.config.name} has ${inbound.length} inputs`);
    const source = inbound[0]!;
    if (!byName.has(source)) throw new Error(`${where}: layer "${layer.config.name}" takes its input from unknown layer "${source}"`);
    consumers.set(source, [...(consumers.get(source) ?? []), layer.config.name]);
  });
  if (inputs.length !== 1) throw notChain(`model has ${inputs.length} inputs`);
  for (const [source, targets] of consumers) {
    if (targets.length > 1) throw notChain(`layer ${source} feeds ${targets.length} layers: ${targets.join(', ')}`);
  }

  // Follow the chain from the input; every layer must be on it exactly once.
  const order: LayerConfig[] = [];
  let current: string | undefined = layers[inputs[0]!]!.config.name;
  const inputLayer = layers[inputs[0]!]!;
  for (current = consumers.get(current)?.[0]; current !== undefined; current = consumers.get(current)?.[0]) {
    order.push(layers[byName.get(current)!]!);
    if (order.length > layers.length) throw notChain('the layers form a cycle');
  }
  if (order.length !== layers.length - 1) {
    const onChain = new Set([inputLayer.config.name, ...order.map((l) => l.config.name)]);
    const off = layers.filter((l) => !onChain.has(l.config.name)).map((l) => l.config.name);
    throw notChain(`layers not reachable from the input: ${off.join(', ')}`);
  }
  const inputShape = inputShapeOf(inputLayer, where);
  if (!inputShape) throw new Error(`${where}: input layer "${inputLayer.config.name}" has no batch_input_shape`);
  return { name, sourceClass, layers: order, inputShape };
}

/** Accepts `modelTopology` as written by the converter (`{ model_config, ... }`) or bare. */
export function linearTopology(modelTopology: unknown, where: string): LinearTopology {
  if (!isObject(modelTopology)) throw new Error(`${where}: modelTopology is missing`);
  const modelConfig = isObject(modelTopology.model_config) ? modelTopology.model_config : modelTopology;
  const sourceClass = modelConfig.class_name;
  if (sourceClass === 'Sequential') return sequentialTopology(modelConfig.config, sourceClass, where);
  if (sourceClass === 'Model' || sourceClass === 'Functional') return functionalTopology(modelConfig.config, sourceClass, where);
  throw new Error(`${where}: model class ${JSON.stringify(sourceClass)} is not supported (expected Sequential, Model or Functional)`);
}
