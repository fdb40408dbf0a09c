import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exampleRunSummary } from './helpers/example-summary.js';
import { formatResultsTable } from '../lib/reports/terminal.js';

test('results table: aligned columns with best (epoch), final and times', () => {
  const summary = exampleRunSummary(5);
  summary.models[0]!.epochSeconds = [12, 11, 11, 11, 10];
  summary.models[1]!.epochSeconds = [40, 39, 39, 39, 39];
  summary.models[1]!.best = { epoch: 2, val_loss: 0.16, val_accuracy: 0.9512 };
  summary.models[1]!.final = { val_loss: 0.21, val_accuracy: 0.9431 };
  const lines = formatResultsTable(summary).split('\n');
  assert.equal(lines.length, 4);
  const [header, rule, cnn, transfer] = lines as [string, string, string, string];
  assert.ok(transfer.startsWith('TRANSFER'));
  assert.ok(cnn.startsWith('CNN '));
  const col = (title: string) => header.indexOf(title);
  assert.equal(transfer.indexOf('95.12% (2)'), col('Best val acc (epoch)'));
  assert.equal(transfer.indexOf('94.31%'), col('Final val acc'));
  assert.equal(transfer.indexOf('3 m 16 s'), col('Time total'));
  assert.equal(transfer.indexOf('39.2 s'), col('Time/epoch'));
  assert.equal(cnn.indexOf('55.0 s'), col('Time total'));
  assert.match(rule, /^-+( {2}-+){4}$/);
});

test('a failed model is marked, its message on its own line, control characters removed', () => {
  const summary = exampleRunSummary(3);
  summary.models[0]!.error = 'boom\n\u001b[31mred\u001b[0m';
  summary.models[0]!.best = { epoch: 0, val_loss: NaN, val_accuracy: NaN };
  const text = formatResultsTable(summary);
  assert.match(text, /^CNN \(failed\) +– /m);
  assert.match(text, /^ {2}! boom \[31mred \[0m$/m);
  assert.ok(!text.includes('\u001b'));
});
