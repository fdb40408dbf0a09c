import { createHash } from 'node:crypto';
import type { LayerConfig, LayerWeights, Shape } from './config.js';
import { readKerasH5 } from '../io/keras-h5.js';
import { matchWeights } from '../io/weight-matching.js';
import { keras3LayerKeys } from '../io/weight-names.js';
import { readTfjsLayersModel } from '../io/tfjs-model.js';
import { locateArtifact, fetchArtifact, artifactPath } from '../net/artifacts.js';
import { resolveChain, type ResolvedLayer } from './resolve.js';
import { vgg16BaseLayers } from './zoo.js';
import type { Preprocessing } from './preprocessing.js';

/** A pretrained convolutional base, cut where its features are taken, with its weights. */
export interface Backbone {
  /** short name for reports and cache keys, e.g. `vgg16`, `mobilenet_1.00_224`. */
  name: string;
  /** layers up to and including the output layer, without the InputLayer. */
  layers: LayerConfig[];
  weights: LayerWeights[];
  /** the preprocessing the weights were trained with (the user may choose another). */
  nativePreprocessing: Preprocessing;
  /** sha256 over the weight values: part of the feature-cache key. */
  weightsId: string;
  /** where the weights came from. */
  source: string;
  outputLayer: string;
}

export function hashWeights(weights: LayerWeights[]): string {
  const hash = createHash('sha256');
  for (const layer of weights) {
    hash.update(layer.layerName);
    for (const w of layer.weights) hash.update(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength));
  }
  return hash.digest('hex');
}

/** Renames weights to the `<layer>/<kernel|bias|...>` form the model uses, in layer order. */
function renameWeights(resolved: ResolvedLayer[], found: LayerWeights[]): LayerWeights[] {
  const byName = new Map(found.map((l) => [l.layerName, l]));
  return resolved.filter((r) => r.weights.length > 0).map((r) => {
    const name = r.config.config.name;
    const source = byName.get(name)!;
    return { layerName: name, weights: r.weights.map((w, i) => ({ name: `${name}/${w.name}`, shape: w.shape, data: source.weights[i].data })) };
  });
}

/**
 * Keras VGG16 (`include_top=False`) with ImageNet weights from a Keras HDF5 file: the official
 * `vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`, a tf.keras save, or a Keras 3
 * `.weights.h5`. Without `weightsPath`, the file is looked up in the cache and ~/.keras/models,
 * and downloaded when `download` is set.
 */
export async function loadVgg16Backbone(options: { inputShape: Shape; weightsPath?: string; cacheDir?: string; download?: boolean }): Promise<Backbone> {
  let file = options.weightsPath;
  if (!file) {
    file = await locateArtifact('vgg16-notop', options.cacheDir);
    if (!file && options.download) file = await fetchArtifact('vgg16-notop', { cacheDir: options.cacheDir });
    if (!file) {
      throw new Error(
        `the VGG16 ImageNet weights are not on this machine. Run \`transferlab weights fetch vgg16\`, or download ` +
          `vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 elsewhere and put it at ${artifactPath('vgg16-notop', options.cacheDir)} ` +
          `(or pass --weights PATH), or use another pretrained base with --backbone path/to/model.json.`,
      );
    }
  }
  const layers = vgg16BaseLayers(options.inputShape).filter((l) => l.class_name !== 'InputLayer');
  const resolved = resolveChain(layers, options.inputShape);
  const { layout, layers: found } = await readKerasH5(file);
  const names = layout === 'keras3' ? keras3LayerKeys(layers) : layers.map((l) => l.config.name);
  const expected = resolved.map((r, i) => ({ layerName: names[i], shapes: r.weights.map((w) => w.shape) }));
  // The official file also lists the input layer (no weights); files may carry a top we don't use.
  const relevant = found.filter((l) => l.weights.length > 0 || names.includes(l.layerName));
  const matched = matchWeights(expected, relevant, { source: file });
  const weights = renameWeights(resolved, matched.map((m, i) => ({ layerName: layers[i].config.name, weights: m.weights })));
  return { name: 'vgg16', layers, weights, nativePreprocessing: 'caffe', weightsId: hashWeights(weights), source: file, outputLayer: 'block5_pool' };
}

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
  while (top > 0 && (TOP_LAYERS.has(layers[top - 1]!.class_name) || isClassifierOutput(layers[top - 1]!) ||
    // MobileNet's top scores classes with a 1x1 Conv2D after the pooling
    (layers[top - 1]!.class_name === 'Conv2D' && layers.slice(0, top - 1).some((l) => l.class_name.startsWith('Global'))))) top--;
  return layers.slice(0, top).slice(-count).reverse().map((l) => l.config.name);
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
      throw new Error(
        `${where} ends in a classifier (${layers[layers.length - 1]!.class_name} '${names[names.length - 1]}'), whose outputs are class ` +
          `scores, not features. Choose the layer to take features from with --backbone-output, e.g. ${featureLayerCandidates(layers).join(', ')}.`,
      );
    }
    return layers.length - 1;
  }
  const cut = names.indexOf(outputLayer);
  if (cut >= 0) return cut;
  const close = names.map((n) => ({ n, d: editDistance(outputLayer, n) }))
    .filter(({ d }) => d <= Math.max(2, Math.floor(outputLayer.length / 3))).sort((a, b) => a.d - b.d).slice(0, 5).map(({ n }) => n);
  throw new Error(
    `${where} has no layer '${outputLayer}' to take features from. ` +
      (close.length ? `Close names: ${close.join(', ')}. ` : '') +
      `Layers before its top: ${featureLayerCandidates(layers).join(', ')} (all ${names.length} layers: ${names.join(', ')}).`,
  );
}

/**
 * Any TF.js layers model as a pretrained base (e.g. Keras MobileNet converted with
 * tensorflowjs_converter), cut after `outputLayer`; without it, after the last layer, which must
 * not be a classifier.
 */
export async function loadTfjsBackbone(modelJsonPath: string, options: { inputShape?: Shape; outputLayer?: string; preprocessing?: Preprocessing } = {}): Promise<Backbone> {
  const stored = await readTfjsLayersModel(modelJsonPath);
  const cut = backboneCutIndex(stored.layers, options.outputLayer, modelJsonPath);
  const outputLayer = stored.layers[cut]!.config.name;
  const layers = stored.layers.slice(0, cut + 1);
  const inputShape = options.inputShape ?? stored.inputShape;
  const weights = renameWeights(resolveChain(layers, inputShape), stored.weights);
  return {
    name: stored.name, layers, weights, nativePreprocessing: options.preprocessing ?? 'tf',
    weightsId: hashWeights(weights), source: modelJsonPath, outputLayer,
  };
}
