/**
 * A TF.js MobileNet as a pretrained base: cut at a named layer it has Keras's shape, and a linear
 * head on its frozen features separates cats from dogs. Run on a generated MobileNet-like backbone
 * and generated photos; with TRANSFERLAB_TEST_ASSETS, also on the real ImageNet MobileNet v1 0.75
 * and real photos (ImageNet classes, accuracy).
 */

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fromTfjs } from '../lib/applications/tfjs.js';
import { decodeImageFile, openCatsVsDogs } from '../lib/data/index.js';
import { Sequential } from '../lib/models/sequential.js';
import { cachedFeatures, datasetIdentity } from '../lib/training/feature-cache.js';
import { mobilenetModelJson, needsMobilenet, needsPetImages, petImagesDir } from './helpers/paths.js';
import { sharedPetImages } from './helpers/pet-images.js';
import { sharedTinyBackbone, TINY_FEATURE_CHANNELS } from './helpers/tiny-backbone.js';
import { smallHead, tfjsTransferModel, withTempDir } from './helpers/transfer-helpers.js';

const IDS = Array.from({ length: 10 }, (_, i) => i + 1);
const CAT_CLASSES = [281, 285] as const;
const DOG_CLASSES = [151, 268] as const;

test('the real MobileNet (all layers) classifies real cats and dogs into ImageNet cat / dog classes', {
  skip: needsMobilenet || needsPetImages,
  timeout: 600_000,
}, async () => {
  const metadata = JSON.parse(await readFile(path.join(path.dirname(mobilenetModelJson!), 'metadata.json'), 'utf8')) as {
    labels: string[];
  };
  assert.equal(metadata.labels.length, 1000);
  assert.match(metadata.labels[281]!, /tabby/);
  assert.match(metadata.labels[151]!, /Chihuahua/);

  const backbone = await fromTfjs(mobilenetModelJson!, { outputLayer: 'reshape_2' }); // the whole classifier, named on purpose
  assert.equal(backbone.nativePreprocessing, 'tf');
  const model = new Sequential(backbone.layers, { inputShape: [224, 224, 3], preprocessing: backbone.nativePreprocessing, seed: 1 });
  model.setWeights(backbone.weights);
  assert.equal(
    model.outputShape.reduce((a, b) => a * b, 1),
    1000,
    `1000 classes out, got ${JSON.stringify(model.outputShape)}`,
  );

  const files = [
    ...IDS.map((id) => ({ file: `Cat/${id}.jpg`, range: CAT_CLASSES })),
    ...IDS.map((id) => ({ file: `Dog/${id}.jpg`, range: DOG_CLASSES })),
  ];
  const x = new Uint8Array(files.length * 224 * 224 * 3);
  for (const [i, f] of files.entries()) x.set(await decodeImageFile(path.join(petImagesDir!, f.file), 224, 224), i * 224 * 224 * 3);
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

test("a backbone cut at a named layer stops there, with Keras's shape; an unknown layer is an error listing the layers", {
  timeout: 600_000,
}, async () => {
  const tiny = await sharedTinyBackbone();
  const size = 64;
  const full = await fromTfjs(tiny.modelJson, { inputShape: [size, size, 3], outputLayer: 'reshape_2' }); // top included, named on purpose
  const backbone = await fromTfjs(tiny.modelJson, { inputShape: [size, size, 3], outputLayer: tiny.outputLayer });
  assert.equal(backbone.outputLayer, tiny.outputLayer);
  assert.deepEqual(
    backbone.layers.map((l) => l.config.name),
    tiny.layerNames.slice(0, tiny.layerNames.indexOf(tiny.outputLayer) + 1),
  );
  assert.ok(backbone.layers.length < full.layers.length, 'the top is left out');
  assert.ok(
    backbone.weights.every((l) => backbone.layers.some((b) => b.config.name === l.layerName)),
    "only the kept layers' weights",
  );
  assert.notEqual(backbone.weightsId, full.weightsId, 'the cache key sees the cut');
  const model = new Sequential(backbone.layers, { inputShape: [size, size, 3], preprocessing: 'tf', seed: 1 });
  model.setWeights(backbone.weights);
  // three stride-2 stages (the padded 'valid' stem, two 'same' depthwise convs): 64 / 8
  assert.deepEqual(model.outputShape, [8, 8, TINY_FEATURE_CHANNELS]);
  const photos = await sharedPetImages({ perClass: 2, broken: false });
  const pixels = await decodeImageFile(path.join(photos, 'Cat/1.jpg'), size, size);
  const { output, shape } = await model.predict(pixels, [1, size, size, 3]);
  assert.deepEqual(shape, [1, 8, 8, TINY_FEATURE_CHANNELS]);
  assert.ok(
    output.every((v) => Number.isFinite(v) && v >= 0 && v <= 6),
    'relu6 outputs lie in [0, 6]',
  );
  assert.ok(
    output.some((v) => v > 0),
    'not all zero',
  );
  await assert.rejects(fromTfjs(tiny.modelJson, { outputLayer: 'conv_pw_14_relu' }), /no layer 'conv_pw_14_relu'.*conv_pw_3_relu/s);
});

test('the real MobileNet cut at conv_pw_13_relu gives 7x7x768 at 224x224 (Keras include_top=False)', {
  skip: needsMobilenet || needsPetImages,
  timeout: 600_000,
}, async () => {
  const backbone = await fromTfjs(mobilenetModelJson!, { inputShape: [224, 224, 3], outputLayer: 'conv_pw_13_relu' });
  assert.equal(backbone.layers.at(-1)!.config.name, 'conv_pw_13_relu');
  const model = new Sequential(backbone.layers, { inputShape: [224, 224, 3], preprocessing: 'tf', seed: 1 });
  model.setWeights(backbone.weights);
  assert.deepEqual(model.outputShape, [7, 7, 768]);
  const pixels = await decodeImageFile(path.join(petImagesDir!, 'Cat/1.jpg'), 224, 224);
  const { output, shape } = await model.predict(pixels, [1, 224, 224, 3]);
  assert.deepEqual(shape, [1, 7, 7, 768]);
  assert.ok(
    output.every((v) => Number.isFinite(v) && v >= 0 && v <= 6),
    'relu6 outputs lie in [0, 6]',
  );
  assert.ok(
    output.some((v) => v > 0),
    'not all zero',
  );
});

/**
 * Trains a linear head on cached features of the frozen base for 5 epochs; returns the final
 * validation accuracy after checking that the whole model on images agrees with it.
 */
async function linearHeadAccuracy(options: {
  dataDir: string;
  modelJson: string;
  outputLayer: string;
  size: number;
  train: number;
  validation: number;
  featureCells: number;
}): Promise<number> {
  return withTempDir('linear-head', async (dir) => {
    const { size, train: nTrain, validation: nValidation, outputLayer } = options;
    const cacheDir = path.join(dir, 'cache');
    const data = await openCatsVsDogs({
      dataDir: options.dataDir,
      imageSize: [size, size],
      batchSize: 32,
      limit: nTrain + nValidation,
      splits: [`train[:${nTrain}]`, `train[${nTrain}:]`],
      cacheDir,
      progress: false,
    });
    assert.equal(data.train.size, nTrain);
    assert.equal(data.validation.size, nValidation);
    const { model, baseLayers, backbone } = await tfjsTransferModel({
      modelJson: options.modelJson,
      outputLayer,
      inputShape: [size, size, 3],
      head: smallHead(0),
      seed: 7,
    });
    assert.equal(model.countParams().trainable, options.featureCells + 1, 'only the linear head trains');
    const keyFor = async (d: typeof data.train) => ({
      weightsId: backbone.weightsId,
      outputLayer,
      inputShape: [size, size, 3],
      preprocessing: 'tf',
      bf16: false,
      data: await datasetIdentity(d),
    });
    const train = await cachedFeatures(model, data.train, { baseLayers, key: await keyFor(data.train), cacheDir, progress: false });
    const validation = await cachedFeatures(model, data.validation, {
      baseLayers,
      key: await keyFor(data.validation),
      cacheDir,
      progress: false,
    });
    assert.equal(train.computed, nTrain);
    assert.equal(validation.computed, nValidation);
    const history = await model.fit(train.dataset, { epochs: 5, validationData: validation.dataset, fromLayer: baseLayers, verbose: 0 });
    const valAccuracy = history.history.val_accuracy!;
    assert.equal(valAccuracy.length, 5);
    const final = valAccuracy.at(-1)!;
    // the full model on images agrees with the head on features
    const onImages = await model.evaluate(data.validation);
    assert.ok(
      Math.abs(onImages.accuracy - final) <= 2 / nValidation + 1e-9,
      `accuracy on images ${onImages.accuracy} matches accuracy on cached features ${final}`,
    );
    return final;
  });
}

test('a linear head on the frozen generated backbone separates generated cats from dogs (well above chance)', {
  timeout: 600_000,
}, async () => {
  const tiny = await sharedTinyBackbone();
  const dataDir = await sharedPetImages({ perClass: 100, broken: false });
  const accuracy = await linearHeadAccuracy({
    dataDir,
    modelJson: tiny.modelJson,
    outputLayer: tiny.outputLayer,
    size: 64,
    train: 160,
    validation: 40,
    featureCells: 8 * 8 * TINY_FEATURE_CHANNELS,
  });
  // the classes differ in colour and stripe direction; a random-weights base keeps enough of both
  assert.ok(accuracy >= 0.8, `final validation accuracy ${accuracy} >= 0.8 on 40 images`);
});

test('a linear head on frozen real MobileNet features separates real cats from dogs (> 90% validation accuracy)', {
  skip: needsMobilenet || needsPetImages,
  timeout: 900_000,
}, async () => {
  const accuracy = await linearHeadAccuracy({
    dataDir: petImagesDir!,
    modelJson: mobilenetModelJson!,
    outputLayer: 'conv_pw_13_relu',
    size: 160,
    train: 400,
    validation: 200,
    featureCells: 5 * 5 * 768,
  });
  assert.ok(accuracy > 0.9, `final validation accuracy ${accuracy} > 0.9`);
});
