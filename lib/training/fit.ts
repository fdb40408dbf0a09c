import type { Batch, Dataset } from '../data/types.js';
import { DataParallel, isChief } from '../distributed/index.js';
import type { Callback } from './callbacks.js';
import type { FitModel } from './fit-model.js';
import { History, type Logs } from './history.js';
import { checkLabels } from './labels.js';
import { ProgressLogger } from './progress.js';
import { RepeatingStream, takeBatches } from './stream.js';

export interface FitOptions {
  epochs?: number;
  /** epoch to start from (0-based), e.g. when resuming; history covers the epochs run. */
  initialEpoch?: number;
  validationData?: Dataset;
  /** Keras steps_per_epoch: batches per epoch drawn from a repeating stream of the data. */
  stepsPerEpoch?: number;
  /** Keras validation_steps: validation batches per epoch from a repeating stream. */
  validationSteps?: number;
  callbacks?: Callback[];
  /** 0 silent, 1 progress bar (default), 2 one line per epoch. */
  verbose?: 0 | 1 | 2;
  /** Train from this layer on: batches are outputs of layer `fromLayer - 1` (cached features). */
  fromLayer?: number;
}

export interface EvaluateResult {
  loss: number;
  accuracy: number;
  examples: number;
  /** model outputs (probabilities), one row per example, in data order. */
  outputs: Float32Array;
  labels: Float32Array;
  keys: string[];
}

export class NaNLossError extends Error {}

/** Sample-weighted running means, as Keras reports loss and accuracy over an epoch. */
class Meter {
  private lossSum = 0;
  private correct = 0;
  count = 0;
  add(loss: number, correct: number, n: number): void {
    this.lossSum += loss * n;
    this.correct += correct;
    this.count += n;
  }
  get loss(): number {
    return this.count ? this.lossSum / this.count : NaN;
  }
  get accuracy(): number {
    return this.count ? this.correct / this.count : NaN;
  }
  /** Sums over every rank's examples, so all ranks report the same numbers. */
  async reduce(parallel: DataParallel): Promise<void> {
    [this.lossSum, this.correct, this.count] = await parallel.reduceSums(this.lossSum, this.correct, this.count);
  }
}

function batchSize(batch: Batch): number {
  return batch.shape[0];
}

async function evaluateBatches(
  model: FitModel,
  batches: AsyncIterable<Batch>,
  fromLayer: number,
  keepOutputs: boolean,
  what: string,
  parallel?: DataParallel,
): Promise<EvaluateResult> {
  const meter = new Meter();
  const outputs: Float32Array[] = [];
  const labels: Float32Array[] = [];
  const keys: string[] = [];
  const entry = model.engineIndex(fromLayer, true);
  let step = 0;
  // under `parallel`, batches are this rank's shards: outputs, labels and keys are this rank's rows
  for await (const batch of batches) {
    model.checkInput(batch.shape, fromLayer);
    checkLabels(model, batch.y, batchSize(batch), `${what} batch ${++step}`, batch.shardOf?.start);
    if (batchSize(batch) === 0) continue;
    const r = await model.engine.evaluate(batch.x, batch.shape, batch.y, entry);
    meter.add(r.loss, r.correct, batchSize(batch));
    if (keepOutputs) {
      outputs.push(r.output);
      labels.push(batch.y);
      keys.push(...(batch.keys ?? []));
    }
  }
  const concat = (parts: Float32Array[]) => {
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  };
  if (parallel) await meter.reduce(parallel);
  return { loss: meter.loss, accuracy: meter.accuracy, examples: meter.count, outputs: concat(outputs), labels: concat(labels), keys };
}

/** Keras `model.evaluate` over a whole dataset (or `steps` batches of it). */
export async function evaluate(
  model: FitModel,
  data: Dataset,
  options: { fromLayer?: number; steps?: number } = {},
): Promise<EvaluateResult> {
  if (!model.compiled) throw new Error(`compile() model '${model.name}' before evaluate()`);
  const stream = options.steps !== undefined ? new RepeatingStream(data) : undefined;
  try {
    return await evaluateBatches(model, takeBatches(data, stream, options.steps), options.fromLayer ?? 0, true, 'evaluation');
  } finally {
    await stream?.close();
  }
}

/**
 * Puts the data streams where an uninterrupted run would have them after `epochs` epochs, so a
 * resumed run sees the same batches (stream windows, shuffle passes) as one that never stopped.
 */
async function advanceStreams(
  trainStream: RepeatingStream | undefined,
  steps: number | undefined,
  validData: Dataset | undefined,
  validStream: RepeatingStream | undefined,
  validationSteps: number | undefined,
  epochs: number,
): Promise<void> {
  // One pass per epoch needs nothing: epoch e reads pass e.
  const advance = async (stream: RepeatingStream | undefined, n: number | undefined) => {
    if (stream && n !== undefined) await stream.skip(epochs * n);
  };
  await advance(trainStream, steps);
  if (validData) await advance(validStream, validationSteps);
}

