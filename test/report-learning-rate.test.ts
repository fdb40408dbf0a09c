/** The learning rate per epoch in the report: runs of equal rates, and the line in each model's section. */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderReportHtml } from '../lib/reports/html.js';
import { describeLearningRates } from '../lib/reports/learning-rate.js';
import { exampleRunSummary } from './helpers/example-summary.js';

test('describeLearningRates: constant, ReduceLROnPlateau steps, a schedule, nothing recorded', () => {
  assert.equal(describeLearningRates([0.001, 0.001, 0.001]), '0.001 throughout');
  assert.equal(
    describeLearningRates([0.001, 0.001, 0.0001, 0.0001, 0.00001]),
    '0.001 (epochs 1–2), 0.0001 (epochs 3–4), 0.00001 (epoch 5)',
  );
  const decay = Array.from({ length: 10 }, (_, i) => 0.01 * 0.9 ** (i + 1));
  assert.equal(describeLearningRates(decay), '0.009 at epoch 1 to 0.00349 at epoch 10 over 9 changes');
  assert.equal(describeLearningRates([]), undefined);
  assert.equal(describeLearningRates([null, Number.NaN]), undefined);
});

test('each model section states its learning rate when the history has it', () => {
  const summary = exampleRunSummary(4);
  summary.models[0]!.history.learning_rate = [0.001, 0.001, 0.0005, 0.0005];
  const html = renderReportHtml(summary, []);
  assert.match(html, /<p class="learning-rate">Learning rate: 0\.001 \(epochs 1–2\), 0\.0005 \(epochs 3–4\)\.<\/p>/);
  assert.equal((html.match(/class="learning-rate"/g) ?? []).length, 1, 'the model without a recorded rate gets no line');
});
