/**
 * The feature cache: training the head on cached features of the frozen base gives the same
 * history as training the whole model on images; the cache is reused, keyed, resumable after an
 * interruption, and a damaged file is rebuilt rather than read.
 */

import assert from 'node:assert/strict';
import { readdir, readFile, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import type { Backbone } from '../lib/applications/backbone.js';
import { type OpenedDatasets, openCatsVsDogs } from '../lib/data/index.js';
import type { Dataset } from '../lib/data/types.js';
import { featureCacheKey } from '../lib/experiment/train-model.js';
import { cachedFeatures, datasetIdentity, type FeatureKey } from '../lib/training/feature-cache.js';
import { sharedPetImages } from './helpers/pet-images.js';
import { sharedTinyBackbone, TINY_FEATURE_CHANNELS, TINY_OUTPUT_LAYER } from './helpers/tiny-backbone.js';
import { assertClose, smallHead, type TransferModel, tfjsTransferModel, withTempDir } from './helpers/transfer-helpers.js';

const SIZE = 64;
const SEED = 1234;
const FEATURE_BYTES = (SIZE / 8) * (SIZE / 8) * TINY_FEATURE_CHANNELS * 4; // conv_pw_3_relu: three stride-2 stages

async function openData(cacheDir: string, batchSize = 32): Promise<OpenedDatasets> {
  // 150 generated examples in tfds order: 120 train / 30 validation
  const dataDir = await sharedPetImages({ perClass: 75, broken: false });
  return openCatsVsDogs({ dataDir, imageSize: [SIZE, SIZE], batchSize, cacheDir, progress: false });
}

/** The generated MobileNet-like backbone cut at its feature layer, frozen, with a small head. */
async function transferModel(backbone?: Backbone): Promise<TransferModel> {
  const tiny = await sharedTinyBackbone();
  return tfjsTransferModel({
    modelJson: tiny.modelJson,
    outputLayer: tiny.outputLayer,
    inputShape: [SIZE, SIZE, 3],
    head: smallHead(8),
    seed: SEED,
    backbone,
  });
}

async function keyFor(weightsId: string, data: Dataset, overrides: Partial<FeatureKey> = {}): Promise<FeatureKey> {
  return {
    weightsId,
    outputLayer: TINY_OUTPUT_LAYER,
    inputShape: [SIZE, SIZE, 3],
    preprocessing: 'tf',
    bf16: false,
    data: await datasetIdentity(data),
    ...overrides,
  };
}

async function featureFile(cacheDir: string): Promise<string[]> {
  const root = path.join(cacheDir, 'features');
  return (await readdir(root)).map((d) => path.join(root, d));
}

async function allFeatures(dataset: Dataset): Promise<{ x: Float32Array; y: number[]; keys: string[] }> {
  const parts: Float32Array[] = [];
  const y: number[] = [];
  const keys: string[] = [];
  for await (const b of dataset.batches()) {
    parts.push(b.x as Float32Array);
    y.push(...b.y);
    keys.push(...(b.keys ?? []));
  }
  const x = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    x.set(p, o);
    o += p.length;
  }
  return { x, y, keys };
}

