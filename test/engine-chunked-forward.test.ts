/**
 * Bounded memory for the layers no gradient flows through (src/chunked-forward.cc): inference, and
 * the frozen prefix of a training step, run a chunk of rows at a time. Each case runs two identical
 * models side by side, one in chunks (a budget that splits 10 rows into 4 + 4 + 2) and one on
 * whole batches (what the engine did before), and checks that the chunks were taken (layer timing
 * counts one forward call per chunk) and that outputs, losses and trained weights are the same.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../lib/engine/native.js';
import type { LayerConfig } from '../lib/keras-format/config.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { needsBf16, withLayerTimes, withSetting } from './helpers/engine-settings.js';
import { maxAbsDiff, Rng } from './helpers/naive.js';

const N = 10;
const SHAPE = [N, 12, 12, 3];
/** base_conv1's output, 10 x 10 x 6 floats a row, is the largest activation: 4 rows fit this budget */
const CHUNK_BYTES = 4 * 600 * 4;
const CHUNKS = 3; // rows 4, 4, 2

/** A frozen conv base (BatchNormalization with non-trivial moving statistics) and a trainable head. */
function build(options: { augment?: boolean; dropoutInBase?: boolean; dtype?: 'float32' | 'mixed_bfloat16' }): Sequential {
  const frozen = { trainable: false };
  const configs: LayerConfig[] = [
    ...(options.augment
      ? [layers.randomFlip({ seed: 3 }), layers.randomTranslation({ heightFactor: 0.2, widthFactor: 0.2, seed: 4 })]
      : []),
    layers.conv2d({ filters: 6, kernelSize: 3, activation: 'relu', name: 'base_conv1', ...frozen }),
    layers.batchNormalization({ name: 'base_bn', ...frozen }),
    ...(options.dropoutInBase ? [layers.dropout({ rate: 0.3, name: 'base_dropout', ...frozen })] : []),
    layers.maxPooling2d({ poolSize: 2 }),
    layers.conv2d({ filters: 8, kernelSize: 3, activation: 'relu', name: 'base_conv2', ...frozen }),
    layers.flatten({ name: 'flatten' }),
    layers.dense({ units: 5, activation: 'relu', name: 'head' }),
    layers.dropout({ rate: 0.2 }),
    layers.dense({ units: 1, activation: 'sigmoid', name: 'out' }),
  ];
  const model = new Sequential(configs, { seed: 7, inputShape: SHAPE.slice(1), dtype: options.dtype ?? 'float32' });
  const rng = new Rng(5);
  model.setLayerWeights('base_bn', [rng.floats(6, 0.5, 1.5), rng.floats(6, -0.5, 0.5), rng.floats(6, -0.2, 0.2), rng.floats(6, 0.5, 2)]);
  model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  return model;
}

const rng = new Rng(9);
const batches = [0, 1, 2].map(() => rng.bytes(N * 12 * 12 * 3));
const labels = Float32Array.from({ length: N }, (_, i) => i % 2);

/** Runs `work` under a chunk budget (Infinity: whole batches) and counts each named layer's forward calls. */
async function counted<T>(bytes: number, work: () => Promise<T>, names: string[]): Promise<{ result: T; calls: number[] }> {
  return withSetting(native().setForwardChunkBytes, bytes, async () => {
    const { result, rows } = await withLayerTimes(work);
    return { result, calls: names.map((name) => rows.find((r) => r.layer === name)?.forwardCalls ?? 0) };
  });
}

function allWeights(model: Sequential): Float32Array[] {
  return model.getWeights().flatMap((l) => l.weights.map((w) => w.data));
}

/** Bitwise in float32; within `tolerance` under mixed_bfloat16. */
function assertSame(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  if (tolerance === 0) assert.deepEqual(Array.from(actual), Array.from(expected), what);
  else assert.ok(maxAbsDiff(actual, expected) <= tolerance, `${what}: differs by ${maxAbsDiff(actual, expected)}`);
}

test('inference in chunks (a last chunk smaller) gives the whole batch outputs, predict and evaluate', async () => {
  const model = build({});
  const flatten = model.layerIndex('flatten');
  const run = (bytes: number) =>
    counted(
      bytes,
      async () => ({
        outputs: await model.predict(batches[0], SHAPE),
        features: await model.predict(batches[0], SHAPE, { toLayer: flatten }),
        evaluated: await model.engine.evaluate(batches[0], SHAPE, labels, 0),
      }),
      ['base_conv1', 'out'],
    );
  const chunked = await run(CHUNK_BYTES);
  const whole = await run(Number.POSITIVE_INFINITY);
  assert.deepEqual(chunked.calls, [3 * CHUNKS, 2 * CHUNKS], 'every layer runs once per chunk');
  assert.deepEqual(whole.calls, [3, 2]);
  assert.deepEqual(Array.from(chunked.result.outputs.output), Array.from(whole.result.outputs.output));
  assert.deepEqual(chunked.result.features.shape, [N, 3, 3, 8]);
  assert.deepEqual(Array.from(chunked.result.features.output), Array.from(whole.result.features.output));
  assert.equal(chunked.result.evaluated.loss, whole.result.evaluated.loss);
  assert.equal(chunked.result.evaluated.correct, whole.result.evaluated.correct);

  // the same rows one chunk-sized batch at a time
  const row = 12 * 12 * 3;
  const pieces: number[] = [];
  for (const [start, end] of [
    [0, 4],
    [4, 8],
    [8, 10],
  ]) {
    const piece = await model.predict(batches[0].subarray(start * row, end * row), [end - start, ...SHAPE.slice(1)]);
    pieces.push(...piece.output);
  }
  assert.deepEqual(pieces, Array.from(whole.result.outputs.output));
});

