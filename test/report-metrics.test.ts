/**
 * Per-class precision, recall and F1 and the binary curves' areas against naive computations in the
 * test: counts over the raw predictions, AUC as the probability that a positive outranks a negative
 * (ties count half), average precision as the mean over positives of the precision at their rank,
 * and scikit-learn's documented examples.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { confusionMatrix, positiveScores, validationCurves } from '../lib/experiment/evaluation.js';
import { binaryCurves, perClassMetrics } from '../lib/reports/metrics.js';
import { parseRunSummary } from '../lib/reports/validate.js';
import type { EvaluateResult } from '../lib/training/fit.js';
import { exampleRunSummary } from './helpers/example-summary.js';
import { Rng } from './helpers/naive.js';

function result(outputs: number[], labels: number[]): EvaluateResult {
  return {
    loss: 0,
    accuracy: 0,
    examples: labels.length,
    outputs: Float32Array.from(outputs),
    labels: Float32Array.from(labels),
    keys: [],
  };
}

test('per-class precision, recall, F1 and support match counts over the predictions (softmax, 3 classes)', () => {
  const rng = new Rng(5);
  const n = 60;
  const outputs: number[] = [];
  const labels: number[] = [];
  const predicted: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = [rng.next(), rng.next(), rng.next()];
    outputs.push(...row);
    predicted.push(row.indexOf(Math.max(...row)));
    labels.push(rng.int(3));
  }
  const metrics = perClassMetrics(confusionMatrix(result(outputs, labels), ['a', 'b', 'c']));
  for (const k of [0, 1, 2]) {
    const tp = predicted.filter((p, i) => p === k && labels[i] === k).length;
    const fp = predicted.filter((p, i) => p === k && labels[i] !== k).length;
    const fn = predicted.filter((p, i) => p !== k && labels[i] === k).length;
    const m = metrics[k]!;
    assert.equal(m.className, 'abc'[k]);
    assert.equal(m.support, tp + fn);
    assert.ok(Math.abs(m.precision - tp / (tp + fp)) < 1e-12, `precision of ${k}`);
    assert.ok(Math.abs(m.recall - tp / (tp + fn)) < 1e-12, `recall of ${k}`);
    assert.ok(Math.abs(m.f1 - (2 * tp) / (2 * tp + fp + fn)) < 1e-12, `F1 of ${k}`);
  }
});

test('a class never predicted has no precision (NaN, shown as a dash), its recall 0', () => {
  const [a, b] = perClassMetrics({
    classNames: ['a', 'b'],
    matrix: [
      [3, 0],
      [2, 0],
    ],
  });
  assert.deepEqual([a!.precision, a!.recall, a!.support], [3 / 5, 1, 3]);
  assert.ok(Number.isNaN(b!.precision));
  assert.equal(b!.recall, 0);
  assert.ok(Number.isNaN(b!.f1));
});

test("scikit-learn's documented examples: roc_auc_score 0.75, average_precision_score 0.8333", () => {
  const curves = binaryCurves([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])!;
  assert.ok(Math.abs(curves.rocAuc - 0.75) < 1e-12, `AUC ${curves.rocAuc}`);
  assert.ok(Math.abs(curves.averagePrecision - 0.8333333333333333) < 1e-12, `AP ${curves.averagePrecision}`);
  // roc_curve(drop_intermediate=False) points, from the strictest threshold
  assert.deepEqual(curves.roc, [
    { fpr: 0, tpr: 0 },
    { fpr: 0, tpr: 0.5 },
    { fpr: 0.5, tpr: 0.5 },
    { fpr: 0.5, tpr: 1 },
    { fpr: 1, tpr: 1 },
  ]);
});

test('ROC AUC and average precision of random scores match the naive pairwise and per-positive definitions', () => {
  const rng = new Rng(21);
  for (const [n, tieStep] of [
    [50, 0],
    [200, 0],
    [120, 0.1],
  ] as const) {
    const labels = Array.from({ length: n }, () => (rng.next() < 0.4 ? 1 : 0));
    // scores lean towards the label, so the areas are neither 0.5 nor 1; tieStep rounds them into ties
    const scores = labels.map((y) => {
      const s = Math.min(1, Math.max(0, rng.next() * 0.8 + y * 0.25));
      return tieStep ? Math.round(s / tieStep) * tieStep : s;
    });
    const curves = binaryCurves(scores, labels)!;
    const pos = scores.filter((_, i) => labels[i] === 1);
    const neg = scores.filter((_, i) => labels[i] === 0);
    let wins = 0;
    for (const p of pos) for (const q of neg) wins += p > q ? 1 : p === q ? 0.5 : 0;
    assert.ok(Math.abs(curves.rocAuc - wins / (pos.length * neg.length)) < 1e-12, `n=${n}: AUC ${curves.rocAuc}`);
    // AP = mean over positives of the precision among examples scored at least as high as it (ties included)
    const ap =
      pos
        .map((s) => {
          const above = scores.map((t, i) => ({ t, y: labels[i] })).filter((e) => e.t >= s);
          return above.filter((e) => e.y === 1).length / above.length;
        })
        .reduce((a, b) => a + b, 0) / pos.length;
    assert.ok(Math.abs(curves.averagePrecision - ap) < 1e-12, `n=${n}: AP ${curves.averagePrecision} vs ${ap}`);
    assert.equal(curves.positives, pos.length);
    assert.equal(curves.roc.at(-1)!.fpr, 1);
    assert.equal(curves.pr.at(-1)!.recall, 1);
  }
});

test('binary scores: the sigmoid output, or the second softmax column; no curves without both classes or beyond two', () => {
  assert.deepEqual(Array.from(positiveScores(result([0.25, 0.75, 0.5], [0, 1, 1]))!), [0.25, 0.75, 0.5]);
  assert.deepEqual(Array.from(positiveScores(result([0.75, 0.25, 0.5, 0.5], [0, 1]))!), [0.25, 0.5]);
  assert.equal(validationCurves(result([0.25, 0.75], [1, 1]), ['cat', 'dog']), undefined);
  assert.equal(validationCurves(result([0.2, 0.3, 0.5], [2]), ['a', 'b', 'c']), undefined);
  assert.equal(validationCurves(result([0.25, 0.75], [0, 1]), ['cat', 'dog'])!.rocAuc, 1);
});

test('summary.json with curves and a confident-correct gallery validates; malformed curves are named', () => {
  const summary = exampleRunSummary(3);
  summary.models[0]!.curves = binaryCurves([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]);
  summary.models[0]!.mostConfidentlyCorrect = summary.models[0]!.mostConfidentlyWrong!.slice(0, 1);
  const parsed = parseRunSummary(JSON.parse(JSON.stringify(summary)));
  assert.deepEqual(parsed.models[0]!.curves, summary.models[0]!.curves);
  const broken = JSON.parse(JSON.stringify(summary));
  broken.models[0].curves.roc = [{ fpr: 'x' }];
  broken.models[0].mostConfidentlyCorrect = 'no';
  assert.throws(
    () => parseRunSummary(broken, 'run/summary.json'),
    (error: Error) =>
      /models\[0\]\.curves\.roc must be an array of \{fpr, tpr\} numbers/.test(error.message) &&
      /models\[0\]\.mostConfidentlyCorrect must be an array of objects/.test(error.message),
  );
});
