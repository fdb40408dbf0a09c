import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Backbone } from '../applications/backbone.js';
import { transferModel } from '../applications/transfer-model.js';
import type { OpenedDatasets } from '../data/index.js';
import type { Dataset } from '../data/types.js';
import { allreduceSum, barrier, distributedInfo, isChief } from '../distributed/index.js';
import { workerDevice } from '../distributed/launch-env.js';
import { emptyCache } from '../engine/memory.js';
import type { ConvAlgorithm } from '../engine/native.js';
import { lastConvolutionalLayer } from '../models/grad-cam.js';
import type { DtypePolicyName } from '../models/mixed-precision.js';
import type { Sequential } from '../models/sequential.js';
import { cnnForClasses, defaultHeadLayers } from '../models/zoo.js';
import type { ModelRunSummary } from '../reports/types.js';
import { restoreCheckpoint, saveModel } from '../saving/persistence.js';
import { BackupAndRestore, type BackupState } from '../training/backup-and-restore.js';
import { type Callback, ModelCheckpoint } from '../training/callbacks.js';
import { CyclingDataset, cachedFeatures, datasetIdentity, type FeatureKey } from '../training/feature-cache.js';
import type { Logs } from '../training/history.js';
import { ReduceLROnPlateau } from '../training/reduce-lr-on-plateau.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { resolveCacheDir } from '../util/cache-dir.js';
import { augmentationLayers } from './augment-policy.js';
import { loadBackbone } from './backbone.js';
import { type CompareConfig, faithfulSchedule, MODEL_LABELS, type ModelKind } from './config.js';
import { confusionMatrix, mostConfident, validationCurves } from './evaluation.js';
import { gradCamOverlays } from './grad-cam-images.js';
import { parseLrSchedule, parsePlateau } from './learning-rate-options.js';
import { historyProblem } from './verdict.js';

/** The experiment's records that a model's `last/` backup keeps besides epochs and history. */
interface RunState {
  epochSeconds: number[];
  stepSeconds: number[];
  best: { epoch: number; val_loss: number };
  /** data preparation and feature extraction of the sessions that trained this model (absent in older runs). */
  phaseSeconds?: { data: number; features: number };
}

export class InterruptedError extends Error {}

export interface Built {
  model: Sequential;
  /** layers [0, baseLayers) are the frozen pretrained base (0 for the CNN). */
  baseLayers: number;
  backbone?: Backbone;
}

/**
 * The feature-cache key of a frozen base's output: what makes cached features valid for this model
 * and data, computed with `convolutions` (the run's native().setConvAlgorithm).
 */
export async function featureCacheKey(
  model: Sequential,
  baseLayers: number,
  backbone: Backbone,
  data: Dataset,
  convolutions: ConvAlgorithm,
): Promise<FeatureKey> {
  const bf16 = model.dtypePolicy.computeDtype === 'bfloat16';
  return {
    weightsId: backbone.weightsId,
    outputLayer: model.layers[baseLayers - 1].config.config.name,
    inputShape: model.inputShape,
    preprocessing: model.preprocessing,
    bf16,
    ...(bf16 ? {} : { convolutions }),
    data: await datasetIdentity(data),
  };
}

/** The model of `kind`; a transfer model's base is `loaded` when given (preflight loaded it), else read now. */
export async function buildModel(
  kind: ModelKind,
  config: CompareConfig,
  classes: number,
  dtype: DtypePolicyName,
  loaded?: Backbone,
): Promise<Built> {
  const inputShape = [...config.imageSize, 3];
  const augmentation = config.augment ? augmentationLayers(config.augment) : [];
  if (kind === 'cnn')
    return {
      model: cnnForClasses(inputShape, classes, { seed: config.seed, dtype, augmentation, device: workerDevice(config.device ?? 'cpu') }),
      baseLayers: 0,
    };
  const backbone = loaded ?? (await loadBackbone(config, inputShape));
  // the experiment feeds x / 255 to VGG16 too (its Keras original did), unless its config names a preprocessing
  const preprocessing = config.preprocess ?? (config.backbone === 'vgg16' ? 'scale01' : backbone.nativePreprocessing);
  const model = transferModel({
    base: backbone,
    head: defaultHeadLayers({ hiddenUnits: config.headUnits, classes }),
    trainableBase: false,
    inputShape,
    preprocessing,
    seed: config.seed,
    augmentation,
    dtype,
    device: workerDevice(config.device ?? 'cpu'),
  });
  return { model, baseLayers: model.baseLayers, backbone };
}

