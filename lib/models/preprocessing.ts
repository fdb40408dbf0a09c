import type { EngineLayerSpec } from '../engine/native.js';

/**
 * How raw 0-255 RGB pixels become model inputs. It runs inside the engine as the model's first
 * step, so batches cross into native code as compact uint8.
 * - `scale01`: x / 255 (the experiment's choice, for both models)
 * - `caffe`: Keras `vgg16.preprocess_input`: RGB -> BGR, minus the ImageNet mean (B, G, R)
 * - `tf`: x / 127.5 - 1 (MobileNet and other TF-trained models)
 * - `none`: pixels as they are (or float features from a cached frozen base)
 */
export type Preprocessing = 'scale01' | 'caffe' | 'tf' | 'none';

export const PREPROCESSING_MODES: Preprocessing[] = ['scale01', 'caffe', 'tf', 'none'];

export function parsePreprocessing(value: string): Preprocessing {
  if ((PREPROCESSING_MODES as string[]).includes(value)) return value as Preprocessing;
  throw new Error(`unknown preprocessing '${value}': use one of ${PREPROCESSING_MODES.join(', ')}`);
}

export function preprocessingSpec(mode: Preprocessing): EngineLayerSpec | undefined {
  const common = { name: `preprocess_${mode}`, className: 'Preprocessing', trainable: false } as const;
  switch (mode) {
    case 'scale01':
      return { ...common, kind: 'rescale', scale: 1 / 255 };
    case 'tf':
      return { ...common, kind: 'rescale', scale: 1 / 127.5, offset: [-1, -1, -1] };
    case 'caffe':
      return { ...common, kind: 'rescale', scale: 1, flipChannels: true, offset: [-103.939, -116.779, -123.68] };
    case 'none':
      return undefined;
  }
}
