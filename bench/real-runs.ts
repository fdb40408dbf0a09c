import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { transferModel } from '../lib/applications/transfer-model.js';
import { vgg16 } from '../lib/applications/vgg16.js';
import { openImageFolder } from '../lib/data/image-folder.js';
import type { Batch } from '../lib/data/types.js';
import { emptyCache } from '../lib/engine/memory.js';
import { defaultHeadLayers, experimentCnn } from '../lib/models/zoo.js';
import type { Callback } from '../lib/training/callbacks.js';
import { cachedFeatures } from '../lib/training/feature-cache.js';
import { median, peakRssOf, seconds, timedSteps } from './measure.js';
import { ASSETS_HINT, generatePhotos, realPetImagesDir } from './photos.js';
import { ratioRangeText } from './report.js';

/**
 * Real runs from real caches, as `compare` runs them: photos decoded into a fresh decoded cache
 * (decode rates), a CNN epoch of `fit` read from that cache next to the same model's bare engine
 * step, and the transfer model trained both ways: one uncached epoch through the frozen VGG16
 * base, versus the feature pass into a real feature cache plus `epochs` head epochs of `fit`
 * read from it (next to the head's bare engine step). Photos are the real ones from
 * TRANSFERLAB_TEST_ASSETS when set, generated photo-like JPEGs otherwise.
 */

const SIZE = 300;
/** CNN epochs timed, each against the engine step after it (odd: a median epoch) */
const CNN_EPOCHS = 3;

function log(msg: string): void {
  process.stderr.write(`  ${msg}\n`);
}

/**
 * Median seconds of `steps` engine steps on one batch held in memory (after one warm-up step).
 * `steps` is odd, so that the median is a step's own time (the "median" of 2 was the slower one).
 */
async function engineStep(steps: number, fn: () => Promise<unknown>): Promise<number> {
  if (steps % 2 === 0) throw new Error(`engineStep: an odd number of steps has a median (got ${steps})`);
  return median(await timedSteps(1, steps, fn));
}

/**
 * Pairs each epoch of `fit` with the bare engine step measured right after it (the median of 3
 * steps in onEpochEnd, outside the epoch's own time), so that a neighbour's load hits
 * both sides of each epoch's ratio alike. The engine steps train the model too; the bench reads
 * only times.
 */
class PairedEpochs implements Callback {
  readonly epochSeconds: number[] = [];
  readonly engineSeconds: number[] = [];
  private began = 0;

  constructor(private readonly engineStepOf: () => Promise<unknown>) {}

  onEpochBegin(): void {
    this.began = performance.now();
  }

  async onEpochEnd(): Promise<void> {
    this.epochSeconds.push((performance.now() - this.began) / 1000);
    this.engineSeconds.push(await engineStep(3, this.engineStepOf));
  }

  /** per epoch: `work` (its images per second, or seconds per step) over the same of its engine step */
  ratios(work: (epochSeconds: number, engineSeconds: number) => number): number[] {
    return this.epochSeconds.map((s, i) => work(s, this.engineSeconds[i]!));
  }
}

async function firstBatch(batches: AsyncIterable<Batch>): Promise<Batch> {
  for await (const b of batches) return b;
  throw new Error('empty dataset');
}

