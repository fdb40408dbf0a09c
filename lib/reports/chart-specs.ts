import type { TopLevelSpec } from 'vega-lite';
import type { Config } from 'vega-lite/build/src/config.js';
import { seriesLabels } from './file-names.js';
import { CHART_FONT_STACK } from './fonts.js';
import type { ModelRunSummary, RunSummary } from './types.js';

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
  const panel = (metric: 'Loss' | 'Accuracy', train: readonly number[] | undefined, validation: readonly number[] | undefined) => ({
    title: { text: metric, fontSize: 13, fontWeight: 'normal' as const },
    width,
    height: 240,
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

function truncate(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}
