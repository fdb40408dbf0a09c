import type { LayerConfig, Shape } from '../keras-format/config.js';
import { layers } from './layers.js';
import { Sequential, type SequentialOptions } from './sequential.js';

/**
 * The experiment's two models (docs/experiment.md), layer for layer as in the Keras original.
 */

/** 5 x [Conv2D 3x3 relu + MaxPooling2D 2x2] (32, 32, 64, 64, 128), Flatten, Dense 512, 32, 1. */
export function experimentCnnLayers(inputShape: Shape = [300, 300, 3]): LayerConfig[] {
  const out: LayerConfig[] = [];
  [32, 32, 64, 64, 128].forEach((filters, i) => {
    out.push(layers.conv2d({ filters, kernelSize: 3, activation: 'relu', ...(i === 0 ? { inputShape } : {}) }));
    out.push(layers.maxPooling2d({ poolSize: 2 }));
  });
  out.push(
    layers.flatten(),
    layers.dense({ units: 512, activation: 'relu' }),
    layers.dense({ units: 32, activation: 'relu' }),
    layers.dense({ units: 1, activation: 'sigmoid' }),
  );
  return out;
}

export function experimentCnn(inputShape: Shape = [300, 300, 3], options: SequentialOptions = {}): Sequential {
  return new Sequential(experimentCnnLayers(inputShape), { name: 'cnn', preprocessing: 'scale01', ...options });
}

/** The experiment's transfer head: Flatten, Dense 64 relu, Dense 1 sigmoid. */
export function defaultHeadLayers(options: { hiddenUnits?: number[]; classes?: number; dropout?: number } = {}): LayerConfig[] {
  const classes = options.classes ?? 2;
  const head: LayerConfig[] = [layers.flatten()];
  for (const units of options.hiddenUnits ?? [64]) {
    head.push(layers.dense({ units, activation: 'relu' }));
    if (options.dropout) head.push(layers.dropout({ rate: options.dropout }));
  }
  head.push(classes === 2 ? layers.dense({ units: 1, activation: 'sigmoid' }) : layers.dense({ units: classes, activation: 'softmax' }));
  return head;
}

/** Same as experimentCnn for any number of classes (softmax output when more than two). */
export function cnnForClasses(
  inputShape: Shape,
  classes: number,
  options: SequentialOptions & { augmentation?: LayerConfig[] } = {},
): Sequential {
  const { augmentation = [], ...rest } = options;
  const configs = experimentCnnLayers(inputShape);
  if (classes > 2) configs[configs.length - 1] = layers.dense({ units: classes, activation: 'softmax' });
  return new Sequential([...augmentation, ...configs], { name: 'cnn', preprocessing: 'scale01', inputShape, ...rest });
}