test('augmented features in chunks: the augmentation layers draw for the whole batch, the same draws', async () => {
  const chunkedModel = build({ augment: true });
  const wholeModel = build({ augment: true });
  const names = ['random_flip', 'random_translation', 'base_conv1'];
  const toLayer = chunkedModel.layerIndex('flatten');
  const chunked = await counted(CHUNK_BYTES, () => chunkedModel.predict(batches[0], SHAPE, { toLayer, augment: true }), names);
  const whole = await counted(Number.POSITIVE_INFINITY, () => wholeModel.predict(batches[0], SHAPE, { toLayer, augment: true }), names);
  assert.deepEqual(chunked.calls, [1, 1, CHUNKS]);
  assert.deepEqual(Array.from(chunked.result.output), Array.from(whole.result.output));
  const plain = await wholeModel.predict(batches[0], SHAPE, { toLayer });
  assert.notDeepEqual(Array.from(plain.output), Array.from(whole.result.output), 'the augmentation changed the features');
});

/** Trains two identical models on the same batches, one with its frozen base in chunks; returns both. */
async function trainSideBySide(options: Parameters<typeof build>[0], names: string[]) {
  const chunkedModel = build(options);
  const wholeModel = build(options);
  const before = allWeights(wholeModel);
  const losses: [number, number][] = [];
  const calls: number[][] = [];
  for (const x of batches) {
    // dropout draws from the global generator: the same state for both models' steps
    native().manualSeed(11);
    const chunked = await counted(CHUNK_BYTES, () => chunkedModel.engine.trainStep(x, SHAPE, labels, 0), names);
    native().manualSeed(11);
    const whole = await counted(Number.POSITIVE_INFINITY, () => wholeModel.engine.trainStep(x, SHAPE, labels, 0), names);
    losses.push([chunked.result.loss, whole.result.loss]);
    calls.push(chunked.calls);
  }
  const after = allWeights(wholeModel);
  assert.ok(
    after.some((w, i) => maxAbsDiff(w, before[i]) > 0),
    'the head trained',
  );
  return { chunked: allWeights(chunkedModel), whole: after, before, losses, calls };
}

test('a training step runs the frozen base in chunks under no gradient: same losses and weights, augmentation drawn once', async () => {
  const names = ['random_flip', 'random_translation', 'base_conv1', 'base_conv2', 'head'];
  const run = await trainSideBySide({ augment: true }, names);
  for (const calls of run.calls) assert.deepEqual(calls, [1, 1, CHUNKS, CHUNKS, 1]);
  for (const [chunked, whole] of run.losses) assert.equal(chunked, whole);
  run.chunked.forEach((w, i) => {
    assertSame(w, run.whole[i], 0, `weight ${i}`);
  });
  // the frozen BatchNormalization ran in inference mode: its moving statistics did not move
  const bn = 2; // after base_conv1's kernel and bias
  for (let k = bn; k < bn + 4; k++) assert.deepEqual(Array.from(run.whole[k]), Array.from(run.before[k]), `base_bn weight ${k - bn}`);
});

test('a Dropout inside the frozen base draws for the whole batch: the chunks start after it', async () => {
  const run = await trainSideBySide({ dropoutInBase: true }, ['base_conv1', 'base_dropout', 'base_conv2']);
  for (const calls of run.calls) assert.deepEqual(calls, [1, 1, CHUNKS]);
  for (const [chunked, whole] of run.losses) assert.equal(chunked, whole);
  run.chunked.forEach((w, i) => {
    assertSame(w, run.whole[i], 0, `weight ${i}`);
  });
});

test('mixed_bfloat16: chunked inference and training match whole batches within bfloat16 precision', { skip: needsBf16 }, async () => {
  const run = await trainSideBySide({ augment: true, dtype: 'mixed_bfloat16' }, ['base_conv1']);
  for (const calls of run.calls) assert.deepEqual(calls, [CHUNKS]);
  for (const [chunked, whole] of run.losses) assert.ok(Math.abs(chunked - whole) <= 1e-2, `loss ${chunked} vs ${whole}`);
  run.chunked.forEach((w, i) => {
    assertSame(w, run.whole[i], 1e-2, `weight ${i}`);
  });
  const model = build({ dtype: 'mixed_bfloat16' });
  const chunked = await counted(CHUNK_BYTES, () => model.predict(batches[1], SHAPE), ['base_conv1']);
  const whole = await counted(Number.POSITIVE_INFINITY, () => model.predict(batches[1], SHAPE), ['base_conv1']);
  assert.deepEqual(chunked.calls, [CHUNKS]);
  assertSame(chunked.result.output, whole.result.output, 1e-2, 'outputs');
});

test('setForwardChunkBytes refuses a budget below one byte', () => {
  assert.throws(() => native().setForwardChunkBytes(0), /bytes must be a number >= 1/);
});
