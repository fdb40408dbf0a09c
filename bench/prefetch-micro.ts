import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RECORD_FORMAT, type RecordManifest } from '../lib/data/record-cache.js';
import { RecordDataset } from '../lib/data/record-dataset.js';
import type { Batch } from '../lib/data/types.js';
import { sequential } from '../lib/models/sequential.js';
import { defaultHeadLayers } from '../lib/models/zoo.js';
import { median, seconds, timedSteps } from './measure.js';
import { intOption } from './options.js';

/**
 * A ~30 s micro-benchmark of the feature-cache data path, for a loaded machine where the full
 * bench is too slow to repeat: the experiment's head (Flatten, Dense 64, Dense 1) trained by `fit`
 * on a synthetic feature cache of MobileNet-at-300x300 records (10x10x768 floats, batch 64), with
 * batches read on demand (read, then step) and read ahead (the default), next to the bare engine
 * step and a pass of reads alone.
 *   node dist/bench/prefetch-micro.js [--records N] [--epochs N]
 */

const SHAPE = [10, 10, 768];
const BATCH = 64;

/** Milliseconds of one call. */
async function ms(fn: () => Promise<unknown>): Promise<number> {
  return (await seconds(fn)) * 1000;
}

async function main(): Promise<void> {
  const records = intOption('--records', 512);
  const epochs = intOption('--epochs', 2);
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-prefetch-micro-'));
  try {
    const file = path.join(work, 'records.bin');
    const per = SHAPE.reduce((a, b) => a * b);
    const out = await fs.open(file, 'w');
    const record = new Float32Array(per);
    for (let r = 0; r < records; r++) {
      for (let i = 0; i < per; i++) record[i] = ((r * 31 + i * 7) % 1000) / 1000;
      await out.write(new Uint8Array(record.buffer));
    }
    await out.close();
    const manifest: RecordManifest = {
      format: RECORD_FORMAT,
      key: 'micro',
      dtype: 'float32',
      shape: SHAPE,
      count: records,
      keys: Array.from({ length: records }, (_, i) => `r${i}`),
      labels: Array.from({ length: records }, (_, i) => i % 2),
      skipped: [],
      createdAt: new Date().toISOString(),
    };
    const dataset = (prefetch: number) =>
      new RecordDataset(file, manifest, { batchSize: BATCH, classNames: ['a', 'b'], shuffleSeed: 1, prefetch });
    const model = sequential(defaultHeadLayers(), { inputShape: SHAPE, seed: 1 });
    model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['accuracy'] });
    const steps = epochs * Math.ceil(records / BATCH);

    let first: Batch | undefined;
    for await (const b of dataset(0).batches()) {
      first ??= b; // the pass also warms the page cache
    }
    const b0 = first!;
    const stepMs = median(await timedSteps(3, 12, () => model.engine.trainStep(b0.x, b0.shape, b0.y, 0))) * 1000;
    const readMs =
      (await ms(async () => {
        for (let e = 0; e < epochs; e++) for await (const _ of dataset(0).batches({ pass: e }));
      })) / steps;
    const onDemandMs = (await ms(() => model.fit(dataset(0), { epochs, verbose: 0 }))) / steps;
    const aheadMs = (await ms(() => model.fit(dataset(2), { epochs, verbose: 0 }))) / steps;
    const result = {
      records,
      steps,
      engineStepMs: stepMs,
      readBatchMs: readMs,
      fitStepOnDemandMs: onDemandMs,
      fitStepReadAheadMs: aheadMs,
      onDemandVsEngineStep: onDemandMs / stepMs,
      readAheadVsEngineStep: aheadMs / stepMs,
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

await main();
