import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { reportCommand } from '../lib/cli/commands/report.js';
import { InvalidSummaryError, parseRunSummary } from '../lib/reports/validate.js';
import { writeRunReport } from '../lib/reports/write-report.js';
import { exampleRunSummary } from './helpers/example-summary.js';

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'transferlab-report-'));
}

/** Collects what a command prints, instead of writing to the test runner's own stdout. */
function capture() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: { stdout: { write: (t: string) => (out.stdout += t) }, stderr: { write: (t: string) => (out.stderr += t) } },
  };
}

const EXPECTED_FILES = [
  'val_loss.svg',
  'val_loss.png',
  'val_accuracy.svg',
  'val_accuracy.png',
  'cnn_training.svg',
  'cnn_training.png',
  'transfer_training.svg',
  'transfer_training.png',
  'report.html',
];

test('writeRunReport writes every plot as SVG and PNG plus report.html, and no temporary files', async () => {
  const dir = await tempDir();
  const { files } = await writeRunReport(dir, exampleRunSummary(5));
  assert.deepEqual(
    files,
    EXPECTED_FILES.map((f) => path.join(dir, f)),
  );
  assert.deepEqual((await fs.readdir(dir)).sort(), [...EXPECTED_FILES].sort());
  for (const f of files) {
    const data = await fs.readFile(f);
    if (f.endsWith('.png')) assert.equal(data.toString('latin1', 1, 4), 'PNG', f);
    if (f.endsWith('.svg')) assert.ok(data.toString('utf8').startsWith('<svg'), f);
  }
  assert.match(await fs.readFile(path.join(dir, 'report.html'), 'utf8'), /^<!doctype html>/);
});

test('model names become safe, distinct file names', async () => {
  const dir = await tempDir();
  const summary = exampleRunSummary(2);
  summary.models[0]!.name = '../../evil name';
  summary.models[1]!.name = '../../evil name';
  const { files } = await writeRunReport(dir, summary);
  const names = files.map((f) => path.relative(dir, f));
  assert.ok(names.includes('evil_name_training.svg') && names.includes('evil_name_2_training.svg'), names.join(' '));
  assert.ok(names.every((n) => !n.includes('/') && !n.includes('..')));
});

test('summary.json with NaN written as null validates, the nulls read back as NaN', () => {
  const json = JSON.parse(JSON.stringify({ ...exampleRunSummary(3), config: { seed: null } }));
  json.models[0].history.val_loss[1] = null;
  const summary = parseRunSummary(json);
  assert.ok(Number.isNaN(summary.models[0]!.history.val_loss[1]));
  assert.equal(summary.config.seed, null, 'nulls outside model figures are left alone');
});

test('parseRunSummary lists every problem with its path', () => {
  const json = JSON.parse(JSON.stringify(exampleRunSummary(2)));
  json.models[1].history.val_accuracy = 'high';
  delete json.title;
  assert.throws(
    () => parseRunSummary(json, 'x/summary.json'),
    (e: unknown) =>
      e instanceof InvalidSummaryError &&
      e.message.startsWith('x/summary.json is not a valid run summary') &&
      e.problems.includes('title must be a string') &&
      e.problems.includes('models[1].history.val_accuracy must be an array of numbers'),
  );
});

test('transferlab report RUN_DIR regenerates plots and report from summary.json', async () => {
  const dir = await tempDir();
  await fs.writeFile(path.join(dir, 'summary.json'), JSON.stringify(exampleRunSummary(4)));
  const { out, io } = capture();
  assert.equal(await reportCommand([dir], io), 0, out.stderr);
  assert.match(out.stdout, /^Model +Best val_accuracy \(epoch\) +Lowest val_loss \(epoch\)/);
  assert.match(out.stdout, /Wrote 9 files/);
  for (const f of EXPECTED_FILES) await fs.access(path.join(dir, f));
});

test('transferlab report: clear errors for a missing or invalid summary.json, usage errors, --help', async () => {
  const dir = await tempDir();
  let c = capture();
  assert.equal(await reportCommand([dir], c.io), 1);
  assert.match(c.out.stderr, /cannot read .*summary\.json: not found/);

  await fs.writeFile(path.join(dir, 'summary.json'), '{"title": ');
  c = capture();
  assert.equal(await reportCommand([dir], c.io), 1);
  assert.match(c.out.stderr, /not valid JSON/);

  await fs.writeFile(path.join(dir, 'summary.json'), JSON.stringify({ title: 'x', models: [{}] }));
  c = capture();
  assert.equal(await reportCommand([dir], c.io), 1);
  assert.match(c.out.stderr, /models\[0\]\.name must be a string/);
  assert.deepEqual(await fs.readdir(dir), ['summary.json'], 'nothing written for an invalid summary');

  c = capture();
  assert.equal(await reportCommand([], c.io), 2);
  assert.match(c.out.stderr, /expected exactly one RUN_DIR/);
  c = capture();
  assert.equal(await reportCommand(['--bogus', dir], c.io), 2);
  assert.match(c.out.stderr, /Usage: transferlab report RUN_DIR/);

  c = capture();
  assert.equal(await reportCommand(['--help'], c.io), 0);
  assert.match(c.out.stdout, /^Usage: transferlab report RUN_DIR/);
  assert.match(c.out.stdout, /fonts-dejavu-core/);
});
