// A model saved by TransferLab loads in TensorFlow.js and predicts the same: TF.js's own layers
// (pure-JS CPU backend) are an independent reference for the engine and the exported format.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import * as tfc from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { fromTfjs } from '../lib/applications/tfjs.js';
import { decodeImageFile } from '../lib/data/index.js';
import { Sequential } from '../lib/models/sequential.js';
import { defaultHeadLayers, experimentCnn } from '../lib/models/zoo.js';
import { saveModel } from '../lib/saving/persistence.js';
import { maxAbsDiff } from './helpers/naive.js';
import { mobilenetModelJson, needsMobilenet, needsPetImages, petImagesDir } from './helpers/paths.js';
import { sharedPetImages } from './helpers/pet-images.js';
import { sharedTinyBackbone } from './helpers/tiny-backbone.js';

/** model.json + shards handed to TF.js as a file loader would (pure-JS TF.js has no file:// handler); all weight groups, in manifest order. */
async function loadInTfjs(modelJson: string): Promise<tfl.LayersModel> {
  const dir = path.dirname(modelJson);
  const json = JSON.parse(await readFile(modelJson, 'utf8'));
  const groups: { paths: string[]; weights: tfc.io.WeightsManifestEntry[] }[] = json.weightsManifest;
  const shards = await Promise.all(groups.flatMap((g) => g.paths.map((p) => readFile(path.join(dir, p)))));
  const weightData = new Uint8Array(Buffer.concat(shards)).buffer;
  return tfl.loadLayersModel({
    load: async () => ({
      modelTopology: json.modelTopology,
      weightSpecs: groups.flatMap((g) => g.weights),
      weightData,
      format: json.format,
    }),
  });
}

async function photos(root: string, size: number, names: string[]): Promise<Uint8Array> {
  const x = new Uint8Array(names.length * size * size * 3);
  for (let i = 0; i < names.length; i++) x.set(await decodeImageFile(path.join(root, names[i]), size, size), i * size * size * 3);
  return x;
}

/** MobileNet's 'tf' preprocessing, applied outside the TF.js model: x / 127.5 - 1. */
const tfPreprocess = (x: Uint8Array, shape: [number, number, number, number]) =>
  tfc.tensor4d(
    Float32Array.from(x, (v) => v / 127.5 - 1),
    shape,
  );

test('the experiment CNN, trained a step and saved, predicts the same in TF.js', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-export-'));
  try {
    const size = 96;
    const model = experimentCnn([size, size, 3], { seed: 5 });
    model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['accuracy'] });
    const names = ['Cat/1.jpg', 'Cat/2.jpg', 'Dog/1.jpg', 'Dog/2.jpg'];
    const x = await photos(await sharedPetImages({ perClass: 3, broken: false }), size, names);
    await model.engine.trainStep(x, [4, size, size, 3], new Float32Array([0, 0, 1, 1]), 0);
    await saveModel(model, dir);
    const ours = (await model.predict(x, [4, size, size, 3])).output;
    const loaded = await loadInTfjs(path.join(dir, 'model.json'));
    // scale01 preprocessing (x / 255) is applied outside the TF.js model, as transferlab.json says
    const input = tfc.tensor4d(
      Float32Array.from(x, (v) => v / 255),
      [4, size, size, 3],
    );
    const theirs = (loaded.predict(input) as tfc.Tensor).dataSync() as Float32Array;
    assert.ok(maxAbsDiff(ours, theirs) < 1e-5, `max difference ${maxAbsDiff(ours, theirs)}`);
    assert.ok(new Set(Array.from(ours, (v) => v.toFixed(4))).size > 1, 'predictions should differ between photos');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the generated backbone, every layer (LeakyReLU, pooling, softmax top included), predicts the same in the engine and in TF.js', async () => {
  const tiny = await sharedTinyBackbone();
  const size = 48;
  const names = ['Cat/1.jpg', 'Cat/2.jpg', 'Dog/1.jpg', 'Dog/2.jpg'];
  const x = await photos(await sharedPetImages({ perClass: 3, broken: false }), size, names);
  const loaded = await loadInTfjs(tiny.modelJson);
  // TF.js builds the stored 32x32 input; a fresh functional model at 48x48 takes its layers and weights
  const input = tfl.input({ shape: [size, size, 3] });
  let t: tfl.SymbolicTensor = input;
  for (const layer of loaded.layers.slice(1)) t = layer.apply(t) as tfl.SymbolicTensor;
  const reference = tfl.model({ inputs: input, outputs: t });

  const backbone = await fromTfjs(tiny.modelJson, { inputShape: [size, size, 3], outputLayer: 'reshape_2' }); // top included, named on purpose
  assert.equal(backbone.outputLayer, 'reshape_2', 'without outputLayer the whole model');
  const model = new Sequential(backbone.layers, { inputShape: [size, size, 3], preprocessing: backbone.nativePreprocessing, seed: 1 });
  model.setWeights(backbone.weights);
  const ours = (await model.predict(x, [4, size, size, 3])).output;
  const theirs = (reference.predict(tfPreprocess(x, [4, size, size, 3])) as tfc.Tensor).dataSync() as Float32Array;
  assert.equal(ours.length, 4 * tiny.classes);
  assert.ok(maxAbsDiff(ours, theirs) < 1e-5, `max difference ${maxAbsDiff(ours, theirs)}`);
  for (let i = 0; i < 4; i++) {
    const sum = theirs.subarray(i * tiny.classes, (i + 1) * tiny.classes).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-4, `softmax row ${i} sums to 1 (${sum})`);
  }
  assert.ok(new Set(Array.from(ours, (v) => v.toFixed(4))).size > tiny.classes, 'outputs differ between photos');
});

