import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { writeRunReport } from '../lib/reports/write-report.js';
import { exampleRunSummary } from './helpers/example-summary.js';

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
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
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
    assert.deepEqual(
      requests.filter((r) => !r.startsWith('file:') && !r.startsWith('data:')),
      [],
      'no network requests',
    );

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

test('gallery file names wrap only after a path separator, a name too long ends in an ellipsis, the full name in a title', async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run \`apt-get install -y chromium\` (CI installs it)`);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'transferlab-report-gallery-'));
  const summary = exampleRunSummary(3);
  const wrong = summary.models[0]!.mostConfidentlyWrong!;
  const keys = ['PetImages/Cat/12345.jpg', 'PetImages/Dog/a_rather_long_file_name_without_any_break_opportunity_0001.jpg'];
  summary.models[0]!.mostConfidentlyWrong = keys.map((key) => ({ ...wrong[0]!, key }));
  await writeRunReport(dir, summary);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(pathToFileURL(path.join(dir, 'report.html')).href, { waitUntil: 'load' });
    const shown = await page.$$eval('.gallery .key', (elements) =>
      elements.map((element) => {
        // The text of each rendered line: a range per character, grouped by its line's top.
        const text = element.textContent ?? '';
        const lines = new Map<number, string>();
        const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
        for (let t = walker.nextNode(); t; t = walker.nextNode()) {
          for (let i = 0; i < (t.textContent ?? '').length; i++) {
            const range = document.createRange();
            range.setStart(t, i);
            range.setEnd(t, i + 1);
            const top = Math.round(range.getBoundingClientRect().top);
            lines.set(top, (lines.get(top) ?? '') + t.textContent![i]);
          }
        }
        const style = getComputedStyle(element);
        return {
          text,
          title: element.getAttribute('title'),
          lines: [...lines.values()],
          clipped: element.scrollWidth > element.clientWidth,
          ellipsis: style.textOverflow,
        };
      }),
    );
    const ours = shown.filter((s) => keys.includes(s.text));
    assert.equal(ours.length, 2, JSON.stringify(shown));
    for (const s of ours) {
      assert.equal(s.title, s.text, 'full name in the title');
      // every line but the last ends at a separator: no name is cut in the middle
      for (const line of s.lines.slice(0, -1)) assert.ok(line.endsWith('/'), `line '${line}' of '${s.text}' ends mid-name`);
    }
    const long = ours.find((s) => s.text === keys[1])!;
    assert.ok(long.clipped && long.ellipsis === 'ellipsis', `the long name is clipped with an ellipsis: ${JSON.stringify(long)}`);
  } finally {
    await browser.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
