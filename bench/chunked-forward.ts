/**
 * `node dist/bench/chunked-forward.js [--batch N] [--rounds N] [--rss BYTES]`: the frozen VGG16 base at
 * 300x300 run in row chunks (src/chunked-forward.cc) next to whole batches. Without --rss, one process
 * times the feature pass (predict through the base) and the uncached transfer step under each chunk
 * budget in alternating rounds; with --rss, this process measures the peak resident memory of both
 * under that one budget (Infinity: whole batches), so run it once per budget.
 */

import { transferModel } from '../lib/applications/transfer-model.js';
import { vgg16 } from '../lib/applications/vgg16.js';
import { emptyCache } from '../lib/engine/memory.js';
import { native } from '../lib/engine/native.js';
import { defaultHeadLayers } from '../lib/models/zoo.js';
import { syntheticPixels } from './engine.js';
import { peakRssOf, seconds } from './measure.js';
import { intOption, numberOption } from './options.js';

const SIZE = 300;
/** float32 bytes per row of VGG16's largest activation at 300x300 (block 1: 300 x 300 x 64) */
const ROW_BYTES = SIZE * SIZE * 64 * 4;

const batch = intOption('--batch', 64);
const rounds = intOption('--rounds', 3);
const rss = numberOption('--rss');

const base = await vgg16({ includeTop: false, weights: null, inputShape: [SIZE, SIZE, 3] });
const model = transferModel({ base, head: defaultHeadLayers(), trainableBase: false, preprocessing: 'scale01', seed: 1 });
model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
const shape = [batch, SIZE, SIZE, 3];
const x = syntheticPixels(batch * SIZE * SIZE * 3);
const y = Float32Array.from({ length: batch }, (_, i) => i % 2);
const features = () => model.predict(x, shape, { toLayer: model.baseLayers });
const step = () => model.engine.trainStep(x, shape, y, 0);

const gib = (bytes: number | null) => (bytes === null ? 'n/a' : `${(bytes / 2 ** 30).toFixed(2)} GiB`);

if (rss !== undefined) {
  native().setForwardChunkBytes(rss);
  emptyCache();
  const featurePeak = await peakRssOf(async () => {
    await features();
    await features();
  });
  emptyCache();
  const stepPeak = await peakRssOf(async () => {
    await step();
    await step();
  });
  console.log(`budget ${rss}: peak RSS feature pass ${gib(featurePeak)}, uncached transfer step ${gib(stepPeak)} (batch ${batch})`);
} else {
  const budgets: [string, number][] = [
    ['whole', Number.POSITIVE_INFINITY],
    ['256 MiB', 256 * 2 ** 20],
    ['512 MiB (default)', 512 * 2 ** 20],
    ['16 rows', 16 * ROW_BYTES],
  ];
  await features(); // warm-up
  for (let r = 1; r <= rounds; r++) {
    const row: string[] = [];
    for (const [name, bytes] of r % 2 ? budgets : [...budgets].reverse()) {
      native().setForwardChunkBytes(bytes);
      const f = batch / (await seconds(features));
      const s = batch / (await seconds(step));
      row.push(`${name}: features ${f.toFixed(2)} img/s, step ${s.toFixed(2)} img/s`);
    }
    console.log(`round ${r}: ${row.join(' | ')}`);
  }
}