test('a transfer model on the generated backbone (depthwise conv, batch norm, relu6), saved, predicts the same in TF.js', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-export-'));
  try {
    const size = 64;
    const tiny = await sharedTinyBackbone();
    const backbone = await fromTfjs(tiny.modelJson, { inputShape: [size, size, 3], outputLayer: tiny.outputLayer });
    const model = new Sequential([...backbone.layers, ...defaultHeadLayers({ hiddenUnits: [8] })], {
      name: 'transfer',
      inputShape: [size, size, 3],
      preprocessing: 'tf',
      seed: 3,
    });
    model.setWeights(backbone.weights);
    await saveModel(model, dir);
    const x = await photos(await sharedPetImages({ perClass: 3, broken: false }), size, ['Cat/3.jpg', 'Dog/3.jpg']);
    const loaded = await loadInTfjs(path.join(dir, 'model.json'));
    const features = (await model.predict(x, [2, size, size, 3], { toLayer: backbone.layers.length })).output;
    const cut = tfl.model({ inputs: loaded.inputs, outputs: loaded.getLayer(tiny.outputLayer).output as tfl.SymbolicTensor });
    const theirFeatures = (cut.predict(tfPreprocess(x, [2, size, size, 3])) as tfc.Tensor).dataSync() as Float32Array;
    const scale = Math.max(...Array.from(theirFeatures, Math.abs));
    assert.ok(scale > 0.5, 'features should not be all zero');
    assert.ok(maxAbsDiff(features, theirFeatures) / scale < 1e-4, `max relative difference ${maxAbsDiff(features, theirFeatures) / scale}`);
    // and the whole saved model, head included
    const ours = (await model.predict(x, [2, size, size, 3])).output;
    const theirs = (loaded.predict(tfPreprocess(x, [2, size, size, 3])) as tfc.Tensor).dataSync() as Float32Array;
    assert.ok(maxAbsDiff(ours, theirs) < 1e-5, `max difference ${maxAbsDiff(ours, theirs)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the real MobileNet transfer model predicts the same in TF.js', { skip: needsMobilenet || needsPetImages }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-export-'));
  try {
    const size = 128;
    const backbone = await fromTfjs(mobilenetModelJson!, { inputShape: [size, size, 3], outputLayer: 'conv_pw_13_relu' });
    const model = new Sequential([...backbone.layers, ...defaultHeadLayers({ hiddenUnits: [8] })], {
      name: 'transfer',
      inputShape: [size, size, 3],
      preprocessing: 'tf',
      seed: 3,
    });
    model.setWeights(backbone.weights);
    await saveModel(model, dir);
    const x = await photos(petImagesDir!, size, ['Cat/3.jpg', 'Dog/3.jpg']);
    const ours = (await model.predict(x, [2, size, size, 3], { toLayer: backbone.layers.length })).output;
    const loaded = await loadInTfjs(path.join(dir, 'model.json'));
    const cut = tfl.model({ inputs: loaded.inputs, outputs: loaded.getLayer('conv_pw_13_relu').output as tfl.SymbolicTensor });
    const theirs = (cut.predict(tfPreprocess(x, [2, size, size, 3])) as tfc.Tensor).dataSync() as Float32Array;
    const scale = Math.max(...Array.from(theirs, Math.abs));
    assert.ok(scale > 0.5, 'features should not be all zero');
    assert.ok(maxAbsDiff(ours, theirs) / scale < 1e-4, `max relative difference ${maxAbsDiff(ours, theirs) / scale}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
