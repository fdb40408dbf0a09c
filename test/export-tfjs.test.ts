// A model saved by TransferLab loads in TensorFlow.js and predicts the same: TF.js's own layers
// (pure-JS CPU backend) are an independent reference for the engine and the exported format.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import * as tfc from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { saveModel } from '../lib/models/persistence.js';
import { experimentCnn, defaultHeadLayers } from '../lib/models/zoo.js';
import { loadTfjsBackbone } from '../lib/models/backbones.js';
import { Sequential } from '../lib/models/sequential.js';
import { decodeImageFile } from '../lib/data/index.js';
import { petImagesDir, mobilenetModelJson } from './helpers/paths.js';

async function loadInTfjs(dir: string): Promise<tfl.LayersModel> {
  const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
  const shards = await Promise.all(json.weightsManifest[0].paths.map((p: string) => readFile(path.join(dir, p))));
  const weightData = new Uint8Array(Buffer.concat(shards)).buffer;
  return tfl.loadLayersModel({ load: async () => ({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData, format: json.format }) });
}

async function photos(size: number, names: string[]): Promise<Uint8Array> {
  const x = new Uint8Array(names.length * size * size * 3);
  for (let i = 0; i < names.length; i++) x.set(await decodeImageFile(path.join(petImagesDir, names[i]), size, size), i * size * size * 3);
  return x;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('the experiment CNN, trained a step and saved, predicts the same in TF.js', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-export-'));
  try {
    const size = 96;
    const model = experimentCnn([size, size, 3], { seed: 5 });
    model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['accuracy'] });
    const names = ['Cat/1.jpg', 'Cat/2.jpg', 'Dog/1.jpg', 'Dog/2.jpg'];
    const x = await photos(size, names);
    await model.engine.trainStep(x, [4, size, size, 3], new Float32Array([0, 0, 1, 1]), 0);
    await saveModel(model, dir);
    const ours = (await model.predict(x, [4, size, size, 3])).output;
    const loaded = await loadInTfjs(dir);
    // scale01 preprocessing (x / 255) is applied outside the TF.js model, as transferlab.json says
    const input = tfc.tensor4d(Float32Array.from(x, (v) => v / 255), [4, size, size, 3]);
    const theirs = (loaded.predict(input) as tfc.Tensor).dataSync() as Float32Array;
    assert.ok(maxAbsDiff(ours, theirs) < 1e-5, `max difference ${maxAbsDiff(ours, theirs)}`);
    assert.ok(new Set(Array.from(ours, (v) => v.toFixed(4))).size > 1, 'predictions should differ between photos');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a MobileNet transfer model (depthwise conv, batch norm, relu6) predicts the same in TF.js', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-export-'));
  try {
    const size = 128;
    const backbone = await loadTfjsBackbone(mobilenetModelJson, { inputShape: [size, size, 3], outputLayer: 'conv_pw_13_relu' });
    const model = new Sequential([...backbone.layers, ...defaultHeadLayers({ hiddenUnits: [8] })], { name: 'transfer', inputShape: [size, size, 3], preprocessing: 'tf', seed: 3 });
    model.setWeights(backbone.weights);
    await saveModel(model, dir);
    const x = await photos(size, ['Cat/3.jpg', 'Dog/3.jpg']);
    const ours = (await model.predict(x, [2, size, size, 3], { toLayer: backbone.layers.length })).output;
    const loaded = await loadInTfjs(dir);
    const cut = tfl.model({ inputs: loaded.inputs, outputs: loaded.getLayer('conv_pw_13_relu').output as tfl.SymbolicTensor });
    const input = tfc.tensor4d(Float32Array.from(x, (v) => v / 127.5 - 1), [2, size, size, 3]);
    const theirs = (cut.predict(input) as tfc.Tensor).dataSync() as Float32Array;
    const scale = Math.max(...Array.from(theirs, Math.abs));
    assert.ok(scale > 0.5, 'features should not be all zero');
    assert.ok(maxAbsDiff(ours, theirs) / scale < 1e-4, `max relative difference ${maxAbsDiff(ours, theirs) / scale}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