test('training the head on cached features equals training on images with the base frozen', { timeout: 900_000 }, async () => {
  await withTempDir('fc-equal', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const data = await openData(cacheDir);
    assert.equal(data.train.size, 120);
    assert.equal(data.validation.size, 30);

    const cached = await transferModel();
    const { model: direct } = await transferModel(cached.backbone);
    const { baseLayers, backbone } = cached;
    assert.deepEqual(cached.model.layers[baseLayers - 1]!.outputShape, [SIZE / 8, SIZE / 8, TINY_FEATURE_CHANNELS]);
    // same seed, same initial head
    assert.deepEqual(cached.model.getLayerWeights('dense')[0]!.data, direct.getLayerWeights('dense')[0]!.data);

    const train = await cachedFeatures(cached.model, data.train, {
      baseLayers,
      key: await keyFor(backbone.weightsId, data.train),
      cacheDir,
      progress: false,
    });
    const validation = await cachedFeatures(cached.model, data.validation, {
      baseLayers,
      key: await keyFor(backbone.weightsId, data.validation),
      cacheDir,
      progress: false,
    });
    assert.equal(train.computed, 120);
    assert.equal(validation.computed, 30);
    assert.deepEqual(train.dataset.elementShape, [SIZE / 8, SIZE / 8, TINY_FEATURE_CHANNELS]);

    const viaFeatures = await cached.model.fit(train.dataset, {
      epochs: 2,
      validationData: validation.dataset,
      fromLayer: baseLayers,
      verbose: 0,
    });
    const viaImages = await direct.fit(data.train, { epochs: 2, validationData: data.validation, verbose: 0 });
    for (const k of ['loss', 'accuracy', 'val_loss', 'val_accuracy']) {
      assert.equal(viaFeatures.history[k]!.length, 2, k);
      assertClose(viaFeatures.history[k]!, viaImages.history[k]!, 1e-4, k);
    }
    // the frozen base did not move in the direct run (BatchNorm statistics included)
    for (const name of ['conv1', 'conv1_bn', 'conv_dw_2', 'conv_pw_3_bn']) {
      const before = backbone.weights.find((l) => l.layerName === name)!.weights;
      direct.getLayerWeights(name).forEach((w, i) => assert.deepEqual(w.data, before[i]!.data, `${name} weight ${i} unchanged`));
    }
  });
});

test('the feature cache is reused, and a changed key recomputes', { timeout: 600_000 }, async () => {
  await withTempDir('fc-reuse', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const data = await openData(cacheDir);
    const { model, baseLayers, backbone } = await transferModel();
    const key = await keyFor(backbone.weightsId, data.train);
    const first = await cachedFeatures(model, data.train, { baseLayers, key, cacheDir, progress: false });
    assert.equal(first.computed, 120);
    const second = await cachedFeatures(model, data.train, { baseLayers, key, cacheDir, progress: false });
    assert.equal(second.computed, 0, 'second call reuses the cache');
    assert.equal(second.dataset.file, first.dataset.file);
    assert.deepEqual(second.dataset.keys, data.train.keys, 'examples in data order');

    const changed = await cachedFeatures(model, data.train, {
      baseLayers,
      key: { ...key, preprocessing: 'scale01' },
      cacheDir,
      progress: false,
    });
    assert.equal(changed.computed, 120, 'a different preprocessing in the key recomputes');
    assert.notEqual(changed.dataset.file, first.dataset.file);
    const otherWeights = await cachedFeatures(model, data.train, {
      baseLayers,
      key: { ...key, weightsId: 'x'.repeat(64) },
      cacheDir,
      progress: false,
    });
    assert.equal(otherWeights.computed, 120, 'different weights recompute');
    // the original entry is still there and still valid
    const again = await cachedFeatures(model, data.train, { baseLayers, key, cacheDir, progress: false });
    assert.equal(again.computed, 0);
    assert.equal((await featureFile(cacheDir)).length, 3);
  });
});

test("compare's feature key names the float32 convolution algorithm: features of another one are recomputed", {
  timeout: 600_000,
}, async () => {
  await withTempDir('fc-algorithm', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const data = await openData(cacheDir);
    const { model, baseLayers, backbone } = await transferModel();
    const extract = async (algorithm: 'auto' | 'direct') =>
      (
        await cachedFeatures(model, data.train, {
          baseLayers,
          key: await featureCacheKey(model, baseLayers, backbone, data.train, algorithm),
          cacheDir,
          progress: false,
        })
      ).computed;
    assert.equal(await extract('auto'), 120);
    assert.equal(await extract('direct'), 120, "Winograd's features are not served for direct convolution");
    assert.equal(await extract('auto'), 0, 'the first entry is still valid');
    assert.equal((await featureFile(cacheDir)).length, 2);
  });
});

