/**
 * The report page as a pure function of summary.json, and the configuration as it took effect:
 * no unset rows, the data source used, sizes for people, per-epoch figures labelled by what they cover.
 */

import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { reportCommand } from '../lib/cli/commands/report.js';
import { writeSummaryAndReport } from '../lib/experiment/compare.js';
import { buildReportCharts } from '../lib/reports/charts.js';
import { formatBytes } from '../lib/reports/format.js';
import { renderReportHtml } from '../lib/reports/html.js';
import type { RunSummary } from '../lib/reports/types.js';
import { exampleRunSummary } from './helpers/example-summary.js';

const silent = { stdout: { write: () => true }, stderr: { write: (t: string) => assert.fail(t) } };

/** A summary as compare builds it in memory: unset options are undefined, a failed figure NaN. */
function inMemorySummary(): RunSummary {
  const s = exampleRunSummary(4);
  s.config = {
    dataDir: '/data/PetImages',
    archive: undefined,
    imageFolder: undefined,
    download: true,
    weights: undefined,
    epochs: 4,
    seed: 42,
  };
  s.dataset.source = '/data/PetImages';
  s.environment = { cpu: 'test cpu', memoryBytes: 8_589_934_592, threads: 2 };
  s.models[0]!.msPerStep = NaN;
  s.models[0]!.mostConfidentlyWrong![1]!.thumbnailBase64 = undefined;
  return s;
}

function section(html: string, id: string): string {
  return new RegExp(`<section id="${id}"[\\s\\S]*?</section>`).exec(html)?.[0] ?? '';
}

test('the report compare writes is the page `transferlab report` regenerates, byte for byte', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'transferlab-report-pure-'));
  try {
    await writeSummaryAndReport(dir, inMemorySummary());
    const names = (await fs.readdir(dir)).filter((f) => f !== 'summary.json').sort();
    const first = await Promise.all(names.map((f) => fs.readFile(path.join(dir, f))));
    assert.equal(await reportCommand([dir], silent), 0);
    assert.deepEqual((await fs.readdir(dir)).filter((f) => f !== 'summary.json').sort(), names);
    for (const [i, f] of names.entries()) assert.ok((await fs.readFile(path.join(dir, f))).equals(first[i]!), `${f} is identical`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('configuration: no undefined rows, the data source used instead of download: true, memory in GB', async () => {
  const summary = inMemorySummary();
  const html = renderReportHtml(summary, await buildReportCharts(summary));
  const configuration = section(html, 'configuration');
  assert.ok(!configuration.includes('undefined'), configuration);
  assert.ok(!configuration.includes('<th scope="row">download</th>'), 'download is moot when --data-dir was given');
  assert.ok(configuration.includes('<th scope="row">data source used</th><td><code>/data/PetImages (--data-dir)</code>'));
  assert.ok(configuration.includes('<th scope="row">memoryBytes</th><td><code>8.6 GB</code>'), 'memory for people');
  assert.ok(configuration.includes('<th scope="row">epochs</th><td><code>4</code>'));

  // With no source given, the cached archive was read, and whether it may be downloaded matters.
  summary.config = { download: false, epochs: 4 };
  summary.dataset.source = '/cache/kagglecatsanddogs_5340.zip';
  const fallback = section(renderReportHtml(summary, []), 'configuration');
  assert.ok(fallback.includes('<td><code>/cache/kagglecatsanddogs_5340.zip (cats_vs_dogs archive from the cache)</code>'));
  assert.ok(fallback.includes('<th scope="row">download</th><td><code>false</code>'));
});

test('formatBytes: SI units, one decimal', () => {
  assert.deepEqual([0, 999, 1000, 1234, 1_234_567, 999_960, 8_589_934_592, 2.5e15].map(formatBytes), [
    '0 B',
    '999 B',
    '1.0 kB',
    '1.2 kB',
    '1.2 MB',
    '1.0 MB',
    '8.6 GB',
    '2.5 PB',
  ]);
  assert.equal(formatBytes(NaN), '–');
});

test('results: best val_accuracy and lowest val_loss each with their own epoch; the checkpoint and wall time named', async () => {
  const summary = exampleRunSummary(5);
  const html = renderReportHtml(summary, await buildReportCharts(summary));
  const row = /<tr class="ok"><th scope="row">CNN<\/th>[\s\S]*?<\/tr>/.exec(html)![0];
  const cells = [...row.matchAll(/<td class="num">([\s\S]*?)<\/td>/g)].map((m) =>
    m[1]!
      .replace(/<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim(),
  );
  // CNN: val_accuracy peaks at epoch 4 (0.88), val_loss is lowest at epoch 3 (0.495): two different epochs.
  assert.deepEqual(cells.slice(0, 4), ['88.00% epoch 4', '0.4950 epoch 3', '87.00% val_loss 0.6700', '85.50% val_loss 0.4950 epoch 3']);
  // epochs 12.7 + 11.3 + 11.4 + 11.2 + 11.3 = 57.9 s, plus 120.25 s data and 8.5 s evaluation = 3 m 07 s
  assert.match(cells[4]!, /^3 m 07 s data 2 m 00 s features 0\.0 s training 57\.9 s evaluation 8\.5 s 11\.6 s \/ epoch/);
  const head = /<table class="results">\s*<thead>[\s\S]*?<\/thead>/.exec(html)![0];
  assert.equal(head.split('<div class="sub">whole validation split</div>').length - 1, 3);
  assert.ok(head.includes('Checkpoint best/<div class="sub">whole validation split, 4,652 images</div>'));
  assert.match(html, /<h3>Confusion matrix: checkpoint best\/ \(epoch 3\) on the whole validation split<\/h3>/);
  assert.match(html, /<dt>Feature extraction \(frozen base\)<\/dt><dd>1 m 36 s<\/dd>/);
});

test('with a validation window the per-epoch columns say so, and nothing calls them the whole split', async () => {
  const summary = exampleRunSummary(5);
  summary.validation = { examples: 4652, window: { steps: 15, batchSize: 64 } };
  const html = renderReportHtml(summary, await buildReportCharts(summary));
  const head = /<table class="results">\s*<thead>[\s\S]*?<\/thead>/.exec(html)![0];
  assert.equal(head.split('<div class="sub">window of 960 images</div>').length - 1, 3);
  assert.equal(head.split('whole validation split').length - 1, 1, 'only the checkpoint column covers the whole split');
  assert.match(
    section(html, 'results'),
    /measured on a window of 15 batches of 64 \(960 images\) drawn from the repeating validation stream/,
  );
});
