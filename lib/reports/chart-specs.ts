import type { TopLevelSpec } from 'vega-lite';
import type { Config } from 'vega-lite/build/src/config.js';
import { lowest } from './figures.js';
import { seriesLabels } from './file-names.js';
import { CHART_FONT_STACK } from './fonts.js';
import type { BinaryCurves, ModelRunSummary, RunSummary } from './types.js';

/** Vega-Lite specifications of the report's charts. Pure data → spec; rendering is in charts.ts. */

export type ComparisonMetric = 'val_loss' | 'val_accuracy';

export const COMPARISON_TITLES: Record<ComparisonMetric, string> = {
  val_loss: 'Validation loss',
  val_accuracy: 'Validation accuracy',
};

/** Tableau-like colours that stay distinguishable in greyscale print and for common colour blindness. */
const MODEL_COLORS = ['#1f77b4', '#e6550d', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf'];
const SPLIT_COLORS = ['#7f8fa6', '#d62728'];
const SPLITS = ['Training', 'Validation'] as const;

export const CHART_CONFIG: Config = {
  font: CHART_FONT_STACK,
  background: 'white',
  padding: 12,
  title: { fontSize: 16, anchor: 'start', offset: 10, subtitleFontSize: 12, subtitleColor: '#555' },
  axis: { labelFontSize: 12, titleFontSize: 13, titleFontWeight: 'normal', gridColor: '#e8e8e8', domainColor: '#888', tickColor: '#888' },
  legend: { labelFontSize: 12, titleFontSize: 12, titleFontWeight: 'normal', symbolStrokeWidth: 3, labelLimit: 220 },
  view: { stroke: '#ddd' },
};

interface Point {
  epoch: number;
  value: number;
}

/** Epoch-indexed points of a series, 1-based; NaN/Infinity/null are skipped (the line joins across them). */
export function seriesPoints(values: readonly (number | null)[] | undefined): Point[] {
  const points: Point[] = [];
  (values ?? []).forEach((value, i) => {
    if (typeof value === 'number' && Number.isFinite(value)) points.push({ epoch: i + 1, value });
  });
  return points;
}

/**
 * Integer epoch axis 1..N. One epoch gets a padded domain so its point is centred and visible; every
 * epoch is labelled while labels fit (about 28 px each), otherwise integer ticks chosen by Vega.
 */
function epochAxis(epochs: number, width: number) {
  const n = Math.max(1, epochs);
  const maxLabels = Math.max(2, Math.floor(width / 28));
  return {
    field: 'epoch',
    type: 'quantitative' as const,
    title: 'Epoch',
    scale: { domain: n === 1 ? [0.5, 1.5] : [1, n], nice: false, zero: false },
    axis:
      n <= maxLabels
        ? { values: Array.from({ length: n }, (_, i) => i + 1), format: 'd', grid: true }
        : { tickMinStep: 1, tickCount: maxLabels, format: 'd', grid: true },
  };
}

function valueAxis(isAccuracy: boolean, title: string | null) {
  return {
    field: 'value',
    type: 'quantitative' as const,
    title,
    // Loss is anchored at zero so that overfitting reads at its true size; accuracy lives near 1.
    scale: isAccuracy ? { zero: false, nice: true } : { zero: true, nice: true },
    axis: { format: isAccuracy ? '.1~%' : '.2f' }, // 97.5% and 98%, not 98% twice
  };
}

const LINE_MARK = {
  type: 'line' as const,
  strokeWidth: 2.5,
  // Points show single-epoch runs (a one-point line draws nothing) and make epochs countable.
  point: { filled: true, size: 45 },
};

/** Validation loss or accuracy per epoch, one line per model that has data. */
export function comparisonSpec(summary: RunSummary, metric: ComparisonMetric): TopLevelSpec {
  const labels = seriesLabels(summary.models);
  const rows: { epoch: number; value: number; model: string }[] = [];
  const plotted: string[] = [];
  const absent: string[] = [];
  summary.models.forEach((model, i) => {
    const points = seriesPoints(model.history?.[metric]);
    if (points.length === 0) {
      absent.push(`${labels[i]}${model.error ? ' (failed)' : ''}`);
      return;
    }
    plotted.push(labels[i]!);
    for (const p of points) rows.push({ ...p, model: labels[i]! });
  });
  const epochs = Math.max(0, ...summary.models.map((m) => m.history?.[metric]?.length ?? 0));
  const width = 560;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    config: CHART_CONFIG,
    title: {
      text: COMPARISON_TITLES[metric],
      ...(absent.length > 0 ? { subtitle: `No data: ${absent.join(', ')}` } : {}),
    },
    width,
    height: 300,
    data: { values: rows },
    mark: LINE_MARK,
    encoding: {
      x: epochAxis(epochs, width),
      y: valueAxis(metric === 'val_accuracy', COMPARISON_TITLES[metric]),
      color: {
        field: 'model',
        type: 'nominal',
        title: 'Model',
        sort: plotted,
        scale: { domain: plotted, range: plotted.map((label) => MODEL_COLORS[labels.indexOf(label) % MODEL_COLORS.length]!) },
      },
    },
  };
}

