import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatResultsTable } from '../lib/reports/terminal.js';
import { exampleRunSummary } from './helpers/example-summary.js';

test('results table: aligned columns naming each figure, with the wall time and what validation covered', () => {
  const summary = exampleRunSummary(5);
  summary.models[0]!.epochSeconds = [12, 11, 11, 11, 10];
  summary.models[1]!.epochSeconds = [40, 39, 39, 39, 39];
  summary.models[1]!.history.val_accuracy = [0.94, 0.9512, 0.95, 0.949, 0.948];
  summary.models[1]!.bestAccuracy = undefined; // read off the history, as for a summary written before it was recorded
  summary.models[1]!.best = { epoch: 1, val_loss: 0.15, val_accuracy: 0.94 };
  summary.models[1]!.checkpoint = { name: 'best', epoch: 1, val_loss: 0.151, val_accuracy: 0.9431, examples: 4652 };
  summary.models[1]!.timings = {
    dataSeconds: 60,
    featureExtractionSeconds: 100,
    trainingSeconds: 196,
    evaluationSeconds: 4,
    totalSeconds: 360,
  };
  summary.models[0]!.timings = undefined; // older summary: the epochs' time only
  summary.validation = { examples: 4652, window: { steps: 15, batchSize: 64 } };
  const lines = formatResultsTable(summary).split('\n');
  assert.equal(lines.length, 5);
  const [header, rule, cnn, transfer, note] = lines as [string, string, string, string, string];
  assert.ok(transfer.startsWith('TRANSFER'));
  assert.ok(cnn.startsWith('CNN '));
  const col = (title: string) => header.indexOf(title);
  assert.equal(transfer.indexOf('95.12% (2)'), col('Best val_accuracy (epoch)'));
  assert.equal(transfer.indexOf('0.1500 (1)'), col('Lowest val_loss (epoch)'));
  assert.equal(transfer.indexOf('94.31%'), col('best/ val_accuracy'));
  assert.equal(transfer.indexOf('6 m 00 s'), col('Wall time'));
  assert.equal(transfer.indexOf('39.2 s'), col('Time/epoch'));
  assert.equal(cnn.indexOf('55.0 s'), col('Wall time'));
  assert.match(rule, /^-+( {2}-+){5}$/);
  assert.equal(
    note,
    'Per-epoch figures on a window of 15 batches of 64 (960 images) per epoch; best/ (lowest val_loss, used by predict) on the whole ' +
      'validation split (4,652 images).',
  );
});

test('a failed model is marked, its message on its own line, control characters removed', () => {
  const summary = exampleRunSummary(3);
  summary.models[0]!.error = 'boom\n\u001b[31mred\u001b[0m';
  summary.models[0] = {
    ...summary.models[0]!,
    history: { loss: [], accuracy: [], val_loss: [], val_accuracy: [] },
    best: { epoch: 0, val_loss: NaN, val_accuracy: NaN },
    bestAccuracy: undefined,
    checkpoint: undefined,
    timings: undefined,
  };
  const text = formatResultsTable(summary);
  assert.match(text, /^CNN \(failed\) +– /m);
  assert.match(text, /^ {2}! boom \[31mred \[0m$/m);
  assert.ok(!text.includes('\u001b'));
});
