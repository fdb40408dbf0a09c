import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ExpectedLayerWeights, matchWeights, WeightMismatchError } from '../lib/io/weight-matching.js';
import type { LayerWeights } from '../lib/keras-format/config.js';
import { canonicalWeightName, keras3LayerKeys, kerasSnakeCase, shortWeightName } from '../lib/keras-format/weight-names.js';

const SOURCE = '/models/vgg16.h5';

function layer(layerName: string, ...shapes: number[][]): LayerWeights {
  return {
    layerName,
    weights: shapes.map((shape, i) => ({
      name: `${layerName}/w${i}`,
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(i + 1),
    })),
  };
}

const EXPECTED: ExpectedLayerWeights[] = [
  { layerName: 'conv_a', shapes: [[3, 3, 3, 8], [8]] },
  { layerName: 'pool_a', shapes: [] },
  { layerName: 'conv_b', shapes: [[3, 3, 8, 16], [16]] },
];

/** Runs matchWeights expecting a WeightMismatchError and returns its problems. */
function problemsOf(expected: ExpectedLayerWeights[], found: LayerWeights[]): string[] {
  try {
    matchWeights(expected, found, { source: SOURCE });
  } catch (error) {
    assert.ok(error instanceof WeightMismatchError);
    assert.ok(error.message.startsWith(`${SOURCE}: ${error.problems.length} weight problem`));
    for (const problem of error.problems) assert.ok(error.message.includes(problem), 'every problem is in the message');
    return error.problems;
  }
  assert.fail('matchWeights accepted mismatched weights');
}

test('matching returns the found weights in the expected order, with empty entries for weightless layers', () => {
  const found = [layer('conv_b', [3, 3, 8, 16], [16]), layer('input_1'), layer('conv_a', [3, 3, 3, 8], [8])];
  const matched = matchWeights(EXPECTED, found, { source: SOURCE });
  assert.deepEqual(
    matched.map((l) => l.layerName),
    ['conv_a', 'pool_a', 'conv_b'],
  );
  assert.equal(matched[0], found[2], 'the file entry itself, data untouched');
  assert.deepEqual(matched[1]!.weights, []);
});

test('a missing layer names the layer, the file and the expected shapes', () => {
  const [problem, ...rest] = problemsOf(EXPECTED, [layer('conv_a', [3, 3, 3, 8], [8])]);
  assert.equal(rest.length, 0);
  assert.equal(problem, `layer "conv_b": not found in ${SOURCE}; the model expects 2 weights with shapes [3, 3, 8, 16], [16]`);
});

test('a wrong shape names the layer, the weight and both shapes', () => {
  const problems = problemsOf(EXPECTED, [layer('conv_a', [3, 3, 3, 8], [8]), layer('conv_b', [3, 3, 8, 32], [16])]);
  assert.deepEqual(problems, [`layer "conv_b" weight 0 ("conv_b/w0"): ${SOURCE} has shape [3, 3, 8, 32], the model expects [3, 3, 8, 16]`]);
});

test('a wrong number of weights names the layer and both shape lists', () => {
  const problems = problemsOf(EXPECTED, [layer('conv_a', [3, 3, 3, 8]), layer('conv_b', [3, 3, 8, 16], [16])]);
  assert.deepEqual(problems, [
    `layer "conv_a": ${SOURCE} has 1 weight with shapes [3, 3, 3, 8], the model expects 2 weights with shapes [3, 3, 3, 8], [8]`,
  ]);
});

test('weights for a layer the model does not have are an error; weightless extra layers are not', () => {
  const found = [layer('conv_a', [3, 3, 3, 8], [8]), layer('conv_b', [3, 3, 8, 16], [16]), layer('fc1', [10, 4], [4]), layer('input_1')];
  const problems = problemsOf(EXPECTED, found);
  assert.deepEqual(problems, [`layer "fc1": ${SOURCE} has 2 weights with shapes [10, 4], [4] but the model has no layer of that name`]);
});

test('a weight whose data does not fill its shape is an error', () => {
  const bad = layer('conv_a', [3, 3, 3, 8], [8]);
  bad.weights[1]!.data = new Float32Array(7);
  const problems = problemsOf(EXPECTED, [bad, layer('conv_b', [3, 3, 8, 16], [16])]);
  assert.deepEqual(problems, [`layer "conv_a" weight 1 ("conv_a/w1"): shape [8] needs 8 values, the data has 7`]);
});

test('all problems are reported together, not only the first', () => {
  const found = [layer('conv_a', [3, 3, 3, 4], [4]), layer('pool_a', [1]), layer('extra', [2])];
  const problems = problemsOf(EXPECTED, found);
  assert.equal(problems.length, 5);
  assert.match(problems[0]!, /^layer "conv_a" weight 0 .* has shape \[3, 3, 3, 4\], the model expects \[3, 3, 3, 8\]$/);
  assert.match(problems[1]!, /^layer "conv_a" weight 1 .* has shape \[4\], the model expects \[8\]$/);
  assert.match(problems[2]!, /^layer "pool_a": .* has 1 weight with shapes \[1\], the model expects 0 weights with shapes none$/);
  assert.match(problems[3]!, /^layer "conv_b": not found in /);
  assert.match(problems[4]!, /^layer "extra": .* but the model has no layer of that name$/);
});

test('a layer listed twice in the file is an error', () => {
  const problems = problemsOf(EXPECTED, [
    layer('conv_a', [3, 3, 3, 8], [8]),
    layer('conv_a', [3, 3, 3, 8], [8]),
    layer('conv_b', [3, 3, 8, 16], [16]),
  ]);
  assert.deepEqual(problems, [`layer "conv_a" appears more than once in ${SOURCE}`]);
});

test('weight names from every writer normalise to <layer>/<weight>', () => {
  assert.equal(canonicalWeightName('block1_conv1', 'block1_conv1_W_1:0'), 'block1_conv1/kernel');
  assert.equal(canonicalWeightName('block1_conv1', 'block1_conv1_b_1:0'), 'block1_conv1/bias');
  assert.equal(canonicalWeightName('block1_conv1', 'block1_conv1/kernel:0'), 'block1_conv1/kernel');
  assert.equal(canonicalWeightName('block1_conv1', 'block1_conv1/kernel'), 'block1_conv1/kernel');
  assert.equal(canonicalWeightName('vgg16', 'block1_conv1/kernel:0'), 'vgg16/kernel', 'the layer name given wins');
  assert.equal(shortWeightName('bn', 'bn/moving_variance:0'), 'moving_variance');
});

test('Keras 3 store keys: snake-cased class names numbered per class', () => {
  assert.equal(kerasSnakeCase('Conv2D'), 'conv2d');
  assert.equal(kerasSnakeCase('MaxPooling2D'), 'max_pooling2d');
  assert.equal(kerasSnakeCase('BatchNormalization'), 'batch_normalization');
  assert.equal(kerasSnakeCase('DepthwiseConv2D'), 'depthwise_conv2d');
  assert.equal(kerasSnakeCase('InputLayer'), 'input_layer');
  const keys = keras3LayerKeys(['InputLayer', 'Conv2D', 'Conv2D', 'MaxPooling2D', 'Conv2D', 'Dense'].map((class_name) => ({ class_name })));
  assert.deepEqual(keys, ['input_layer', 'conv2d', 'conv2d_1', 'max_pooling2d', 'conv2d_2', 'dense']);
});
