import type { Shape } from '../keras-format/config.js';
import type { Sequential } from './sequential.js';

/**
 * Grad-CAM (Selvaraju et al., 2017): which parts of an image drove the score of a class. The engine
 * returns the last convolutional feature map A and dScore/dA; here each channel k is weighted by its
 * gradient averaged over the map, alpha_k = mean_ij dScore/dA_ij^k, and the map is
 * ReLU(sum_k alpha_k A^k), scaled to [0, 1] by its maximum (all zeros when nothing is positive).
 */

export interface GradCamMaps {
  /** name of the layer whose output was weighted. */
  layer: string;
  height: number;
  width: number;
  /** one map per example, row-major height x width, values in [0, 1]. */
  maps: Float32Array[];
}

/** Convolutional layers and what may follow them without leaving the feature map (its normalisation and activation). */
const CONVOLUTIONS = new Set(['Conv2D', 'DepthwiseConv2D', 'SeparableConv2D']);
const SAME_MAP = new Set(['BatchNormalization', 'Activation', 'ReLU', 'LeakyReLU', 'ELU']);

/**
 * Index of the layer whose output is the last convolutional feature map: the last convolution, with
 * the normalisation and activation layers right after it (for a transfer model, in its base);
 * undefined for a model without convolutions.
 */
export function lastConvolutionalLayer(model: Sequential): number | undefined {
  let last = -1;
  model.layers.forEach((l, i) => {
    if (CONVOLUTIONS.has(l.config.class_name)) last = i;
  });
  if (last < 0) return undefined;
  while (last + 1 < model.layers.length - 1 && SAME_MAP.has(model.layers[last + 1]!.config.class_name)) last++;
  return last;
}

/** Grad-CAM maps of `classes[i]` for each image of x (NHWC, as the model takes it). */
export function gradCam(
  model: Sequential,
  x: Uint8Array | Float32Array,
  shape: Shape,
  classes: number[],
  layer: number | undefined = lastConvolutionalLayer(model),
): GradCamMaps {
  if (layer === undefined) throw new Error(`model '${model.name}' has no convolutional layer: Grad-CAM needs one`);
  model.checkInput(shape, 0);
  if (layer < 0 || layer >= model.layers.length - 1) {
    throw new RangeError(`Grad-CAM layer index ${layer} is outside 0..${model.layers.length - 2}: it needs a layer with layers after it`);
  }
  const r = model.engine.gradCam(x, shape, model.engineIndex(layer + 1, true), classes);
  if (r.shape.length !== 4) {
    throw new Error(
      `Grad-CAM needs a spatial feature map, but layer '${model.layers[layer]!.config.config.name}' outputs (${r.shape.join(', ')})`,
    );
  }
  const [n, height, width, channels] = r.shape as [number, number, number, number];
  const pixels = height * width;
  const maps: Float32Array[] = [];
  for (let e = 0; e < n; e++) {
    const base = e * pixels * channels;
    const alpha = new Float64Array(channels);
    for (let p = 0; p < pixels; p++) for (let k = 0; k < channels; k++) alpha[k] += r.gradient[base + p * channels + k]! / pixels;
    const map = new Float32Array(pixels);
    let max = 0;
    for (let p = 0; p < pixels; p++) {
      let v = 0;
      for (let k = 0; k < channels; k++) v += alpha[k]! * r.featureMap[base + p * channels + k]!;
      map[p] = Math.max(v, 0);
      max = Math.max(max, map[p]!);
    }
    if (max > 0) for (let p = 0; p < pixels; p++) map[p]! /= max;
    maps.push(map);
  }
  return { layer: model.layers[layer]!.config.config.name, height, width, maps };
}
