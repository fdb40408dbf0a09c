import { createHash } from 'node:crypto';
import type { LayerConfig, LayerWeights, Shape } from '../keras-format/config.js';
import type { Preprocessing } from '../models/preprocessing.js';
import type { ResolvedLayer } from '../models/resolve.js';

/** A pretrained convolutional base, cut where its features are taken, with its weights. */
export interface Backbone {
  /** short name for reports and cache keys, e.g. `vgg16`, `mobilenet_1.00_224`. */
  name: string;
  /** layers up to and including the output layer, without the InputLayer. */
  layers: LayerConfig[];
  /** the input size the layers were built for, [height, width, channels]. */
  inputShape: Shape;
  weights: LayerWeights[];
  /** the preprocessing the weights were trained with (the user may choose another). */
  nativePreprocessing: Preprocessing;
  /** sha256 over the weight values: part of the feature-cache key (`random-init` without weights: never cache those). */
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
export function renameWeights(resolved: ResolvedLayer[], found: LayerWeights[]): LayerWeights[] {
  const byName = new Map(found.map((l) => [l.layerName, l]));
  return resolved
    .filter((r) => r.weights.length > 0)
    .map((r) => {
      const name = r.config.config.name;
      const source = byName.get(name)!;
      return {
        layerName: name,
        weights: r.weights.map((w, i) => ({ name: `${name}/${w.name}`, shape: w.shape, data: source.weights[i].data })),
      };
    });
}
