/**
 * One rank of a data-parallel fit for test/distributed-data-parallel.test.ts: joins the process
 * group torchrun's variables describe (or runs alone without them), trains a small model on
 * generated data and writes its initial and final weights and history to `$DP_OUT.rank<R>.json`.
 * DP_RECORDS: the head's data are record files (RecordDataset, shuffled), which read only a rank's
 * shard; DP_STEPS: steps_per_epoch 2 and validation_steps 1 (repeating streams).
 * DP_DEVICE puts the model on a device (default cpu; scripts/gpu-check.sh runs it on CUDA GPUs),
 * DP_BACKEND picks the process group's backend (default auto), DP_GROUP_OF_ONE=1 makes a group of a
 * single rank.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { RecordDataset } from '../../lib/data/record-dataset.js';
import type { Dataset } from '../../lib/data/types.js';
import { destroyDistributed, distributedInfo, initDistributed } from '../../lib/distributed/index.js';
import { workerDevice } from '../../lib/distributed/launch-env.js';
import { type DeviceName, native } from '../../lib/engine/native.js';
import type { LayerConfig } from '../../lib/keras-format/config.js';
import { layers } from '../../lib/models/layers.js';
import { Sequential } from '../../lib/models/sequential.js';
import { experimentCnnLayers } from '../../lib/models/zoo.js';
import { BackupAndRestore } from '../../lib/training/backup-and-restore.js';
import type { Callback } from '../../lib/training/callbacks.js';
import { cachedFeatures } from '../../lib/training/feature-cache.js';
import { countingGathers } from './counting-gathers.js';
import { ArrayDataset } from './naive.js';
import { writeRecordFile } from './record-files.js';

/** Deterministic values from a seed (the same on every rank and for every world size). */
function generated(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  });
}

function labels(n: number, seed: number): Float32Array {
  return Float32Array.from(generated(n, seed), (v) => (v < 0.5 ? 0 : 1));
}

/**
 * cnn: the experiment's CNN at 94x94 (its smallest input), 70 training images in global batches of
 * 32 (the last one 6), 2 epochs. head: a frozen conv "backbone" whose outputs are the cached
 * features, and a dense head trained from them (fromLayer 1), 65 examples (a last batch of 1).
 */
function setup(which: string, rank: number): { model: Sequential; train: Dataset; valid: Dataset; fromLayer: number } {
  if (which === 'cnn') {
    const shape = [94, 94, 3];
    const per = 94 * 94 * 3;
    // class 1 is brighter: a task the CNN can learn
    const images = (n: number, seed: number) => {
      const y = labels(n, seed + 1);
      const x = Uint8Array.from(generated(n * per, seed), (v, i) => Math.floor(v * 192) + (y[Math.floor(i / per)] ? 63 : 0));
      return new ArrayDataset(x, shape, y, 32);
    };
    const model = new Sequential(experimentCnnLayers(shape as [number, number, number]), { seed: 7 + rank, name: 'cnn', device });
    return { model, train: images(70, 1), valid: images(20, 3), fromLayer: 0 };
  }
  const head: LayerConfig[] = [
    layers.conv2d({ filters: 4, kernelSize: 3, inputShape: [8, 8, 3], trainable: false }),
    layers.flatten(),
    layers.dense({ units: 16, activation: 'relu' }),
    layers.dense({ units: 1, activation: 'sigmoid' }),
  ];
  const features = (n: number, seed: number) => Float32Array.from(generated(n * 6 * 6 * 4, seed), (v) => v * 2 - 1);
  const data = (n: number, seed: number, name: string): Dataset => {
    const [x, y] = [features(n, seed), labels(n, seed + 1)];
    if (!process.env.DP_RECORDS) return new ArrayDataset(x, [6, 6, 4], y, 32);
    const keys = Array.from({ length: n }, (_, i) => `${name}-${i}`);
    const { file, manifest } = writeRecordFile(`${process.env.DP_OUT}.${name}.rank${rank}.f32`, x, {
      shape: [6, 6, 4],
      keys,
      labels: [...y],
    });
    // streams stop mid-pass: without read-ahead, the records read are exactly those trained on
    const prefetch = process.env.DP_STEPS ? 0 : 2;
    return new RecordDataset(file, manifest, { batchSize: 32, classNames: ['a', 'b'], shuffleSeed: 3, prefetch });
  };
  return {
    model: new Sequential(head, { seed: 11 + rank, name: 'head', device }),
    train: data(65, 5, 'train'),
    valid: data(33, 7, 'valid'),
    fromLayer: 1,
  };
}

/**
 * extract: the frozen base (conv + pool) of a transfer model turns 37 generated images into cached
 * features (split across ranks), and the head trains on them from layer 2.
 */
