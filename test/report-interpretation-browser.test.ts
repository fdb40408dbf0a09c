/**
 * The report's interpretation sections in headless Chromium: per-class metrics (values against a
 * naive computation from the confusion matrix), ROC/PR chart with its areas, the best-epoch marker,
 * the confident-correct gallery beside the wrong one with Grad-CAM images, a long model summary
 * collapsed; every summary text shown as text. `transferlab report RUN` regenerates it identically.
 */

import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import sharp from 'sharp';
import { reportCommand } from '../lib/cli/commands/report.js';
import { binaryCurves } from '../lib/reports/metrics.js';
import type { RunSummary } from '../lib/reports/types.js';
import { writeRunReport } from '../lib/reports/write-report.js';
import { exampleRunSummary } from './helpers/example-summary.js';

const CHROMIUM = '/usr/bin/chromium';
const HOSTILE = '<img src=x onerror="document.title=1">&amp;';

async function summaryWithInterpretation(): Promise<RunSummary> {
  const summary = exampleRunSummary(5);
  const cnn = summary.models[0]!;
  cnn.confusion = {
    classNames: [HOSTILE, 'dog'],
    matrix: [
      [40, 10],
      [5, 45],
    ],
  };
  cnn.curves = binaryCurves([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]);
  const png = (
    await sharp({ create: { width: 16, height: 16, channels: 3, background: '#d62728' } })
      .png()
      .toBuffer()
  ).toString('base64');
  const wrong = cnn.mostConfidentlyWrong![0]!;
  cnn.mostConfidentlyWrong = [{ ...wrong, gradCamBase64: png }];
  cnn.mostConfidentlyCorrect = [{ ...wrong, key: `Cat/${HOSTILE}.jpg`, trueClass: HOSTILE, predictedClass: HOSTILE, gradCamBase64: png }];
  cnn.summaryText = Array.from({ length: 40 }, (_, i) => `layer_${i} <b>x</b>`).join('\n');
  summary.models[1]!.summaryText = 'short summary';
  return summary;
}

test('interpretation sections render in Chromium, escaped, and regenerate identically from summary.json', {
  timeout: 120_000,
}, async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run \`apt-get install -y chromium\` (CI installs it)`);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'transferlab-report-interpretation-'));
  const summary = await summaryWithInterpretation();
  await fs.writeFile(path.join(dir, 'summary.json'), JSON.stringify(summary));
  await writeRunReport(dir, summary);
  const before = await fs.readFile(path.join(dir, 'report.html'));
  const out = { stdout: { write: () => true }, stderr: { write: (t: string) => assert.fail(t) } };
  assert.equal(await reportCommand([dir], out), 0);
  assert.ok((await fs.readFile(path.join(dir, 'report.html'))).equals(before), 'report.html regenerated identically from summary.json');
  assert.ok(existsSync(path.join(dir, 'cnn_roc_pr.png')) && existsSync(path.join(dir, 'cnn_roc_pr.svg')), 'ROC/PR chart files written');

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    await page.goto(pathToFileURL(path.join(dir, 'report.html')).href, { waitUntil: 'load' });
    assert.deepEqual(problems, []);
    assert.equal(await page.$$eval('img[src="x"]', (found) => found.length), 0, 'no markup injected by a class name or key');
    assert.notEqual(await page.title(), '1');

    // per-class metrics: precision = diagonal / column sum, recall = diagonal / row sum
    const rows = await page.$$eval('#model-cnn table.class-metrics tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('th, td')].map((c) => c.textContent)),
    );
    const f1 = (p: number, r: number) => ((2 * p * r) / (p + r)).toFixed(3);
    assert.deepEqual(rows, [
      [HOSTILE, (40 / 45).toFixed(3), (40 / 50).toFixed(3), f1(40 / 45, 40 / 50), '50'],
      ['dog', (45 / 55).toFixed(3), (45 / 50).toFixed(3), f1(45 / 55, 45 / 50), '50'],
    ]);
    assert.equal(await page.$$eval('#model-transfer table.class-metrics', (t) => t.length), 1);

    // ROC and PR: one chart for the model with curves, its areas in the titles
    const curves = await page.$eval('#chart-cnn_roc_pr svg', (svg) => ({ text: svg.textContent ?? '', box: svg.getBoundingClientRect() }));
    assert.match(curves.text, /ROC, AUC 0\.750/);
    assert.match(curves.text, /Precision-recall, AP 0\.833/);
    assert.ok(curves.box.width > 300 && curves.box.height > 200, `ROC/PR chart is ${curves.box.width}x${curves.box.height}`);
    assert.equal(await page.$$eval('#chart-transfer_roc_pr', (f) => f.length), 0, 'no curves recorded, no chart');

    // best-epoch marker on each training chart, at the epoch of the lowest val_loss
    for (const m of summary.models) {
      const text = await page.$eval(`#chart-${m.name}_training svg`, (svg) => svg.textContent ?? '');
      assert.ok(text.includes(`best (${m.best.epoch})`), `${m.name} training chart marks epoch ${m.best.epoch}`);
    }

    // galleries side by side, correct first; Grad-CAM images decoded
    const boxes = await page.$$eval('#model-cnn .gallery-pair > div', (divs) =>
      divs.map((d) => ({ id: d.id, left: d.getBoundingClientRect().left, top: d.getBoundingClientRect().top })),
    );
    assert.deepEqual(
      boxes.map((b) => b.id),
      ['gallery-correct', 'gallery-wrong'],
    );
    assert.ok(boxes[0]!.left < boxes[1]!.left && boxes[0]!.top === boxes[1]!.top, 'correct beside wrong');
    const maps = await page.$$eval('#model-cnn img.grad-cam', (imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth));
    assert.deepEqual(maps, [16, 16]);
    assert.equal(await page.$eval('#gallery-correct figcaption strong', (s) => s.textContent), HOSTILE);

    // the long summary starts collapsed (its text escaped), the short one is shown
    const long = await page.$eval('#model-cnn details.summary-text', (d) => ({
      open: (d as HTMLDetailsElement).open,
      // a closed <details> is as tall as its summary line only
      shown: d.getBoundingClientRect().height < 40,
      text: d.querySelector('pre')!.textContent ?? '',
    }));
    assert.deepEqual([long.open, long.shown], [false, true]);
    assert.ok(long.text.startsWith('layer_0 <b>x</b>'));
    assert.equal(await page.$$eval('#model-transfer details.summary-text', (d) => d.length), 0);
    assert.ok((await page.$eval('#model-transfer pre', (p) => (p as HTMLElement).offsetHeight)) > 0);
  } finally {
    await browser.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