/** `data`, whose batches break off with an error once `limit` examples were read: an interrupted extraction. */
function interruptedAfter<T extends Dataset>(data: T, limit: number): T {
  async function* batches(options?: Parameters<Dataset['batches']>[0]) {
    let read = 0;
    for await (const batch of data.batches(options)) {
      if (read >= limit) throw new Error(`stopped after ${read} examples`);
      yield batch;
      read += batch.shape[0];
    }
  }
  return new Proxy(data, {
    get: (target, prop) => {
      if (prop === 'batches') return batches;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

test('an interrupted extraction resumes where it stopped and ends byte-identical to an uninterrupted one', {
  timeout: 600_000,
}, async () => {
  await withTempDir('fc-resume', async (dir) => {
    const cacheA = path.join(dir, 'cache-a');
    const cacheB = path.join(dir, 'cache-b');
    const data = await openData(cacheA);
    const { model, baseLayers, backbone } = await transferModel();
    const key = await keyFor(backbone.weightsId, data.train);

    await assert.rejects(
      cachedFeatures(model, interruptedAfter(data.train, 40), { baseLayers, key, cacheDir: cacheA, progress: false }),
      /stopped after/,
    );
    const [entry] = await featureFile(cacheA);
    const progress = JSON.parse(await readFile(path.join(entry!, 'progress.json'), 'utf8')) as { done: number };
    assert.ok(progress.done >= 40 && progress.done < 120, `some but not all examples done (${progress.done})`);
    assert.equal((await stat(path.join(entry!, 'features.f32.partial'))).size, progress.done * FEATURE_BYTES);
    await assert.rejects(stat(path.join(entry!, 'features.f32')), 'no complete file before the extraction ends');

    const resumed = await cachedFeatures(model, data.train, { baseLayers, key, cacheDir: cacheA, progress: false });
    assert.equal(resumed.computed, 120 - progress.done, 'only the remainder is computed');
    assert.equal(resumed.dataset.size, 120);

    const whole = await cachedFeatures(model, data.train, { baseLayers, key, cacheDir: cacheB, progress: false });
    assert.equal(whole.computed, 120);
    const a = await readFile(resumed.dataset.file);
    const b = await readFile(whole.dataset.file);
    assert.equal(a.length, 120 * FEATURE_BYTES);
    assert.ok(a.equals(b), 'resumed features equal uninterrupted features byte for byte');
    const fa = await allFeatures(resumed.dataset);
    const fb = await allFeatures(whole.dataset);
    assert.deepEqual(fa.y, fb.y, 'labels in the same order');
    assert.deepEqual(fa.keys, fb.keys, 'keys in the same order');
    assert.deepEqual(fa.keys, [...data.train.keys]);
  });
});

test('a half-written features file is detected and rebuilt, never read', { timeout: 600_000 }, async () => {
  await withTempDir('fc-damaged', async (dir) => {
    const cacheDir = path.join(dir, 'cache');
    const data = await openData(cacheDir);
    const { model, baseLayers, backbone } = await transferModel();
    const key = await keyFor(backbone.weightsId, data.validation);
    const first = await cachedFeatures(model, data.validation, { baseLayers, key, cacheDir, progress: false });
    assert.equal(first.computed, 30);
    const reference = await readFile(first.dataset.file);
    await truncate(first.dataset.file, Math.floor(reference.length / 2) + 3);

    const rebuilt = await cachedFeatures(model, data.validation, { baseLayers, key, cacheDir, progress: false });
    assert.equal(rebuilt.computed, 30, 'the damaged entry is rebuilt');
    assert.ok((await readFile(rebuilt.dataset.file)).equals(reference), 'rebuilt features equal the original ones');
    const served = await allFeatures(rebuilt.dataset);
    assert.equal(served.x.length * 4, reference.length);
  });
});
