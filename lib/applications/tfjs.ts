import { readTfjsLayersModel } from '../io/tfjs-model.js';
import type { LayerConfig, Shape } from '../keras-format/config.js';
import type { Preprocessing } from '../models/preprocessing.js';
import { resolveChain } from '../models/resolve.js';
import { OptionError } from '../util/option-error.js';
import { type Backbone, hashWeights, renameWeights } from './backbone.js';

/** TF.js layers models (tensorflowjs_converter output) as pretrained bases. */

/** Layers that make up a classifier top (pooling, reshaping, the class scores), not features. */
const TOP_LAYERS = new Set(['GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'Flatten', 'Reshape', 'Dropout', 'Dense', 'Softmax']);

function isClassifierOutput(layer: LayerConfig): boolean {
  return ['Dense', 'Softmax', 'Reshape'].includes(layer.class_name) || layer.config.activation === 'softmax';
}

/** Levenshtein distance, for "did you mean" lists of layer names. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/**
 * The layers a user most likely wants features from: the last few before a classifier top (its
 * first pooling/flatten layer), nearest first.
 */
export function featureLayerCandidates(layers: LayerConfig[], count = 3): string[] {
  let top = layers.length;
  while (
    top > 0 &&
    (TOP_LAYERS.has(layers[top - 1]!.class_name) ||
      isClassifierOutput(layers[top - 1]!) ||
      // MobileNet's top scores classes with a 1x1 Conv2D after the pooling
      (layers[top - 1]!.class_name === 'Conv2D' && layers.slice(0, top - 1).some((l) => l.class_name.startsWith('Global'))))
  )
    top--;
  return layers
    .slice(0, top)
    .slice(-count)
    .reverse()
    .map((l) => l.config.name);
}

/**
 * Where to cut a TF.js model for features: the named layer, or the last layer when the model does
 * not end in a classifier. Refuses a missing name (listing close ones) and a classifier top without
 * a name, whose outputs are class scores, not features.
 */
export function backboneCutIndex(layers: LayerConfig[], outputLayer: string | undefined, where: string): number {
  const names = layers.map((l) => l.config.name);
  if (outputLayer === undefined) {
    if (layers.length > 0 && isClassifierOutput(layers[layers.length - 1]!)) {
      throw new OptionError(
        'outputLayer',
        (option) =>
          `${where} ends in a classifier (${layers[layers.length - 1]!.class_name} '${names[names.length - 1]}'), whose outputs are class ` +
          `scores, not features. Choose the layer to take features from with ${option}, e.g. ${featureLayerCandidates(layers).join(', ')}.`,
      );
    }
    return layers.length - 1;
  }
  const cut = names.indexOf(outputLayer);
  if (cut >= 0) return cut;
  const close = names
    .map((n) => ({ n, d: editDistance(outputLayer, n) }))
    .filter(({ d }) => d <= Math.max(2, Math.floor(outputLayer.length / 3)))
    .sort((a, b) => a.d - b.d)
    .slice(0, 5)
    .map(({ n }) => n);
  throw new Error(
    `${where} has no layer '${outputLayer}' to take features from. ` +
      (close.length ? `Close names: ${close.join(', ')}. ` : '') +
      `Layers before its top: ${featureLayerCandidates(layers).join(', ')} (all ${names.length} layers: ${names.join(', ')}).`,
  );
}

export interface FromTfjsOptions {
  /** the layer whose output is the features; default the last layer, which must not be a classifier. */
  outputLayer?: string;
  /** input size to build the base for; default the model's own. */
  inputShape?: Shape;
  /** the preprocessing its weights were trained with; default `tf` (x / 127.5 - 1, as MobileNet). */
  preprocessing?: Preprocessing;
}

/**
 * Any TF.js layers model as a pretrained base (e.g. Keras MobileNet converted with
 * tensorflowjs_converter), cut after `outputLayer`.
 */
export async function fromTfjs(modelJsonPath: string, options: FromTfjsOptions = {}): Promise<Backbone> {
  const stored = await readTfjsLayersModel(modelJsonPath);
  const cut = backboneCutIndex(stored.layers, options.outputLayer, modelJsonPath);
  const outputLayer = stored.layers[cut]!.config.name;
  const layers = stored.layers.slice(0, cut + 1);
  const inputShape = options.inputShape ?? stored.inputShape;
  const weights = renameWeights(resolveChain(layers, inputShape), stored.weights);
  return {
    name: stored.name,
    layers,
    inputShape,
    weights,
    nativePreprocessing: options.preprocessing ?? 'tf',
    weightsId: hashWeights(weights),
    source: modelJsonPath,
    outputLayer,
  };
}
