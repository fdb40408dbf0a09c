import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Dataset } from '../data/types.js';
import { renderLrFind } from '../reports/lr-find-chart.js';
import { cachedFeatures } from '../training/feature-cache.js';
import { type LrFindOptions, type LrFindResult, lrFind } from '../training/lr-finder.js';
import { writeFileAtomic } from '../util/atomic.js';
import { resolveCacheDir } from '../util/cache-dir.js';
import { applyEngineConfig, runPolicy } from './compare.js';
import { type CompareConfig, MODEL_LABELS, type ModelKind } from './config.js';
import { decodeExperimentData, inspectExperimentData } from './data.js';
import { buildModel, featureCacheKey } from './train-model.js';

export interface LrFindRun extends LrFindResult {
  /** files written: the plot as PNG and SVG, and the sweep as CSV. */
  files: string[];
}

/**
 * The range test for one of compare's models on compare's data (training split): the CNN on images,
 * or the transfer head on the frozen base's cached features, as compare trains it.
 */
export async function runLrFind(
  config: CompareConfig,
  kind: ModelKind,
  options: Omit<LrFindOptions, 'fromLayer'> & { log?: (line: string) => void },
): Promise<LrFindRun> {
  const log = options.log ?? ((line: string) => console.log(line));
  applyEngineConfig(config);
  const data = await decodeExperimentData(await inspectExperimentData(config), config);
  const classes = data.train.classNames.length;
  const { model, baseLayers, backbone } = await buildModel(kind, config, classes, runPolicy(config, log));
  model.compile({
    optimizer: { adam: { learningRate: config.learningRate } },
    loss: classes > 2 ? 'sparseCategoricalCrossentropy' : 'binaryCrossentropy',
  });
  let train: Dataset = data.train;
  let fromLayer = 0;
  if (backbone && config.featureCache) {
    // the same cache key as compare's, so either command reuses the other's features
    const key = await featureCacheKey(model, baseLayers, backbone, data.train, config.convAlgorithm);
    train = (
      await cachedFeatures(model, data.train, { baseLayers, key, cacheDir: resolveCacheDir(config.cacheDir), label: 'features (train)' })
    ).dataset;
    fromLayer = baseLayers;
  }
  log(`${MODEL_LABELS[kind]}: learning-rate range test on ${data.train.size} training examples, batch ${config.batchSize}`);
  const result = await lrFind(model, train, { ...options, fromLayer });

  const out = path.resolve(config.out);
  await fs.mkdir(out, { recursive: true });
  const stem = path.join(out, `lr-find-${kind}`);
  const { svg, png } = await renderLrFind(result, `${MODEL_LABELS[kind]}: learning-rate range test`);
  const csv = result.learningRates.map((lr, i) => `${i + 1},${lr},${result.losses[i]},${result.smoothedLosses[i]}`);
  await writeFileAtomic(`${stem}.csv`, `${['iteration,learning_rate,loss,smoothed_loss', ...csv].join('\n')}\n`);
  await writeFileAtomic(`${stem}.svg`, svg);
  await writeFileAtomic(`${stem}.png`, png);
  return { ...result, files: [`${stem}.png`, `${stem}.svg`, `${stem}.csv`] };
}