function historyCsv(history: Record<string, number[]>): string {
  const keys = ['loss', 'accuracy', 'val_loss', 'val_accuracy', 'learning_rate'].filter((k) => history[k]);
  const rows = (history[keys[0]] ?? []).map((_, i) => [i + 1, ...keys.map((k) => history[k][i])].join(','));
  return `${[`epoch,${keys.join(',')}`, ...rows].join('\n')}\n`;
}

/** Records epoch and step times, and stops cleanly on Ctrl-C at the next batch boundary. */
class RunMonitor implements Callback {
  epochSeconds: number[] = [];
  stepSeconds: number[] = [];
  private epochStart = 0;
  private stepStart = 0;
  constructor(private readonly interrupted: () => boolean) {}
  onEpochBegin(): void {
    this.epochStart = this.stepStart = performance.now();
  }
  async onBatchEnd(): Promise<void> {
    const now = performance.now();
    this.stepSeconds.push((now - this.stepStart) / 1000);
    this.stepStart = now;
    // ranks get Ctrl-C at slightly different batches: they stop together when any of them got it,
    // or the others would wait in the next step's all-reduce until the timeout
    const interrupted = distributedInfo() ? (await allreduceSum([this.interrupted() ? 1 : 0]))[0]! > 0 : this.interrupted();
    if (interrupted) throw new InterruptedError('interrupted');
  }
  onEpochEnd(): void {
    this.epochSeconds.push((performance.now() - this.epochStart) / 1000);
  }
}

export interface TrainModelContext {
  runDir: string;
  config: CompareConfig;
  data: OpenedDatasets;
  kind: ModelKind;
  resume: boolean;
  /** wall time this session spent listing and decoding the data, which every model needs. */
  dataSeconds: number;
  /** the policy this machine runs `config.mixedPrecision` with (runPolicy). */
  dtypePolicy: DtypePolicyName;
  /** the transfer model's base as preflight loaded it (read again when absent). */
  backbone?: Backbone;
  interrupted: () => boolean;
  log: (line: string) => void;
}

/**
 * Trains one model of the comparison, writing its checkpoints and records under
 * `<run>/<model>/`, and returns its summary. With `resume`, continues from `last/`.
 */
