import type { Backbone } from '../applications/backbone.js';
import { fromTfjs } from '../applications/tfjs.js';
import { vgg16 } from '../applications/vgg16.js';
import type { Shape } from '../keras-format/config.js';
import type { CompareConfig } from './config.js';

/** The run's pretrained base: VGG16 (its ImageNet file, or the HDF5 file the run names) or a TF.js model. */
export function loadBackbone(config: CompareConfig, inputShape: Shape): Promise<Backbone> {
  return config.backbone === 'vgg16'
    ? vgg16({ includeTop: false, weights: config.weights ?? 'imagenet', inputShape, cacheDir: config.cacheDir, download: config.download })
    : fromTfjs(config.backbone, { inputShape, outputLayer: config.backboneOutput });
}