export async function benchRealRuns(opts: { images: number; batch: number; headEpochs: number }): Promise<Record<string, unknown>> {
  const perClass = Math.ceil(opts.images / 2);
  const pet = await realPetImagesDir();
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-bench-real-'));
  try {
    let inputs: string;
    if (pet) {
      // an image folder of links to real photos (ids 1-2500 are all valid), half cats, half dogs
      for (const cls of ['Cat', 'Dog']) {
        await fs.mkdir(path.join(work, 'images', cls), { recursive: true });
        for (let i = 1; i <= perClass; i++) await fs.symlink(path.join(pet, cls, `${i}.jpg`), path.join(work, 'images', cls, `${i}.jpg`));
      }
      inputs = `real photos from ${pet}`;
    } else {
      log(`generating ${2 * perClass} photo-like JPEGs (${ASSETS_HINT})`);
      await generatePhotos(path.join(work, 'images'), perClass);
      inputs = 'generated 500x375 JPEGs';
    }
    const cacheDir = path.join(work, 'cache');
    let opened: Awaited<ReturnType<typeof openImageFolder>> | undefined;
    const cold = await seconds(async () => {
      opened = await openImageFolder({
        root: path.join(work, 'images'),
        imageSize: [SIZE, SIZE],
        batchSize: opts.batch,
        splits: ['train[1:]', 'train[:1]'],
        cacheDir,
        progress: false,
        shuffleSeed: 1,
      });
    });
    const train = opened!.train;
    let n = 0;
    const cached = await seconds(async () => {
      for await (const b of train.batches()) n += b.shape[0];
    });
    log(`decode: ${train.size} images cold ${(train.size / cold).toFixed(1)} img/s, cached ${(n / cached).toFixed(0)} img/s`);

    // CNN: epochs of fit from the decoded cache, each paired with the bare engine step on one batch
    const cnn = experimentCnn([SIZE, SIZE, 3], { seed: 1 });
    cnn.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['accuracy'] });
    const b0 = await firstBatch(train.batches());
    const cnnPaired = new PairedEpochs(() => cnn.engine.trainStep(b0.x, b0.shape, b0.y, 0));
    let cnnEval = 0;
    const peak: Record<string, number | null> = {};
    // the epochs and then evaluation, as compare runs them (the smaller last batch included)
    peak.cnn = await peakRssOf(async () => {
      await cnn.fit(train, { epochs: CNN_EPOCHS, verbose: 0, callbacks: [cnnPaired] });
      cnnEval = await seconds(() => cnn.evaluate(train));
    });
    const cnnEpochImgPerSec = (CNN_EPOCHS * train.size) / cnnPaired.epochSeconds.reduce((a, b) => a + b, 0);
    const cnnStepImgPerSec = b0.shape[0] / median(cnnPaired.engineSeconds);
    const cnnRatios = cnnPaired.ratios((epoch, step) => train.size / epoch / (b0.shape[0] / step));
    const cnnRatio = median(cnnRatios);
    log(
      `CNN: epoch ${cnnEpochImgPerSec.toFixed(1)} img/s, engine step ${cnnStepImgPerSec.toFixed(1)} img/s; ` +
        `per epoch ${ratioRangeText(cnnRatio, cnnRatios)}`,
    );

    // transfer: frozen VGG16 base + the experiment's head (compare empties the cache between models too)
    emptyCache();
    const base = await vgg16({ includeTop: false, weights: null, inputShape: [SIZE, SIZE, 3] });
    const model = transferModel({ base, head: defaultHeadLayers(), trainableBase: false, preprocessing: 'scale01', seed: 1 });
    model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['accuracy'] });
    const baseLayers = model.baseLayers;
    let uncachedEpoch = 0;
    peak.transferUncached = await peakRssOf(async () => {
      uncachedEpoch = await seconds(() => model.fit(train, { epochs: 1, verbose: 0 }));
    });
    emptyCache();
    log(`transfer: one uncached epoch ${uncachedEpoch.toFixed(1)} s`);
    let features: Awaited<ReturnType<typeof cachedFeatures>>['dataset'] | undefined;
    let featureSeconds = 0;
    peak.features = await peakRssOf(async () => {
      featureSeconds = await seconds(async () => {
        const key = {
          weightsId: 'bench',
          outputLayer: 'block5_pool',
          inputShape: [SIZE, SIZE, 3],
          preprocessing: 'scale01',
          bf16: false,
          data: work,
        };
        features = (await cachedFeatures(model, train, { baseLayers, key, cacheDir, progress: false, shuffleSeed: 1 })).dataset;
      });
    });
    emptyCache(); // as compare does before the head trains
    const fb = await firstBatch(features!.batches());
    const entry = model.engineIndex(baseLayers, true);
    const paired = new PairedEpochs(() => model.engine.trainStep(fb.x, fb.shape, fb.y, entry));
    peak.head = await peakRssOf(() =>
      model.fit(features!, { epochs: opts.headEpochs, fromLayer: baseLayers, verbose: 0, callbacks: [paired] }),
    );
    const headEval = await seconds(() => model.evaluate(features!, { fromLayer: baseLayers }));
    const headFit = paired.epochSeconds.reduce((a, b) => a + b, 0);
    const stepsPerEpoch = Math.ceil(features!.size / features!.batchSize);
    const headEpochStep = headFit / (opts.headEpochs * stepsPerEpoch);
    const headStep = median(paired.engineSeconds);
    const headRatios = paired.ratios((epoch, step) => epoch / stepsPerEpoch / step);
    const headRatio = median(headRatios);
    log(
      `transfer: features ${featureSeconds.toFixed(1)} s, head ${opts.headEpochs} epochs ${headFit.toFixed(1)} s ` +
        `(${(headEpochStep * 1000).toFixed(1)} ms/step; engine step ${(headStep * 1000).toFixed(1)} ms; ` +
        `per epoch ${ratioRangeText(headRatio, headRatios)})`,
    );
    return {
      inputs,
      images: train.size,
      decodeColdImgPerSec: train.size / cold,
      decodeCachedImgPerSec: n / cached,
      cnnEpochImgPerSec,
      cnnEvalImgPerSec: train.size / cnnEval,
      cnnEngineStepImgPerSec: cnnStepImgPerSec,
      cnnEpochVsEngineStep: cnnRatio,
      cnnEpochRatios: cnnRatios,
      uncachedEpochSeconds: uncachedEpoch,
      featureSeconds,
      featureImgPerSec: train.size / featureSeconds,
      headEpochs: opts.headEpochs,
      headSeconds: headFit,
      headEpochStepMs: headEpochStep * 1000,
      headEvalImgPerSec: features!.size / headEval,
      headEngineStepMs: headStep * 1000,
      // the median of the per-epoch ratios (each epoch against the engine step measured right after it)
      headEpochStepVsEngineStep: headRatio,
      headEpochRatios: headRatios,
      // each loop's own peak resident memory (the process's high-water mark reset before it)
      peakRssBytesByLoop: peak,
      // 20 uncached epochs (each as the one measured) over the measured cached path: one feature pass + the head epochs
      transferCostRatioUncachedToCached: (opts.headEpochs * uncachedEpoch) / (featureSeconds + headFit),
    };
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
