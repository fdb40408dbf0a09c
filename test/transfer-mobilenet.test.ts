/**
 * The shared, real ImageNet MobileNet v1 0.75 as a pretrained base: its ImageNet predictions on
 * PetImages are cats and dogs, its cut output has Keras's shape, and a linear head on its frozen
 * features separates cats from dogs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadTfjsBackbone } from '../lib/models/backbones.js';
import { Sequential } from '../lib/models/sequential.js';
import { decodeImageFile, openCatsVsDogs } from '../lib/data/index.js';
import { cachedFeatures, datasetIdentity } from '../lib/training/feature-cache.js';
import { mobilenetModelJson, petImagesDir } from './helpers/paths.js';
import { mobilenetTransferModel, smallHead, withTempDir } from './helpers/transfer-helpers.js';

const IDS = Array.from({ length: 10 }, (_, i) => i + 1);
const CAT_CLASSES = [281, 285] as const;
const DOG_CLASSES = [151, 268] as const;

test('MobileNet (all layers) classifies PetImages cats and dogs into ImageNet cat / dog classes', { timeout: 600_000 }, async () => {
  const metadata = JSON.parse(await readFile(path.join(path.dirname(mobilenetModelJson), 'metadata.json'), 'utf8')) as { labels: string[] };
  assert.equal(metadata.labels.length, 1000);
  assert.match(metadata.labels[281]!, /tabby/);
  assert.match(metadata.labels[151]!, /Chihuahua/);

  const backbone = await loadTfjsBackbone(mobilenetModelJson, { outputLayer: 'reshape_2' }); // the whole classifier, named on purpose
  assert.equal(backbone.nativePreprocessing, 'tf');
  const model = new Sequential(backbone.layers, { inputShape: [224, 224, 3], preprocessing: backbone.nativePreprocessing, seed: 1 });
  model.setWeights(backbone.weights);
  assert.equal(model.outputShape.reduce((a, b) => a * b, 1), 1000, `1000 classes out, got ${JSON.stringify(model.outputShape)}`);

  const files = [...IDS.map((id) => ({ file: `Cat/${id}.jpg`, range: CAT_CLASSES })), ...IDS.map((id) => ({ file: `Dog/${id}.jpg`, range: DOG_CLASSES }))];
  const x = new Uint8Array(files.length * 224 * 224 * 3);
  for (const [i, f] of files.entries()) x.set(await decodeImageFile(path.join(petImagesDir, f.file), 224, 224), i * 224 * 224 * 3);
  const { output, shape } = await model.predict(x, [files.length, 224, 224, 3]);
  assert.equal(shape[0], files.length);
  assert.equal(output.length, files.length * 1000);

  const lines: string[] = [];
  const hits = { Cat: 0, Dog: 0 };
  files.forEach((f, i) => {
    const row = output.subarray(i * 1000, (i + 1) * 1000);
    const sum = row.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-3, `softmax row of ${f.file} sums to 1 (got ${sum})`);
    let top = 0;
    for (let k = 1; k < 1000; k++) if (row[k]! > row[top]!) top = k;
    const ok = top >= f.range[0] && top <= f.range[1];
    if (ok) hits[f.file.startsWith('Cat') ? 'Cat' : 'Dog']++;
    lines.push(`${f.file}: ${top} ${metadata.labels[top]} (${row[top]!.toFixed(3)})${ok ? '' : '  <-- outside'}`);
  });
  const report = lines.join('\n');
  assert.ok(hits.Cat >= 8, `at least 8 of 10 cats in classes 281-285, got ${hits.Cat}:\n${report}`);
  assert.ok(hits.Dog >= 8, `at least 8 of 10 dogs in classes 151-268, got ${hits.Dog}:\n${report}`);
});

test('MobileNet cut at conv_pw_13_relu gives 7x7x768 at 224x224 (Keras include_top=False)', { timeout: 600_000 }, async () => {
  const backbone = await loadTfjsBackbone(mobilenetModelJson, { inputShape: [224, 224, 3], outputLayer: 'conv_pw_13_relu' });
  assert.equal(backbone.outputLayer, 'conv_pw_13_relu');
  assert.equal(backbone.layers.at(-1)!.config.name, 'conv_pw_13_relu');
  const model = new Sequential(backbone.layers, { inputShape: [224, 224, 3], preprocessing: 'tf', seed: 1 });
  model.setWeights(backbone.weights);
  assert.deepEqual(model.outputShape, [7, 7, 768]);
  const pixels = await decodeImageFile(path.join(petImagesDir, 'Cat/1.jpg'), 224, 224);
  const { output, shape } = await model.predict(pixels, [1, 224, 224, 3]);
  assert.deepEqual(shape, [1, 7, 7, 768]);
  assert.equal(output.length, 7 * 7 * 768);
  assert.ok(output.every((v) => Number.isFinite(v) && v >= 0 && v <= 6), 'relu6 outputs lie in [0, 6]');
  assert.ok(output.some((v) => v > 0), 'not all zero');
  // a layer that does not exist is a clear error listing the layers
  await assert.rejects(loadTfjsBackbone(mobilenetModelJson, { outputLayer: 'conv_pw_14_relu' }), /no layer 'conv_pw_14_relu'.*conv_pw_13_relu/s);
});

test('a linear head on frozen MobileNet features separates cats from dogs (> 90% validation accuracy)', { timeout: 900_000 }, async () => {
  await withTempDir('linear-head', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const size = 160;
    const data = await openCatsVsDogs({
      dataDir: petImagesDir, imageSize: [size, size], batchSize: 32, limit: 600, splits: ['train[:400]', 'train[400:]'], cacheDir, progress: false,
    });
    assert.equal(data.train.size, 400);
    assert.equal(data.validation.size, 200);
    const { model, baseLayers, backbone } = await mobilenetTransferModel({ inputShape: [size, size, 3], head: smallHead(0), seed: 7 });
    assert.equal(model.countParams().trainable, 5 * 5 * 768 + 1, 'only the linear head trains');
    const keyFor = async (d: typeof data.train) => ({
      weightsId: backbone.weightsId, outputLayer: 'conv_pw_13_relu', inputShape: [size, size, 3], preprocessing: 'tf', bf16: false, data: await datasetIdentity(d),
    });
    const train = await cachedFeatures(model, data.train, { baseLayers, key: await keyFor(data.train), cacheDir, progress: false });
    const validation = await cachedFeatures(model, data.validation, { baseLayers, key: await keyFor(data.validation), cacheDir, progress: false });
    assert.equal(train.computed, 400);
    assert.equal(validation.computed, 200);
    const history = await model.fit(train.dataset, { epochs: 5, validationData: validation.dataset, fromLayer: baseLayers, verbose: 0 });
    const valAccuracy = history.history.val_accuracy!;
    assert.equal(valAccuracy.length, 5);
    const final = valAccuracy.at(-1)!;
    assert.ok(final > 0.9, `final validation accuracy ${final} > 0.9 (history ${JSON.stringify(history.history)})`);
    // the full model on images agrees with the head on features
    const onImages = await model.evaluate(data.validation);
    assert.ok(Math.abs(onImages.accuracy - final) <= 2 / 200 + 1e-9, `accuracy on images ${onImages.accuracy} matches accuracy on cached features ${final}`);
  });
});
