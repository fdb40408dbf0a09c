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

/**
 * Any TF.js layers model as a pretrained base (e.g. Keras MobileNet converted with
 * tensorflowjs_converter), cut after `outputLayer` (default: the last layer).
 */
export async function loadTfjsBackbone(modelJsonPath: string, options: { inputShape?: Shape; outputLayer?: string; preprocessing?: Preprocessing } = {}): Promise<Backbone> {
  const stored = await readTfjsLayersModel(modelJsonPath);
  const names = stored.layers.map((l) => l.config.name);
  const outputLayer = options.outputLayer ?? names[names.length - 1];
  const cut = names.indexOf(outputLayer);
  if (cut < 0) {
    throw new Error(`${modelJsonPath} has no layer '${outputLayer}' to take features from. Its layers: ${names.join(', ')}`);
  }
  const layers = stored.layers.slice(0, cut + 1);
  const inputShape = options.inputShape ?? stored.inputShape;
  const weights = renameWeights(resolveChain(layers, inputShape), stored.weights);
  return {
    name: stored.name, layers, weights, nativePreprocessing: options.preprocessing ?? 'tf',
    weightsId: hashWeights(weights), source: modelJsonPath, outputLayer,
  };
}
