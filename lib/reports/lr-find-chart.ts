import type { TopLevelSpec } from 'vega-lite';
import { CHART_CONFIG } from './chart-specs.js';
import { renderSvg, svgToPng } from './charts.js';

/** The range test as the chart needs it (lib/training's LrFindResult fits). */
export interface LrFindCurve {
  learningRates: number[];
  smoothedLosses: number[];
  suggestion: { steep: number; minimum: number; steepIndex: number; minimumIndex: number };
}

/** fastai's lr_find plot: smoothed loss against a log learning-rate axis, the suggested rates marked. */
export function lrFindSpec(curve: LrFindCurve, title: string): TopLevelSpec {
  const points = curve.learningRates
    .map((lr, i) => ({ lr, loss: curve.smoothedLosses[i] }))
    .filter((p) => Number.isFinite(p.loss) && p.lr > 0);
  const { steep, minimum, steepIndex, minimumIndex } = curve.suggestion;
  const marks = [
    { lr: steep, loss: curve.smoothedLosses[steepIndex], label: `steep ${steep.toExponential(2)}` },
    // the minimum/10 rate sits left of the minimum: mark it on the curve at the point closest to it
    { lr: minimum, loss: lossNear(curve, minimum, minimumIndex), label: `minimum/10 ${minimum.toExponential(2)}` },
  ];
  const x = {
    field: 'lr',
    type: 'quantitative' as const,
    title: 'Learning rate (log scale)',
    scale: { type: 'log' as const },
    axis: { format: '.0e' },
  };
  const y = { field: 'loss', type: 'quantitative' as const, title: 'Smoothed loss', scale: { zero: false } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: title, subtitle: 'fastai range test: exponential sweep, loss smoothed (beta 0.98)' },
    width: 560,
    height: 320,
    config: CHART_CONFIG,
    layer: [
      { data: { values: points }, mark: { type: 'line', color: '#1f77b4', strokeWidth: 2 }, encoding: { x, y } },
      { data: { values: marks }, mark: { type: 'point', filled: true, size: 90, color: '#d62728' }, encoding: { x, y } },
      // labels above (steep) and below (minimum/10): the two points are often close
      ...marks.map((m, i) => ({
        data: { values: [m] },
        mark: { type: 'text' as const, align: 'left' as const, dx: 8, dy: i === 0 ? -10 : 14, fontSize: 12 },
        encoding: { x, y, text: { field: 'label', type: 'nominal' as const } },
      })),
    ],
  };
}

function lossNear(curve: LrFindCurve, lr: number, fallback: number): number {
  let best = fallback;
  curve.learningRates.forEach((r, i) => {
    if (Number.isFinite(curve.smoothedLosses[i]) && Math.abs(Math.log(r / lr)) < Math.abs(Math.log(curve.learningRates[best] / lr)))
      best = i;
  });
  return curve.smoothedLosses[best];
}

/** The chart as SVG and PNG (the report's Vega-Lite → resvg machinery). */
export async function renderLrFind(curve: LrFindCurve, title: string): Promise<{ svg: string; png: Buffer }> {
  const svg = await renderSvg(lrFindSpec(curve, title));
  return { svg, png: svgToPng(svg) };
}
