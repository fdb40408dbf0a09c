import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { exampleRunSummary } from './helpers/example-summary.js';
import { writeRunReport } from '../lib/reports/write-report.js';

const CHROMIUM = '/usr/bin/chromium';

test('report.html renders in headless Chromium: no errors, no network, charts sized, both models listed', async () => {
  // Deliberately a failure, not a skip: CI must have the browser, or this check silently vanishes.
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run \`apt-get install -y chromium\` (CI installs it)`);

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'transferlab-report-browser-'));
  const summary = exampleRunSummary(5);
  summary.models[0]!.label = `CNN <b>&</b>`;
  await writeRunReport(dir, summary);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('request', (request) => requests.push(request.url()));

    const url = pathToFileURL(path.join(dir, 'report.html')).href;
    const response = await page.goto(url, { waitUntil: 'load' });
    assert.ok(response === null || response.ok(), 'report.html loads');

    assert.deepEqual(problems, []);
    assert.deepEqual(requests.filter((r) => !r.startsWith('file:') && !r.startsWith('data:')), [], 'no network requests');

    const charts = await page.$$eval('figure.chart svg', (svgs) =>
      svgs.map((svg) => {
        const box = svg.getBoundingClientRect();
        return { id: svg.parentElement?.id ?? '', width: box.width, height: box.height };
      }),
    );
    assert.deepEqual(
      charts.map((c) => c.id),
      ['chart-val_loss', 'chart-val_accuracy', 'chart-cnn_training', 'chart-transfer_training'],
    );
    for (const c of charts) assert.ok(c.width > 100 && c.height > 100, `${c.id} is ${c.width}x${c.height}`);

    const rowHeads = await page.$$eval('table.results tbody th[scope=row]', (ths) => ths.map((th) => th.textContent));
    assert.deepEqual(rowHeads, ['CNN <b>&</b>', 'TRANSFER'], 'labels shown as text, not markup');

    const thumbnails = await page.$$eval('.gallery img', (imgs) => imgs.map((img) => (img as HTMLImageElement).naturalWidth));
    assert.ok(thumbnails.length > 0 && thumbnails.every((w) => w > 0), `thumbnails decoded: ${thumbnails.join(',')}`);
  } finally {
    await browser.close();
  }
});