/** Keras `model.fit`: trains for `epochs`, validating after each, and returns the History. */
export async function fit(model: FitModel, data: Dataset, options: FitOptions = {}): Promise<History> {
  if (!model.compiled) throw new Error(`compile() model '${model.name}' before fit()`);
  const epochs = options.epochs ?? 1;
  let initialEpoch = options.initialEpoch ?? 0;
  const fromLayer = options.fromLayer ?? 0;
  const entry = model.engineIndex(fromLayer, true);
  const verbose = options.verbose ?? 1;
  const stepsPerPass = Math.ceil(data.size / data.batchSize);
  // a process group makes this a data-parallel fit; only rank 0 shows progress
  const parallel = DataParallel.current();
  const callbacks: Callback[] = [];
  if (verbose > 0 && isChief()) callbacks.push(new ProgressLogger(process.stdout, () => options.stepsPerEpoch ?? stepsPerPass));
  callbacks.push(...(options.callbacks ?? []));
  let history = new History();
  for (const cb of callbacks) cb.setModel?.(model);
  for (const cb of callbacks) {
    const restored = await cb.restore?.(initialEpoch);
    if (restored) {
      initialEpoch = restored.initialEpoch;
      history = History.from(restored.history);
    }
  }

  // each rank reads only its shard of every global batch
  const shard = parallel?.shard;
  const trainStream = options.stepsPerEpoch !== undefined ? new RepeatingStream(data, shard) : undefined;
  const validData = options.validationData;
  const validStream = validData && options.validationSteps !== undefined ? new RepeatingStream(validData, shard) : undefined;
  model.stopTraining = false;
  try {
    // every rank has restored (this waits for all of them) and starts from rank 0's weights
    if (parallel) await parallel.broadcastWeights(model.engine);
    if (initialEpoch > 0 && initialEpoch < epochs)
      await advanceStreams(trainStream, options.stepsPerEpoch, validData, validStream, options.validationSteps, initialEpoch);
    for (const cb of callbacks) await cb.onTrainBegin?.({ epochs, initialEpoch });
    for (let epoch = initialEpoch; epoch < epochs && !model.stopTraining; epoch++) {
      for (const cb of callbacks) await cb.onEpochBegin?.(epoch);
      const meter = new Meter();
      let step = 0;
      for await (const batch of takeBatches(data, trainStream, options.stepsPerEpoch, epoch, shard)) {
        model.checkInput(batch.shape, fromLayer);
        checkLabels(model, batch.y, batchSize(batch), `training batch ${step + 1} of epoch ${epoch + 1}`, batch.shardOf?.start);
        // Keras evaluates a schedule at the optimizer's iteration count before each update
        if (model.learningRateSchedule) model.engine.setLearningRate(model.learningRateSchedule.call(model.engine.iterations()));
        // in a data-parallel fit the batch is this rank's shard; the engine all-reduces its gradients
        const r = await model.engine.trainStep(batch.x, batch.shape, batch.y, entry, parallel !== undefined);
        if (!Number.isFinite(r.loss)) {
          throw new NaNLossError(
            `training of '${model.name}' stopped: the loss became ${r.loss} at epoch ${epoch + 1}, step ${step + 1}. ` +
              'The weights were not updated by that step, and saved checkpoints are unchanged. ' +
              'Try a lower learning rate, or check the inputs for NaN values.',
          );
        }
        // a shard's step reports the global batch's loss and correct count
        meter.add(r.loss, r.correct, batch.shardOf?.size ?? batchSize(batch));
        const logs = { loss: meter.loss, accuracy: meter.accuracy };
        for (const cb of callbacks) await cb.onBatchEnd?.(step, logs, { steps: options.stepsPerEpoch ?? stepsPerPass });
        step++;
      }
      const logs: Logs = { loss: meter.loss, accuracy: meter.accuracy };
      if (validData) {
        const v = await evaluateBatches(
          model,
          takeBatches(validData, validStream, options.validationSteps, 0, shard),
          fromLayer,
          false,
          `validation of epoch ${epoch + 1},`,
          parallel,
        );
        logs.val_loss = v.loss;
        logs.val_accuracy = v.accuracy;
      }
      // Keras 3 logs the optimizer's current rate (under a schedule, the next step's)
      logs.learning_rate = model.learningRate;
      history.record(epoch, logs);
      for (const cb of callbacks) await cb.onEpochEnd?.(epoch, logs);
    }
    const last = history.epoch.length ? Object.fromEntries(Object.entries(history.history).map(([k, v]) => [k, v[v.length - 1]])) : {};
    for (const cb of callbacks) await cb.onTrainEnd?.(last);
  } finally {
    await trainStream?.close();
    await validStream?.close();
  }
  return history;
}
