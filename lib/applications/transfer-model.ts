import type { LayerConfig, Shape } from '../keras-format/config.js';
import type { DtypePolicyName } from '../models/mixed-precision.js';
import type { Preprocessing } from '../models/preprocessing.js';
import { type DeviceName, Sequential } from '../models/sequential.js';
import type { Backbone } from './backbone.js';

export interface TransferModelOptions {
  /** the pretrained base, from `vgg16()` or `fromTfjs()`. */
  base: Backbone;
  /** the layers on top, e.g. Flatten, Dense 64 relu, Dense 1 sigmoid. */
  head: LayerConfig[];
  /** default false: the base is frozen (Keras `base.trainable = False`) and only the head learns. */
  trainableBase?: boolean;
  /** input size the base was built for; default the base's own (its first layer's). */
  inputShape?: Shape;
  /** default the base's native preprocessing (`caffe` for VGG16, `tf` for TF.js bases). */
  preprocessing?: Preprocessing;
  name?: string;
  seed?: number;
  /** augmentation layers before the base (RandomFlip, ...); they count as part of the base. */
  augmentation?: LayerConfig[];
  /** dtype policy of the model, the base included (default: the global policy). */
  dtype?: DtypePolicyName;
  /** where the model runs (default cpu); see SequentialOptions.device */
  device?: DeviceName;
}

/**
 * Keras's transfer-learning recipe as one model: the pretrained base (with its weights), frozen
 * unless `trainableBase`, followed by the head. Layers [0, baseLayers) are the base, after any
 * augmentation layers (which have no weights, so freezing does not concern them).
 */
export class TransferModel extends Sequential {
  readonly base: Backbone;
  readonly baseLayers: number;

  constructor(options: TransferModelOptions) {
    const trainable = options.trainableBase ?? false;
    // the base follows the model's policy: the 'float32' its file records is Keras's default, not a choice
    const baseConfigs = options.base.layers.map((l) => ({
      class_name: l.class_name,
      config: { ...l.config, trainable, dtype: undefined },
    }));
    const augmentation = options.augmentation ?? [];
    super([...augmentation, ...baseConfigs, ...options.head], {
      name: options.name ?? 'transfer',
      inputShape: options.inputShape ?? options.base.inputShape,
      seed: options.seed,
      dtype: options.dtype,
      device: options.device,
      preprocessing: options.preprocessing ?? options.base.nativePreprocessing,
    });
    this.base = options.base;
    this.baseLayers = augmentation.length + baseConfigs.length;
    this.setWeights(options.base.weights);
  }
}

export function transferModel(options: TransferModelOptions): TransferModel {
  return new TransferModel(options);
}