/** True when a model recorded at least one finite value in any history series. */
export function hasHistory(model: ModelRunSummary): boolean {
  const h = model.history;
  return [h?.loss, h?.accuracy, h?.val_loss, h?.val_accuracy].some((s) => seriesPoints(s).length > 0);
}

/** One model's training vs validation curves: a loss panel and an accuracy panel side by side. */
export function trainingSpec(model: ModelRunSummary, label: string = model.label): TopLevelSpec {
  const h = model.history;
  const epochs = Math.max(0, h?.loss?.length ?? 0, h?.accuracy?.length ?? 0, h?.val_loss?.length ?? 0, h?.val_accuracy?.length ?? 0);
  const width = 320;
  const bestEpoch = checkpointEpoch(model);
  const panel = (metric: 'Loss' | 'Accuracy', train: readonly number[] | undefined, validation: readonly number[] | undefined) => ({
    title: { text: metric, fontSize: 13, fontWeight: 'normal' as const },
    width,
    height: 240,
    layer: [
      {
        data: {
          values: [
            ...seriesPoints(train).map((p) => ({ ...p, split: SPLITS[0] })),
            ...seriesPoints(validation).map((p) => ({ ...p, split: SPLITS[1] })),
          ],
        },
        mark: LINE_MARK,
        encoding: {
          x: epochAxis(epochs, width),
          // The panel title already names the metric.
          y: valueAxis(metric === 'Accuracy', null),
          color: {
            field: 'split',
            type: 'nominal' as const,
            title: null,
            sort: [...SPLITS],
            scale: { domain: [...SPLITS], range: SPLIT_COLORS },
            // Stroke symbols, so the legend shows the dash that tells the series apart in greyscale.
            legend: { symbolType: 'stroke', symbolSize: 400, symbolStrokeWidth: 2.5 },
          },
          strokeDash: {
            field: 'split',
            type: 'nominal' as const,
            title: null,
            sort: [...SPLITS],
            scale: {
              domain: [...SPLITS],
              range: [
                [5, 3],
                [1, 0],
              ],
            },
          },
        },
      },
      ...bestEpochMarker(bestEpoch, epochs, width),
    ],
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    config: CHART_CONFIG,
    title: {
      text: `${label}: training vs validation`,
      ...(model.error ? { subtitle: `Training failed: ${truncate(model.error, 90)}` } : {}),
    },
    hconcat: [panel('Loss', h?.loss, h?.val_loss), panel('Accuracy', h?.accuracy, h?.val_accuracy)],
    resolve: { scale: { y: 'independent' } },
  };
}

/** The epoch of the best/ checkpoint (lowest val_loss): recorded, or read off the history. */
function checkpointEpoch(model: ModelRunSummary): number | undefined {
  const recorded = model.best?.epoch;
  if (Number.isInteger(recorded) && recorded >= 1) return recorded;
  return lowest(model.history?.val_loss ?? [])?.epoch;
}

/** A dotted rule and a label at the best epoch, so the checkpoint that the figures come from is seen on the curves. */
function bestEpochMarker(epoch: number | undefined, epochs: number, width: number) {
  if (epoch === undefined || epoch > Math.max(epochs, 1)) return [];
  const x = { ...epochAxis(epochs, width), field: 'epoch' };
  return [
    {
      data: { values: [{ epoch, label: `best (${epoch})` }] },
      mark: { type: 'rule' as const, color: '#555', strokeDash: [2, 3], strokeWidth: 1.5 },
      encoding: { x },
    },
    {
      data: { values: [{ epoch, label: `best (${epoch})` }] },
      mark: { type: 'text' as const, align: 'left' as const, baseline: 'top' as const, dx: 3, y: 2, fontSize: 11, color: '#555' },
      encoding: { x, text: { field: 'label', type: 'nominal' as const } },
    },
  ];
}

function truncate(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}

/** A model's ROC and precision-recall curves (binary tasks) side by side, the areas in the panel titles. */
export function curvesSpec(model: ModelRunSummary, curves: BinaryCurves, label: string = model.label): TopLevelSpec {
  const positive = model.confusion?.classNames[1];
  const size = 260;
  const unitAxis = (field: string, title: string) => ({
    field,
    type: 'quantitative' as const,
    title,
    scale: { domain: [0, 1], nice: false },
    axis: { format: '.1f', grid: true },
  });
  const line = { type: 'line' as const, strokeWidth: 2.5, color: MODEL_COLORS[0] };
  const chance = { type: 'line' as const, strokeWidth: 1, color: '#999', strokeDash: [4, 4] };
  // sklearn's PR curve starts at recall 0 with the first point's precision; the step holds each precision up to its recall
  const pr = curves.pr.length > 0 ? [{ recall: 0, precision: curves.pr[0]!.precision }, ...curves.pr] : [];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    config: CHART_CONFIG,
    title: {
      text: `${label}: ROC and precision-recall`,
      subtitle:
        `checkpoint best/ on the whole validation split; positive class: ${positive ?? 'class 1'} (${curves.positives} of ` +
        `${curves.positives + curves.negatives})`,
    },
    hconcat: [
      {
        title: { text: `ROC, AUC ${curves.rocAuc.toFixed(3)}`, fontSize: 13, fontWeight: 'normal' as const },
        width: size,
        height: size,
        layer: [
          {
            data: {
              values: [
                { x: 0, y: 0 },
                { x: 1, y: 1 },
              ],
            },
            mark: chance,
            encoding: { x: unitAxis('x', 'False positive rate'), y: unitAxis('y', 'True positive rate') },
          },
          {
            data: { values: curves.roc },
            mark: line,
            encoding: { x: unitAxis('fpr', 'False positive rate'), y: unitAxis('tpr', 'True positive rate'), order: { field: 'fpr' } },
          },
        ],
      },
      {
        title: { text: `Precision-recall, AP ${curves.averagePrecision.toFixed(3)}`, fontSize: 13, fontWeight: 'normal' as const },
        width: size,
        height: size,
        layer: [
          {
            // a classifier without skill: precision = the positive share at every recall
            data: {
              values: [
                { x: 0, y: curves.positives / (curves.positives + curves.negatives) },
                { x: 1, y: curves.positives / (curves.positives + curves.negatives) },
              ],
            },
            mark: chance,
            encoding: { x: unitAxis('x', 'Recall'), y: unitAxis('y', 'Precision') },
          },
          {
            data: { values: pr },
            mark: { ...line, interpolate: 'step-before' as const },
            encoding: { x: unitAxis('recall', 'Recall'), y: unitAxis('precision', 'Precision'), order: { field: 'recall' } },
          },
        ],
      },
    ],
  };
}
