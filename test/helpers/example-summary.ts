import type { EpochHistory, ModelRunSummary, RunSummary } from '../../lib/reports/types.js';

/**
 * A plausible, entirely synthetic RunSummary shaped like the reproduced experiment (CNN overfits
 * to ≈0.87 with rising val_loss, TRANSFER ≈0.95 from epoch 1). For tests and report previews only:
 * none of these numbers were measured.
 */
export function exampleRunSummary(epochs = 5): RunSummary {
  const cnnHistory = curve(epochs, (t) => ({
    loss: 0.68 * Math.exp(-2.6 * t) + 0.03,
    accuracy: 0.58 + 0.41 * (1 - Math.exp(-3 * t)),
    val_loss: 0.62 - 0.55 * t + 0.6 * t * t,
    val_accuracy: 0.7 + 0.45 * t - 0.28 * t * t,
  }));
  const transferHistory = curve(epochs, (t) => ({
    loss: 0.21 * Math.exp(-2 * t) + 0.04,
    accuracy: 0.91 + 0.08 * (1 - Math.exp(-2 * t)),
    val_loss: 0.15 + 0.06 * t,
    val_accuracy: 0.94 + 0.012 * Math.sin(3 * t),
  }));
  return {
    title: 'CNN vs VGG16 transfer on cats_vs_dogs (synthetic example)',
    createdAt: '2024-05-01T12:00:00.000Z',
    config: { epochs, batchSize: 64, imageSize: [300, 300], schedule: 'faithful', optimizer: { name: 'adam', learningRate: 0.001 } },
    environment: { node: 'v20.11.1', platform: 'linux x64', device: 'cpu' },
    dataset: {
      name: 'cats_vs_dogs',
      source: 'kagglecatsanddogs_5340.zip',
      files: 25002,
      skippedByName: 2,
      skippedByJfif: 1738,
      examples: 23262,
      splits: { train: 18610, validation: 4652 },
      classNames: ['cat', 'dog'],
      classCounts: { train: [9305, 9305], validation: [2326, 2326] },
      decodeFailures: [{ path: 'PetImages/Cat/666.jpg', reason: 'VipsJpeg: Premature end of JPEG file' }],
    },
    validation: { examples: 4652 },
    models: [
      model('cnn', 'CNN', cnnHistory, { total: 3367649, trainable: 3367649, nonTrainable: 0 }, 11.2, 'bigger'),
      model('transfer', 'TRANSFER', transferHistory, { total: 17369025, trainable: 2654337, nonTrainable: 14714688 }, 39.4, 'smaller'),
    ],
  };
}

function curve(epochs: number, at: (t: number) => EpochHistory extends infer H ? { [K in keyof H]: number } : never): EpochHistory {
  const h: EpochHistory = { loss: [], accuracy: [], val_loss: [], val_accuracy: [] };
  for (let e = 0; e < epochs; e++) {
    const v = at(epochs === 1 ? 0 : e / (epochs - 1));
    for (const k of Object.keys(h) as (keyof EpochHistory)[]) h[k].push(round4(v[k]));
  }
  return h;
}

function model(
  name: string,
  label: string,
  history: EpochHistory,
  params: ModelRunSummary['params'],
  secondsPerEpoch: number,
  wrongSet: 'bigger' | 'smaller',
): ModelRunSummary {
  const bestIndex = history.val_loss.reduce((best, v, i, all) => (v < all[best]! ? i : best), 0);
  const bestAccuracyIndex = history.val_accuracy.reduce((best, v, i, all) => (v > all[best]! ? i : best), 0);
  const last = history.val_accuracy.length - 1;
  const epochSeconds = history.loss.map((_, i) => round4(secondsPerEpoch + (i === 0 ? 1.5 : 0.1 * (i % 3))));
  const trainingSeconds = round4(epochSeconds.reduce((a, b) => a + b, 0));
  const featureExtractionSeconds = name === 'transfer' ? 95.5 : 0;
  const errors = wrongSet === 'bigger' ? 602 : 233;
  return {
    name,
    label,
    history,
    best: { epoch: bestIndex + 1, val_loss: history.val_loss[bestIndex]!, val_accuracy: history.val_accuracy[bestIndex]! },
    bestAccuracy: { epoch: bestAccuracyIndex + 1, val_accuracy: history.val_accuracy[bestAccuracyIndex]! },
    final: { val_loss: history.val_loss[last]!, val_accuracy: history.val_accuracy[last]! },
    checkpoint: {
      name: 'best',
      epoch: bestIndex + 1,
      val_loss: history.val_loss[bestIndex]!,
      val_accuracy: history.val_accuracy[bestIndex]!,
      examples: 4652,
    },
    timings: {
      dataSeconds: 120.25,
      featureExtractionSeconds,
      trainingSeconds,
      evaluationSeconds: 8.5,
      totalSeconds: round4(120.25 + featureExtractionSeconds + trainingSeconds + 8.5),
    },
    params,
    epochSeconds,
    msPerStep: round4((secondsPerEpoch / 233) * 1000),
    summaryText:
      `Model: "${name}"\n_________________________________________________________________\n Layer (type)                Output Shape      ` +
      `        Param #\n=================================================================\n ` +
      `...\n=================================================================\nTotal params: ${params.total.toLocaleString('en-US')}\nTrainable ` +
      `params: ${params.trainable.toLocaleString('en-US')}\nNon-trainable params: ${params.nonTrainable.toLocaleString('en-US')}\n_________________________________________________________________`,
    confusion: {
      classNames: ['cat', 'dog'],
      matrix: [
        [2326 - errors / 2, errors / 2],
        [errors / 2, 2326 - errors / 2],
      ],
    },
    mostConfidentlyWrong: [
      {
        source: 'archive.zip:PetImages/Cat/1234.jpg',
        key: 'PetImages/Cat/1234.jpg',
        trueClass: 'cat',
        predictedClass: 'dog',
        confidence: 0.998,
        thumbnailBase64: TINY_JPEG_BASE64,
      },
      {
        source: 'archive.zip:PetImages/Dog/42.jpg',
        key: 'PetImages/Dog/42.jpg',
        trueClass: 'dog',
        predictedClass: 'cat',
        confidence: 0.97,
      },
    ],
  };
}

function round4(x: number): number {
  return Math.round(x * 10000) / 10000;
}

/** A valid 48x48 orange JPEG, so example thumbnails render without shipping image files. */
export const TINY_JPEG_BASE64 =
  '/9j/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdBRkxOUlNSMj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT0//wAARCAAwADADASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAP/xAAUEAEAAAAAAAAAAAAAAAAAAAAA/8QAFQEBAQAAAAAAAAAAAAAAAAAAAAX/xAAUEQEAAAAAAAAAAAAAAAAAAAAA/9oADAMBAAIRAxEAPwCwCMtAAAAAAAAAAAAAAAAP/9k=';
