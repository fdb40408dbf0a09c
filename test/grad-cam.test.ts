/**
 * Grad-CAM against naive computations on tiny models: for conv -> GAP -> dense the class score is
 * linear in the feature map, so dScore/dA^k = W[k, c] / (h w) and the map is ReLU(sum_k W[k, c] A^k)
 * up to scale; for conv -> max pool -> flatten -> dense the engine's gradient is checked against
 * finite differences of the class score (the logit) computed from the feature map forward.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradCam, lastConvolutionalLayer } from '../lib/models/grad-cam.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import * as naive from './helpers/naive.js';
import { assertClose, Rng } from './helpers/naive.js';

const [H, W, C, F] = [6, 5, 2, 3];

function randomWeights(m: Sequential, layer: number, rng: Rng): Float32Array[] {
  const values = m.layers[layer]!.weights.map((w) => rng.floats(naive.prod(w.shape), -0.8, 0.8));
  m.setLayerWeights(layer, values);
  return values;
}

/** The naive Grad-CAM map from a feature map [h, w, k] and channel weights: ReLU, scaled to max 1. */
function naiveCam(features: Float64Array, pixels: number, channels: number, weights: ArrayLike<number>): number[] {
  const map = Array.from({ length: pixels }, (_, p) => {
    let v = 0;
    for (let k = 0; k < channels; k++) v += weights[k]! * features[p * channels + k]!;
    return Math.max(v, 0);
  });
  const max = Math.max(...map);
  return map.map((v) => (max > 0 ? v / max : 0));
}

test('conv -> GAP -> dense softmax: Grad-CAM is ReLU(sum_k W[k, c] A^k), the gradient W[k, c] / (h w)', () => {
  const rng = new Rng(7);
  const model = new Sequential(
    [
      layers.conv2d({ filters: F, kernelSize: [3, 3], activation: 'relu', inputShape: [H, W, C] }),
      layers.globalAveragePooling2d(),
      layers.dense({ units: 2, activation: 'softmax' }),
    ],
    { preprocessing: 'none', name: 'gap' },
  );
  const [kernel, bias] = randomWeights(model, 0, rng);
  const [dense] = randomWeights(model, 2, rng);
  randomWeights(model, 1, rng);
  const x = rng.floats(2 * H * W * C, -1, 1);
  const features = naive.activation(naive.conv2d(naive.tensor(x, [2, H, W, C]), kernel!, [3, 3, C, F], bias), 'relu');
  const [, h, w] = features.shape as [number, number, number, number];
  const classes = [1, 0];

  assert.equal(lastConvolutionalLayer(model), 0);
  const raw = model.engine.gradCam(x, [2, H, W, C], model.engineIndex(1, true), classes);
  assert.deepEqual(raw.shape, [2, h, w, F]);
  assertClose(raw.featureMap, features.data, { what: 'feature map' });
  const expectedGradient = classes.flatMap((c) =>
    Array.from({ length: h * w }, () => Array.from({ length: F }, (_, k) => dense![k * 2 + c]! / (h * w))).flat(),
  );
  assertClose(raw.gradient, expectedGradient, { what: 'dScore/dA' });

  const cams = gradCam(model, x, [2, H, W, C], classes);
  assert.equal(cams.layer, model.layers[0]!.config.config.name);
  assert.deepEqual([cams.height, cams.width, cams.maps.length], [h, w, 2]);
  classes.forEach((c, e) => {
    const channelWeights = Array.from({ length: F }, (_, k) => dense![k * 2 + c]!);
    const expected = naiveCam(features.data.subarray(e * h * w * F, (e + 1) * h * w * F), h * w, F, channelWeights);
    assertClose(cams.maps[e]!, expected, { what: `map of example ${e}, class ${c}` });
  });
});

