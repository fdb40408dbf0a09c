/**
 * VGG16 (Simonyan & Zisserman 2014) as Keras's `applications/vgg16.py` has it: the architecture
 * with Keras's layer names, its ImageNet weight file, and its preprocessing (`caffe`).
 */

import os from 'node:os';
import path from 'node:path';
import { readKerasH5 } from '../io/keras-h5.js';
import { matchWeights } from '../io/weight-matching.js';
import type { LayerConfig, Shape } from '../keras-format/config.js';
import { keras3LayerKeys } from '../keras-format/weight-names.js';
import { layers } from '../models/layers.js';
import type { Preprocessing } from '../models/preprocessing.js';
import { resolveChain } from '../models/resolve.js';
import { type Artifact, artifactPath, fetchArtifact, locateArtifact } from '../net/artifacts.js';
import { type Backbone, hashWeights, renameWeights } from './backbone.js';

/** Keras `vgg16.preprocess_input`: RGB -> BGR, minus the ImageNet mean; the weights were trained so. */
export const VGG16_PREPROCESSING: Preprocessing = 'caffe';

const NOTOP_FILE = 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5';

/** The no-top ImageNet weight file as Keras publishes it (values and sources in docs/experiment.md). */
export const VGG16_WEIGHTS_ARTIFACT: Artifact = {
  id: 'vgg16-notop',
  aliases: ['vgg16'],
  description: 'Keras VGG16 ImageNet weights without the classifier top (HDF5)',
  fileName: NOTOP_FILE,
  urls: [
    `https://storage.googleapis.com/tensorflow/keras-applications/vgg16/${NOTOP_FILE}`,
    // The older release mirror; same file.
    `https://github.com/fchollet/deep-learning-models/releases/download/v0.1/${NOTOP_FILE}`,
  ],
  size: 58_889_256,
  md5: '6d6bbae143d832006294945121d1f1fc',
  // Keras caches this very file there; reuse it instead of downloading 59 MB again.
  alsoLookIn: () => [path.join(os.homedir(), '.keras', 'models')],
};

/** Keras `VGG16(include_top=False)` layer configs: 3x3 same convs, 2x2 max pools, InputLayer first. */
export function vgg16Layers(inputShape: Shape = [224, 224, 3]): LayerConfig[] {
  if (inputShape.length !== 3 || inputShape[0]! < 32 || inputShape[1]! < 32 || inputShape[2] !== 3) {
    throw new Error(`VGG16 needs an input of at least 32x32 with 3 channels, got [${inputShape.join(', ')}]`);
  }
  const out: LayerConfig[] = [layers.inputLayer({ inputShape, name: 'input_1' })];
  const blocks: [number, number][] = [
    [64, 2],
    [128, 2],
    [256, 3],
    [512, 3],
    [512, 3],
  ];
  blocks.forEach(([filters, convs], b) => {
    for (let c = 1; c <= convs; c++) {
      out.push(layers.conv2d({ name: `block${b + 1}_conv${c}`, filters, kernelSize: 3, padding: 'same', activation: 'relu' }));
    }
    out.push(layers.maxPooling2d({ name: `block${b + 1}_pool`, poolSize: 2, strides: 2 }));
  });
  return out;
}

/** The ImageNet weight file is neither on disk nor allowed to be downloaded. */
export class MissingWeightsError extends Error {
  constructor(readonly expectedPath: string) {
    super(
      `the VGG16 ImageNet weights are not on this machine. Allow the download (download: true), or download ` +
        `${NOTOP_FILE} elsewhere and put it at ${expectedPath}, or pass the path of ` +
        `a Keras HDF5 file as weights.`,
    );
  }
}

export interface Vgg16Options {
  /** only `false`: the 1000-class ImageNet classifier is not provided; give `transferModel` a head. */
  includeTop?: false;
  /**
   * `imagenet` (default; the Keras file, found in the cache or ~/.keras/models, or downloaded with
   * `download`), the path of a Keras HDF5 file (official, tf.keras or Keras 3 `.weights.h5`), or
   * `null` for Keras's random initialisation.
   */
  weights?: 'imagenet' | string | null;
  /** default [224, 224, 3]; any size from 32x32 works without the top. */
  inputShape?: Shape;
  cacheDir?: string;
  download?: boolean;
}

async function imagenetWeightsFile(options: Vgg16Options): Promise<string> {
  const found = await locateArtifact(VGG16_WEIGHTS_ARTIFACT, options.cacheDir);
  if (found) return found;
  if (options.download) return fetchArtifact(VGG16_WEIGHTS_ARTIFACT, { cacheDir: options.cacheDir });
  throw new MissingWeightsError(artifactPath(VGG16_WEIGHTS_ARTIFACT, options.cacheDir));
}

/** Keras `keras.applications.VGG16(include_top=False, ...)`, as a pretrained base cut at `block5_pool`. */
export async function vgg16(options: Vgg16Options = {}): Promise<Backbone> {
  if ((options.includeTop as boolean | undefined) === true) {
    throw new Error(
      'vgg16: includeTop: true (the ImageNet classifier) is not provided; use includeTop: false and give transferModel a head.',
    );
  }
  const inputShape = options.inputShape ?? [224, 224, 3];
  const baseLayers = vgg16Layers(inputShape).filter((l) => l.class_name !== 'InputLayer');
  const base = { name: 'vgg16', layers: baseLayers, inputShape, nativePreprocessing: VGG16_PREPROCESSING, outputLayer: 'block5_pool' };
  const weightsOption = options.weights === undefined ? 'imagenet' : options.weights;
  if (weightsOption === null) return { ...base, weights: [], weightsId: 'random-init', source: 'random initialisation' };
  const file = weightsOption === 'imagenet' ? await imagenetWeightsFile(options) : weightsOption;
  const resolved = resolveChain(baseLayers, inputShape);
  const { layout, layers: found } = await readKerasH5(file);
  const names = layout === 'keras3' ? keras3LayerKeys(baseLayers) : baseLayers.map((l) => l.config.name);
  const expected = resolved.map((r, i) => ({ layerName: names[i]!, shapes: r.weights.map((w) => w.shape) }));
  // The official file also lists the input layer (no weights); files may carry a top we don't use.
  const relevant = found.filter((l) => l.weights.length > 0 || names.includes(l.layerName));
  const matched = matchWeights(expected, relevant, { source: file });
  const weights = renameWeights(
    resolved,
    matched.map((m, i) => ({ layerName: baseLayers[i]!.config.name, weights: m.weights })),
  );
  return { ...base, weights, weightsId: hashWeights(weights), source: file };
}
