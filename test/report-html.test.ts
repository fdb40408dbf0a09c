import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildReportCharts } from '../lib/reports/charts.js';
import { renderReportHtml } from '../lib/reports/html.js';
import type { RunSummary } from '../lib/reports/types.js';
import { exampleRunSummary } from './helpers/example-summary.js';

const EVIL = `<script>alert(1)</script>"&'`;
const EVIL_ESCAPED = '&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;&#39;';

/** Every user-controlled string of a summary carries markup and quotes. */
function hostileSummary(): RunSummary {
  const s = exampleRunSummary(5);
  s.title = `Run ${EVIL}`;
  s.config = { [`key${EVIL}`]: `value${EVIL}`, nested: { note: EVIL } };
  s.environment = { host: EVIL };
  s.dataset.source = `archive${EVIL}.zip`;
  s.dataset.classNames = [`cat${EVIL}`, 'dog'];
  s.dataset.decodeFailures = [{ path: `PetImages/Cat/${EVIL}.jpg`, reason: `bad ${EVIL}` }];
  const m = s.models[0]!;
  m.label = `CNN${EVIL}`;
  m.name = `cnn${EVIL}`;
  m.summaryText = `Model: ${EVIL}`;
  m.confusion!.classNames = [`cat${EVIL}`, 'dog'];
  m.mostConfidentlyWrong![0] = {
    ...m.mostConfidentlyWrong![0]!,
    key: `k${EVIL}`,
    source: `s${EVIL}`,
    trueClass: `t${EVIL}`,
    predictedClass: `p${EVIL}`,
  };
  // Not base64: must never reach a src attribute.
  m.mostConfidentlyWrong![1] = { ...m.mostConfidentlyWrong![1]!, thumbnailBase64: `"><img src=x onerror=alert(1)>` };
  s.models[1]!.error = `failed ${EVIL}`;
  return s;
}

test('every summary string is HTML-escaped; the page has no script at all', async () => {
  const summary = hostileSummary();
  const html = renderReportHtml(summary, await buildReportCharts(summary));
  assert.ok(!html.includes('<script'), 'no <script> anywhere');
  assert.ok(!html.includes('alert(1)</script>'));
  assert.ok(!/<[a-z][^>]*\son[a-z]+\s*=/i.test(html), 'no event-handler attribute on any element');
  assert.ok(!/<img[^>]*src="x"/.test(html));
  const occurrences = html.split(EVIL_ESCAPED).length - 1;
  // title ×2, config key+value+nested, env, source, class name ×3 (dataset, confusion), failure path+reason,
  // label (nav, results, section), name, summary, key, source, true, predicted, error ×3.
  assert.ok(occurrences >= 20, `escaped hostile text appears ${occurrences} times`);
  assert.ok(html.includes(`<title>Run ${EVIL_ESCAPED}</title>`));
});

test('no network resource references: no external src/href, no <link>, no CSS url(), CSP forbids fetches', async () => {
  const summary = exampleRunSummary(5);
  const html = renderReportHtml(summary, await buildReportCharts(summary));
  assert.ok(!/<link\b/i.test(html));
  assert.ok(!/<script\b/i.test(html));
  assert.ok(!/\burl\(/i.test(html), 'no CSS url()');
  assert.ok(!/@import/i.test(html));
  const refs = [...html.matchAll(/\b(?:src|href|xlink:href|action|poster|srcset)\s*=\s*["']?([^"'\s>]*)/gi)].map((m) => m[1]!);
  assert.ok(refs.length > 0, 'the page has links and images to check');
  for (const ref of refs) assert.ok(ref.startsWith('#') || ref.startsWith('data:image/'), `local reference only: ${ref}`);
  assert.match(html, /Content-Security-Policy" content="default-src &#39;none&#39;; img-src data:/);
  assert.ok(html.includes('data:image/jpeg;base64,/9j/'), 'thumbnail inlined');
});

test('results table lists each model with its figures, the charts are inline SVG', async () => {
  const summary = exampleRunSummary(5);
  const charts = await buildReportCharts(summary);
  const html = renderReportHtml(summary, charts);
  const table = /<table class="results">[\s\S]*?<\/table>/.exec(html)?.[0] ?? '';
  const m = summary.models[1]!;
  assert.match(table, /<th scope="row">CNN<\/th>/);
  assert.match(table, /<th scope="row">TRANSFER<\/th>/);
  assert.ok(table.includes(`${(m.bestAccuracy!.val_accuracy * 100).toFixed(2)}%`), 'TRANSFER best val acc');
  assert.ok(table.includes('17,369,025') && table.includes('2,654,337'), 'TRANSFER parameters');
  assert.ok(table.includes('3,367,649'), 'CNN parameters');
  assert.equal((html.match(/<svg[\s>]/g) ?? []).length, charts.length);
  for (const c of charts) assert.ok(html.includes(`id="chart-${c.name}"`), c.name);
  assert.ok(html.includes('<pre>Model: &quot;cnn&quot;'), 'Keras summary text in <pre>');
  assert.match(
    html,
    /TRANSFER<\/strong>'s checkpoint best\/ scores 94\.00% on the whole validation split, 8\.5 points above <strong>CNN<\/strong> \(85\.50%\)/,
  );
  assert.ok(html.includes('PetImages/Cat/666.jpg') && html.includes('Premature end of JPEG file'), 'decode failure with reason');
  assert.ok(html.includes('1,738'), 'JFIF skips');
});

test('a failed model shows as failed with its message, and the rest of the page still renders', async () => {
  const summary = exampleRunSummary(5);
  summary.models.unshift({
    ...summary.models[0]!,
    name: 'broken',
    label: 'BROKEN',
    history: { loss: [], accuracy: [], val_loss: [], val_accuracy: [] },
    best: { epoch: 0, val_loss: NaN, val_accuracy: NaN },
    final: { val_loss: NaN, val_accuracy: NaN },
    epochSeconds: [],
    confusion: undefined,
    mostConfidentlyWrong: undefined,
    error: 'CUDA error: out of memory',
  });
  const html = renderReportHtml(summary, await buildReportCharts(summary));
  assert.match(html, /<tr class="failed"><th scope="row">BROKEN<\/th><td><span class="badge failed">failed<\/span>/);
  assert.ok(html.includes('<div class="error">CUDA error: out of memory</div>'));
  assert.ok(html.includes('No training history was recorded.'));
  assert.ok(!html.includes('NaN'), 'missing numbers show as a dash, not NaN');
  assert.match(html, /<th scope="row">TRANSFER<\/th>/);
  assert.ok(html.trimEnd().endsWith('</html>'));
});

test('a chart SVG carrying script is shown through <img>, never inlined', () => {
  const summary = exampleRunSummary(2);
  const html = renderReportHtml(summary, [
    { name: 'val_loss', svg: '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>' },
  ]);
  assert.ok(!html.includes('<script'));
  assert.match(html, /<figure class="chart" id="chart-val_loss"><img alt="Validation loss" src="data:image\/svg\+xml;base64,/);
  assert.ok(html.includes('No validation accuracy chart.'));
});