export async function trainModel(ctx: TrainModelContext): Promise<ModelRunSummary> {
  const { config, data, kind } = ctx;
  const dir = path.join(ctx.runDir, kind);
  const classNames = data.train.classNames;
  const { model, baseLayers, backbone } = await buildModel(kind, config, classNames.length, ctx.dtypePolicy, ctx.backbone);
  const loss = classNames.length > 2 ? 'sparseCategoricalCrossentropy' : 'binaryCrossentropy';
  const learningRate = config.lrSchedule ? parseLrSchedule(config.lrSchedule, config.learningRate) : config.learningRate;
  model.compile({ optimizer: { adam: { learningRate } }, loss, metrics: ['accuracy'] });
  const summaryText = model.summary(false);
  ctx.log(summaryText);
  // in a data-parallel run, only rank 0 writes the run folder
  if (isChief()) await writeFileAtomic(path.join(dir, 'summary.txt'), `${summaryText}\n`);

  // last/ is a BackupAndRestore backup that outlives fit: --resume continues from it, and the
  // fine-tuning fit continues the first fit's records.
  const monitor = new RunMonitor(ctx.interrupted);
  const saveOptions = { classNames, baseLayers };
  const checkpoint = new ModelCheckpoint<Sequential>({
    filepath: path.join(dir, 'best'),
    monitor: 'val_loss',
    saveBestOnly: true,
    save: (m, target) => saveModel(m, target, saveOptions),
  });
  const backup = new BackupAndRestore(path.join(dir, 'last'), {
    deleteCheckpoint: false,
    saveOptions,
    state: (): RunState => ({
      epochSeconds: [...state.epochSeconds, ...monitor.epochSeconds],
      stepSeconds: [...state.stepSeconds, ...monitor.stepSeconds],
      best: { epoch: checkpoint.bestEpoch, val_loss: checkpoint.best },
      phaseSeconds,
    }),
  });
  const saved = ctx.resume ? ((await backup.saved()) as (BackupState & RunState) | undefined) : undefined;
  const state = saved ?? { completedEpochs: 0, history: {}, epochSeconds: [], stepSeconds: [], best: { epoch: -1, val_loss: Infinity } };
  if (saved) ctx.log(`${MODEL_LABELS[kind]}: resuming after epoch ${saved.completedEpochs}`);

  // Data and feature time count for a model in each session that trains it.
  const phaseSeconds = { data: state.phaseSeconds?.data ?? 0, features: state.phaseSeconds?.features ?? 0 };
  if (state.completedEpochs < config.epochs + (kind === 'transfer' ? config.fineTuneEpochs : 0)) phaseSeconds.data += ctx.dataSeconds;

  // Training inputs: images, or the frozen base's cached features for the head.
  let train: Dataset = data.train;
  let validation: Dataset = data.validation;
  let fromLayer = 0;
  // Augmentation makes cached features of the plain images wrong for training: either the base runs
  // on every augmented batch, or K augmented passes are cached and reused in turn.
  const augmentCache = config.augment ? config.augmentCacheEpochs : undefined;
  if (backbone && config.featureCache && config.augment && !augmentCache) {
    ctx.log(
      `${MODEL_LABELS[kind]}: --augment: the frozen base runs on every augmented training batch (no feature cache), a full ` +
        `forward pass of the base over ${data.train.size} images per epoch instead of once; ` +
        `--augment-cache-epochs K caches K augmented passes and cycles through them`,
    );
  }
  if (backbone && config.featureCache && (!config.augment || augmentCache) && state.completedEpochs < config.epochs) {
    // the base is frozen until fine-tuning, so its weights are the backbone's as loaded
    const keyFor = (d: Dataset) => featureCacheKey(model, baseLayers, backbone, d, config.convAlgorithm);
    const cacheDir = resolveCacheDir(config.cacheDir);
    const featuresStart = performance.now();
    const trainPasses: Dataset[] = [];
    for (let pass = 0; pass < (augmentCache ?? 1); pass++) {
      const augmentation = augmentCache
        ? { layers: model.layers.slice(0, model.leadingAugmentation).map((l) => l.config), seed: model.seed, pass }
        : undefined;
      const label = augmentCache ? `features (train, augmented pass ${pass + 1}/${augmentCache})` : 'features (train)';
      trainPasses.push(
        (
          await cachedFeatures(model, data.train, {
            baseLayers,
            key: { ...(await keyFor(data.train)), ...(augmentation ? { augmentation } : {}) },
            cacheDir,
            label,
            shuffleSeed: config.shuffleSeed,
          })
        ).dataset,
      );
    }
    train = trainPasses.length === 1 ? trainPasses[0] : new CyclingDataset(trainPasses);
    validation = (
      await cachedFeatures(model, data.validation, {
        baseLayers,
        key: await keyFor(data.validation),
        cacheDir,
        label: 'features (validation)',
      })
    ).dataset;
    fromLayer = baseLayers;
    phaseSeconds.features += (performance.now() - featuresStart) / 1000;
    emptyCache(); // the base's activation buffers are far larger than anything the head needs
  }

  const schedule = config.faithful ? faithfulSchedule(data.train.size, data.validation.size, config.batchSize) : undefined;
  checkpoint.best = state.best.val_loss ?? Infinity; // JSON stores the initial Infinity as null
  checkpoint.bestEpoch = state.best.epoch;
  const history: Record<string, number[]> = structuredClone(state.history);
  const records: Callback = {
    onEpochEnd: async (_epoch: number, logs: Logs) => {
      for (const [k, v] of Object.entries(logs)) (history[k] ??= []).push(v);
      if (!isChief()) return;
      await writeJsonAtomic(path.join(dir, 'history.json'), history);
      await writeFileAtomic(path.join(dir, 'history.csv'), historyCsv(history));
    },
  };
  // the backup after the best checkpoint and a plateau's lowered rate, so it records both
  const plateau = config.reduceLrOnPlateau === undefined ? [] : [new ReduceLROnPlateau(parsePlateau(config.reduceLrOnPlateau))];
  const callbacks: Callback[] = [monitor, checkpoint, ...plateau, backup, records];
  const epochs = config.epochs;
  // Always run: with training already past it, fit only restores last/ and trains no epoch.
  await model.fit(train, {
    epochs,
    validationData: validation,
    fromLayer,
    stepsPerEpoch: schedule?.stepsPerEpoch,
    validationSteps: schedule?.validationSteps,
    callbacks,
  });

  // Fine-tuning (beyond the experiment): unfreeze the top of the base, continue at a low rate.
  const fineTune = kind === 'transfer' && config.fineTuneEpochs > 0;
  const epochsDone = () => history.loss?.length ?? 0;
  if (fineTune && epochsDone() < epochs + config.fineTuneEpochs) {
    // BatchNormalization layers stay frozen, in inference mode, as Keras's fine-tuning guide advises:
    // batch statistics of small batches would wreck the pretrained features.
    const unfrozen = model.layers
      .slice(Math.max(0, baseLayers - config.fineTuneLayers), baseLayers)
      .filter((l) => l.config.class_name !== 'BatchNormalization')
      .map((l) => l.config.config.name);
    for (const name of unfrozen) model.setTrainable(name, true);
    model.compile({ optimizer: { adam: { learningRate: config.fineTuneLearningRate } }, loss, metrics: ['accuracy'] });
    ctx.log(
      `${MODEL_LABELS[kind]}: fine-tuning the last ${unfrozen.length} base layers (${unfrozen.join(', ')}) at learning rate ${config.fineTuneLearningRate}`,
    );
    await model.fit(data.train, {
      // resuming inside fine-tuning, the backup (past `epochs`) brings the fine-tuning optimizer state
      epochs: epochs + config.fineTuneEpochs,
      initialEpoch: epochs,
      validationData: data.validation,
      stepsPerEpoch: schedule?.stepsPerEpoch,
      validationSteps: schedule?.validationSteps,
      callbacks,
    });
  }

  // One checkpoint for every figure after training: best/ (lowest val_loss), the one predict loads,
  // evaluated on the whole validation split for the confusion matrix and the gallery.
  const evaluationStart = performance.now();
  const bestDir = path.join(dir, 'best');
  await barrier(); // every rank reads best/ once rank 0 has written it
  // Without best/ (val_loss never finite) there are no weights to evaluate: the history is still reported.
  const noCheckpoint = existsSync(path.join(bestDir, 'model.json'))
    ? undefined
    : `saved no best checkpoint: ${historyProblem({ loss: history.loss ?? [], val_loss: history.val_loss ?? [] }) ?? 'val_loss was never a finite number; check the data and the learning rate.'}`;
  let evaluation: Pick<ModelRunSummary, 'checkpoint' | 'confusion' | 'curves' | 'mostConfidentlyWrong' | 'mostConfidentlyCorrect'> = {};
  if (!noCheckpoint) {
    await restoreCheckpoint(model, bestDir);
    const evaluated = await model.evaluate(fromLayer > 0 && !fineTune ? validation : data.validation, {
      fromLayer: fineTune ? 0 : fromLayer,
    });
    const confusion = confusionMatrix(evaluated, classNames);
    const checkpointEvaluation = {
      name: 'best',
      epoch: checkpoint.bestEpoch + 1,
      val_loss: evaluated.loss,
      val_accuracy: evaluated.accuracy,
      examples: evaluated.examples,
    };
    if (isChief()) await writeJsonAtomic(path.join(dir, 'evaluation.json'), { checkpoint: checkpointEvaluation, confusion });
    const sourceRef = (key: string) => data.validation.sourceRef(key);
    // Grad-CAM runs the whole model (a frozen base and its head as one) on the gallery's images.
    const camLayer = lastConvolutionalLayer(model);
    const overlays =
      camLayer === undefined
        ? undefined
        : (picks: Parameters<typeof gradCamOverlays>[1]) =>
            gradCamOverlays(model, picks, camLayer).catch((error: Error) => {
              ctx.log(`${MODEL_LABELS[kind]}: no Grad-CAM maps in the gallery (${error.message})`);
              return [];
            });
    evaluation = {
      checkpoint: checkpointEvaluation,
      confusion,
      curves: validationCurves(evaluated, classNames),
      mostConfidentlyCorrect: await mostConfident(evaluated, classNames, sourceRef, { correct: true, overlays }),
      mostConfidentlyWrong: await mostConfident(evaluated, classNames, sourceRef, { correct: false, overlays }),
    };
  }
  const epochSeconds = [...state.epochSeconds, ...monitor.epochSeconds];
  const stepSeconds = [...state.stepSeconds, ...monitor.stepSeconds];
  const meanStepSeconds = stepSeconds.reduce((a, b) => a + b, 0) / Math.max(stepSeconds.length, 1);
  const trainingSeconds = epochSeconds.reduce((a, b) => a + b, 0);
  const evaluationSeconds = (performance.now() - evaluationStart) / 1000;
  const timings = {
    dataSeconds: phaseSeconds.data,
    featureExtractionSeconds: phaseSeconds.features,
    trainingSeconds,
    evaluationSeconds,
    totalSeconds: phaseSeconds.data + phaseSeconds.features + trainingSeconds + evaluationSeconds,
  };
  if (isChief()) await writeJsonAtomic(path.join(dir, 'timings.json'), { ...timings, epochSeconds, meanStepSeconds });

  const valLoss = history.val_loss ?? [];
  const valAccuracy = history.val_accuracy ?? [];
  const bestIndex = extremeIndex(valLoss, (v, b) => v < b);
  const bestAccuracyIndex = extremeIndex(valAccuracy, (v, b) => v > b);
  return {
    name: kind,
    label: MODEL_LABELS[kind],
    history: {
      loss: history.loss ?? [],
      accuracy: history.accuracy ?? [],
      val_loss: valLoss,
      val_accuracy: valAccuracy,
      ...(history.learning_rate ? { learning_rate: history.learning_rate } : {}),
    },
    best: { epoch: bestIndex + 1, val_loss: valLoss[bestIndex], val_accuracy: valAccuracy[bestIndex] },
    bestAccuracy: { epoch: bestAccuracyIndex + 1, val_accuracy: valAccuracy[bestAccuracyIndex] },
    final: { val_loss: valLoss[valLoss.length - 1], val_accuracy: valAccuracy[valAccuracy.length - 1] },
    ...evaluation,
    timings,
    params: model.countParams(),
    epochSeconds,
    msPerStep: meanStepSeconds * 1000,
    summaryText,
    error: noCheckpoint,
  };
}

/** Index of the first finite value that beats every other under `better` (as ModelCheckpoint picks), or 0. */
function extremeIndex(values: readonly number[], better: (value: number, best: number) => boolean): number {
  let best = -1;
  values.forEach((v, i) => {
    if (Number.isFinite(v) && (best < 0 || better(v, values[best]))) best = i;
  });
  return Math.max(best, 0);
}