async function extracted(
  rank: number,
): Promise<{ model: Sequential; train: Dataset; valid: Dataset; fromLayer: number; features: number[]; initial: number[][][] }> {
  const shape = [8, 8, 3];
  const pixels = (n: number, seed: number) => Uint8Array.from(generated(n * 8 * 8 * 3, seed), (v) => Math.floor(v * 256));
  const model = new Sequential(
    [
      layers.conv2d({ filters: 4, kernelSize: 3, inputShape: [8, 8, 3], trainable: false }),
      layers.maxPooling2d({ poolSize: 2 }),
      layers.flatten(),
      layers.dense({ units: 8, activation: 'relu' }),
      layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
    { seed: 13 + rank, name: 'transfer', device },
  );
  const initial = weightsOf(model); // before the extraction broadcasts rank 0's weights
  const features = async (data: ArrayDataset, name: string) => {
    const key = {
      weightsId: 'generated',
      outputLayer: 'max_pooling2d',
      inputShape: shape,
      preprocessing: 'scale01',
      bf16: false,
      data: name,
    };
    return (await cachedFeatures(model, data, { baseLayers: 2, key, cacheDir: process.env.DP_CACHE!, progress: false })).dataset;
  };
  const train = await features(new ArrayDataset(pixels(37, 9), shape, labels(37, 10), 8), 'train');
  const valid = await features(new ArrayDataset(pixels(11, 11), shape, labels(11, 12), 8), 'valid');
  return { model, initial, train, valid, fromLayer: 2, features: Array.from(new Float32Array(readFileSync(train.file).buffer)) };
}

const weightsOf = (m: Sequential) => m.getWeights().map((l) => l.weights.map((w) => Array.from(w.data)));
// plain 'cuda': this rank's own GPU, cuda:LOCAL_RANK
const device = workerDevice((process.env.DP_DEVICE ?? 'cpu') as DeviceName);

const which = process.env.DP_CASE ?? 'cnn';
native().setThreads(1); // ranks share the test machine's cores
// DP_BUCKET_MB: small buckets, so several are started during backward
await initDistributed({
  timeoutMs: Number(process.env.DP_TIMEOUT_MS ?? 60_000),
  bucketCapMb: Number(process.env.DP_BUCKET_MB ?? 25),
  backend: (process.env.DP_BACKEND ?? 'auto') as 'auto' | 'gloo' | 'nccl',
  device,
  groupOfOne: process.env.DP_GROUP_OF_ONE === '1',
});
const rank = distributedInfo()?.rank ?? 0;
// seeds differ per rank on purpose: only the broadcast from rank 0 makes the weights start equal
const run = which === 'extract' ? await extracted(rank) : { ...setup(which, rank), features: [] };
const { model, train, valid, fromLayer, features } = run;
// The CNN with SGD: at a random start its gradients are small sums that nearly cancel, whose float
// rounding differs between a batch of 32 and two of 16 (1e-3 relative in conv biases); Adam's
// per-weight normalisation turns such differences into whole steps, SGD keeps them at rounding
// size, so the comparison checks the gradient averaging itself. The heads train with Adam.
const optimizer = which === 'cnn' ? { sgd: { learningRate: 0.01 } } : { adam: { learningRate: 0.01 } };
model.compile({ optimizer, loss: 'binaryCrossentropy', metrics: ['accuracy'] });
const initial = 'initial' in run ? run.initial : weightsOf(model);
// DP_EPOCHS and DP_BACKUP: train to that epoch, keeping a BackupAndRestore backup to resume from
const ran: number[] = []; // the epochs this process trained (a resumed run skips the backed-up ones)
const dieAt = process.env.DP_DIE_AT_EPOCH; // this rank exits there, as a crashed worker would
const callbacks: Callback[] = [
  {
    onEpochBegin: (epoch: number) => {
      if (dieAt !== undefined && epoch === Number(dieAt)) process.exit(3);
      ran.push(epoch);
    },
  },
];
if (process.env.DP_BACKUP) callbacks.push(new BackupAndRestore(process.env.DP_BACKUP, { deleteCheckpoint: false }));
const epochs = Number(process.env.DP_EPOCHS ?? 2);
const steps = process.env.DP_STEPS ? { stepsPerEpoch: 2, validationSteps: 1 } : {};
// records the record datasets read while training (their native gathers)
const { history, recordsRead } = await countingGathers(async (counts) => ({
  history: await model.fit(train, { epochs, validationData: valid, verbose: 0, fromLayer, callbacks, ...steps }),
  recordsRead: counts.records, // read once fit is done
}));
writeFileSync(
  `${process.env.DP_OUT}.rank${rank}.json`,
  JSON.stringify({
    initial,
    final: weightsOf(model),
    history: history.history,
    features,
    ran,
    recordsRead,
    backend: distributedInfo()?.backend,
  }),
);
destroyDistributed();
