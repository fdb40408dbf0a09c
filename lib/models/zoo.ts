import type { LayerConfig, Shape } from './config.js';
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
  out.push(layers.flatten(), layers.dense({ units: 512, activation: 'relu' }), layers.dense({ units: 32, activation: 'relu' }), layers.dense({ units: 1, activation: 'sigmoid' }));
  return out;
}

export function experimentCnn(inputShape: Shape = [300, 300, 3], options: SequentialOptions = {}): Sequential {
  return new Sequential(experimentCnnLayers(inputShape), { name: 'cnn', preprocessing: 'scale01', ...options });
}

/** Keras `VGG16(include_top=False)`: Keras's layer names, 3x3 same convs, 2x2 max pools. */
export function vgg16BaseLayers(inputShape: Shape = [300, 300, 3]): LayerConfig[] {
  if (inputShape.length !== 3 || inputShape[0] < 32 || inputShape[1] < 32 || inputShape[2] !== 3) {
    throw new Error(`VGG16 needs an input of at least 32x32 with 3 channels, got [${inputShape.join(', ')}]`);
  }
  const out: LayerConfig[] = [layers.inputLayer({ inputShape, name: 'input_1' })];
  const blocks: [number, number][] = [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]];
  blocks.forEach(([filters, convs], b) => {
    for (let c = 1; c <= convs; c++) {
      out.push(layers.conv2d({ name: `block${b + 1}_conv${c}`, filters, kernelSize: 3, padding: 'same', activation: 'relu' }));
    }
    out.push(layers.maxPooling2d({ name: `block${b + 1}_pool`, poolSize: 2, strides: 2 }));
  });
  return out;
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
export function cnnForClasses(inputShape: Shape, classes: number, options: SequentialOptions = {}): Sequential {
  const configs = experimentCnnLayers(inputShape);
  if (classes > 2) configs[configs.length - 1] = layers.dense({ units: classes, activation: 'softmax' });
  return new Sequential(configs, { name: 'cnn', preprocessing: 'scale01', ...options });
}