test('one sigmoid unit: class 1 scores the logit z, class 0 scores -z (opposite gradients)', () => {
  const rng = new Rng(11);
  const model = new Sequential(
    [
      layers.conv2d({ filters: F, kernelSize: [2, 2], activation: 'relu', inputShape: [H, W, C] }),
      layers.globalAveragePooling2d(),
      layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
    { preprocessing: 'none', name: 'sigmoid' },
  );
  randomWeights(model, 0, rng);
  const [dense] = randomWeights(model, 2, rng);
  const x = rng.floats(H * W * C, -1, 1);
  const one = model.engine.gradCam(x, [1, H, W, C], model.engineIndex(1, true), [1]);
  const zero = model.engine.gradCam(x, [1, H, W, C], model.engineIndex(1, true), [0]);
  const pixels = one.shape[1]! * one.shape[2]!;
  const expected = Array.from({ length: pixels }, () => Array.from(dense!, (v) => v / pixels)).flat();
  assertClose(one.gradient, expected, { what: 'class 1 gradient' });
  assertClose(
    zero.gradient,
    expected.map((v) => -v),
    { what: 'class 0 gradient' },
  );
  assert.throws(() => model.engine.gradCam(x, [1, H, W, C], model.engineIndex(1, true), [2]), /class 2 is outside 0\.\.1/);
  assert.throws(() => model.engine.gradCam(x, [1, H, W, C], model.engineIndex(1, true), [0, 1]), /1 examples but 2 classes/);
});

test('conv -> max pool -> flatten -> dense: the engine gradient matches finite differences of the logit', async () => {
  const rng = new Rng(3);
  const model = new Sequential(
    [
      // tanh, not relu: a pool window of ReLU zeros is a tie, where the score has no derivative to compare
      layers.conv2d({ filters: F, kernelSize: [3, 3], padding: 'same', activation: 'tanh', inputShape: [H, W, C] }),
      layers.maxPooling2d({ poolSize: [2, 2] }),
      layers.flatten(),
      layers.dense({ units: 4, activation: 'relu' }),
      layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
    { preprocessing: 'none', name: 'pooled' },
  );
  for (const i of [0, 3, 4]) randomWeights(model, i, rng);
  const x = rng.floats(H * W * C, -1, 1);
  const raw = model.engine.gradCam(x, [1, H, W, C], model.engineIndex(1, true), [1]);
  const shape = raw.shape;
  // the logit from the feature map on, as the engine's own forward computes it (float64 via log-odds)
  const logit = async (features: Float32Array) => {
    const p = (await model.predict(features, shape, { fromLayer: 1 })).output[0]!;
    return Math.log(p / (1 - p));
  };
  const eps = 1e-3;
  const numeric: number[] = [];
  const analytic: number[] = [];
  // every entry: max pool routes three in four entries' gradient to zero, and the finite difference agrees
  for (let i = 0; i < raw.featureMap.length; i++) {
    const plus = Float32Array.from(raw.featureMap);
    const minus = Float32Array.from(raw.featureMap);
    plus[i]! += eps;
    minus[i]! -= eps;
    numeric.push(((await logit(plus)) - (await logit(minus))) / (2 * eps));
    analytic.push(raw.gradient[i]!);
  }
  assert.ok(
    analytic.some((g) => Math.abs(g) > 1e-3),
    'some feature-map entries move the score',
  );
  assertClose(analytic, numeric, { atol: 2e-3, rtol: 2e-2, what: 'dLogit/dA' });
});

test('a model without convolutions has no Grad-CAM layer, and asking for one says so', () => {
  const model = new Sequential([layers.flatten({ inputShape: [2, 2, 1] }), layers.dense({ units: 1, activation: 'sigmoid' })], {
    preprocessing: 'none',
    name: 'flat',
  });
  assert.equal(lastConvolutionalLayer(model), undefined);
  assert.throws(() => gradCam(model, new Float32Array(4), [1, 2, 2, 1], [0]), /model 'flat' has no convolutional layer/);
});
