import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp, { type Region } from 'sharp';
import { buildReportCharts, comparisonSpec, renderSvg, seriesPoints, svgToPng, trainingSpec } from '../lib/reports/charts.js';
import { ChartFontNotFoundError, findChartFontFiles } from '../lib/reports/fonts.js';
import type { ModelRunSummary, RunSummary } from '../lib/reports/types.js';
import { exampleRunSummary } from './helpers/example-summary.js';

/** The `<path>` elements Vega draws for line marks: one per series. */
function linePaths(svg: string): string[] {
  return svg.match(/<path[^>]*aria-roledescription="line mark"[^>]*>/g) ?? [];
}
function pointCount(svg: string): number {
  return (svg.match(/aria-roledescription="point"/g) ?? []).length;
}
/** Visible text of the SVG, in document order. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
}
function svgSize(svg: string): { width: number; height: number } {
  const m = /^<svg[^>]*\swidth="(\d+)"[^>]*\sheight="(\d+)"/.exec(svg);
  assert.ok(m, 'SVG root has width and height');
  return { width: Number(m[1]), height: Number(m[2]) };
}
function failedModel(base: ModelRunSummary): ModelRunSummary {
  return {
    ...base,
    name: 'broken',
    label: 'BROKEN',
    history: { loss: [], accuracy: [], val_loss: [], val_accuracy: [] },
    epochSeconds: [],
    error: 'out of memory',
  };
}

test('validation loss chart: one line per model, labelled, integer epochs 1..5, correct titles', async () => {
  const svg = await renderSvg(comparisonSpec(exampleRunSummary(5), 'val_loss'));
  const lines = linePaths(svg);
  assert.equal(lines.length, 2);
  assert.ok(lines.some((p) => p.includes('Model: CNN')) && lines.some((p) => p.includes('Model: TRANSFER')));
  assert.equal(new Set(lines.map((p) => /stroke="([^"]+)"/.exec(p)?.[1])).size, 2, 'the two lines have different colours');
  const t = texts(svg);
  for (const expected of ['Validation loss', 'Epoch', 'CNN', 'TRANSFER', 'Model', '1', '2', '3', '4', '5'])
    assert.ok(t.includes(expected), `text "${expected}" in ${JSON.stringify(t)}`);
  assert.ok(!t.some((s) => /^(1\.5|2\.5|0\.5)$/.test(s)), 'no fractional epoch ticks');
  assert.equal(pointCount(svg), 10, 'a point per model per epoch');
});

test('validation accuracy chart is titled accuracy (the original mislabelled it LOSSES)', async () => {
  const svg = await renderSvg(comparisonSpec(exampleRunSummary(5), 'val_accuracy'));
  const t = texts(svg);
  assert.equal(t.filter((s) => s === 'Validation accuracy').length, 2, 'chart title and y-axis title');
  assert.ok(!t.some((s) => /loss/i.test(s)), `no loss wording in ${JSON.stringify(t)}`);
  assert.ok(
    t.some((s) => /%$/.test(s)),
    'accuracy ticks are percentages',
  );
  assert.equal(linePaths(svg).length, 2);
});

test('a single epoch still shows a visible point per model on tick 1', async () => {
  const svg = await renderSvg(comparisonSpec(exampleRunSummary(1), 'val_loss'));
  assert.equal(pointCount(svg), 2);
  const epochTicks = texts(svg).filter((s) => /^\d+$/.test(s));
  assert.deepEqual(epochTicks, ['1']);
});

test('NaN, Infinity and null values are skipped, not plotted', async () => {
  assert.deepEqual(seriesPoints([0.5, NaN, 0.4, Infinity, null, 0.3]), [
    { epoch: 1, value: 0.5 },
    { epoch: 3, value: 0.4 },
    { epoch: 6, value: 0.3 },
  ]);
  const summary = exampleRunSummary(5);
  summary.models[0]!.history.val_loss[2] = NaN;
  const svg = await renderSvg(comparisonSpec(summary, 'val_loss'));
  assert.equal(pointCount(svg), 9);
  assert.ok(!svg.includes('NaN'), 'no NaN coordinates in the SVG');
});

test('a failed model without history is left out of the lines and named in a subtitle', async () => {
  const summary = exampleRunSummary(5);
  summary.models.push(failedModel(summary.models[0]!));
  const svg = await renderSvg(comparisonSpec(summary, 'val_accuracy'));
  assert.equal(linePaths(svg).length, 2);
  assert.ok(texts(svg).includes('No data: BROKEN (failed)'));
  const names = (await buildReportCharts(summary)).map((c) => c.name);
  assert.deepEqual(names, ['val_loss', 'val_accuracy', 'cnn_training', 'transfer_training']);
});

test('training chart: train and validation lines for loss and for accuracy', async () => {
  const model = exampleRunSummary(5).models[0]!;
  const svg = await renderSvg(trainingSpec(model));
  const lines = linePaths(svg);
  assert.equal(lines.length, 4);
  assert.equal(lines.filter((p) => p.includes('split: Training')).length, 2);
  assert.equal(lines.filter((p) => p.includes('split: Validation')).length, 2);
  const t = texts(svg);
  for (const expected of ['CNN: training vs validation', 'Loss', 'Accuracy', 'Training', 'Validation', 'Epoch'])
    assert.ok(t.includes(expected), expected);
});

test('a model that failed after some epochs gets a training chart that says so', async () => {
  const model: ModelRunSummary = { ...exampleRunSummary(3).models[1]!, error: 'NaN loss at epoch 4' };
  const svg = await renderSvg(trainingSpec(model));
  assert.ok(texts(svg).includes('Training failed: NaN loss at epoch 4'));
  assert.equal(linePaths(svg).length, 4);
});

/** Width and height from a PNG's IHDR chunk (bytes 16..23, big-endian). */
function ihdr(png: Buffer): { width: number; height: number } {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  assert.equal(png.toString('ascii', 12, 16), 'IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/** Share of pixels darker than `below` (0..255 luminance) in a region of the image. */
async function darkShare(png: Buffer, region: Region | undefined, below: number): Promise<number> {
  let image = sharp(png).removeAlpha().greyscale();
  if (region) image = image.extract(region);
  const { data } = await image.raw().toBuffer({ resolveWithObject: true });
  let dark = 0;
  for (const v of data) if (v < below) dark++;
  return dark / data.length;
}

test('PNG: valid, twice the SVG size, not blank, with text drawn', async () => {
  const summary: RunSummary = exampleRunSummary(5);
  const svg = await renderSvg(comparisonSpec(summary, 'val_loss'));
  const png = svgToPng(svg);
  const { width, height } = svgSize(svg);
  assert.deepEqual(ihdr(png), { width: width * 2, height: height * 2 });

  const stats = await sharp(png).stats();
  assert.ok(
    stats.channels.slice(0, 3).every((c) => c.stdev > 10),
    'pixels vary',
  );
  const nonWhite = await darkShare(png, undefined, 250);
  assert.ok(nonWhite > 0.01 && nonWhite < 0.5, `non-white share ${nonWhite}`);
  // The title sits in the top-left corner; black pixels there mean the font was found and used.
  const title = await darkShare(png, { left: 0, top: 0, width: Math.min(400, width * 2), height: 70 }, 80);
  assert.ok(title > 0.02, `title text pixels ${title}`);
});

test('PNG with a missing font file fails with instructions, not with a text-less image', () => {
  assert.throws(
    () => findChartFontFiles({ TRANSFERLAB_CHART_FONT: '/nonexistent/font.ttf' }),
    (error: unknown) => error instanceof ChartFontNotFoundError && /fonts-dejavu-core/.test(error.message),
  );
  assert.ok(findChartFontFiles({})[0]!.endsWith('DejaVuSans.ttf'), 'CI installs fonts-dejavu-core');
});
