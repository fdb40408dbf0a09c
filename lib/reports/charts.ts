import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { type ComparisonMetric, comparisonSpec, curvesSpec, hasHistory, trainingSpec } from './chart-specs.js';
import { curvesChartName, modelFileStems, seriesLabels, trainingChartName } from './file-names.js';
import { CHART_FONT_FAMILY, findChartFontFiles } from './fonts.js';
import type { RunSummary } from './types.js';

export type { ComparisonMetric } from './chart-specs.js';
export { COMPARISON_TITLES, comparisonSpec, curvesSpec, hasHistory, seriesPoints, trainingSpec } from './chart-specs.js';

/** Rendering of the report's charts: Vega-Lite → Vega → SVG (headless, no canvas) → PNG (resvg). */

export interface Chart {
  /** file stem and HTML anchor: `val_loss`, `val_accuracy`, `<model>_training`. */
  name: string;
  title: string;
  spec: TopLevelSpec;
  svg: string;
}

/** Compiles a Vega-Lite spec and renders it to an SVG string without a browser or canvas. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const vegaSpec = compile(spec).spec;
  const view = new vega.View(vega.parse(vegaSpec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export interface PngOptions {
  /** pixel density: 2 gives crisp charts on high-DPI screens and in slides. */
  scale?: number;
  /** font files for text; default DejaVu Sans (fonts-dejavu-core), see fonts.ts. */
  fontFiles?: string[];
}

/** Rasterises an SVG to PNG with resvg, with an explicit font so text renders on bare machines. */
export function svgToPng(svg: string, options: PngOptions = {}): Buffer {
  const fontFiles = options.fontFiles ?? findChartFontFiles();
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: options.scale ?? 2 },
    background: 'white',
    // System fonts off: output then depends only on the named files, not on what the machine has.
    font: { loadSystemFonts: false, fontFiles, defaultFontFamily: CHART_FONT_FAMILY, sansSerifFamily: CHART_FONT_FAMILY },
    logLevel: 'off',
  });
  return resvg.render().asPng();
}

/**
 * All charts of a run: the two validation comparisons, then one training-vs-validation chart per
 * model that recorded any history (a model that failed before its first epoch gets none), and the
 * ROC and precision-recall curves of each model of a binary task.
 */
export async function buildReportCharts(summary: RunSummary): Promise<Chart[]> {
  const comparisons: { metric: ComparisonMetric; title: string }[] = [
    { metric: 'val_loss', title: 'Validation loss' },
    { metric: 'val_accuracy', title: 'Validation accuracy' },
  ];
  const charts: Chart[] = [];
  for (const { metric, title } of comparisons) {
    const spec = comparisonSpec(summary, metric);
    charts.push({ name: metric, title, spec, svg: await renderSvg(spec) });
  }
  const stems = modelFileStems(summary.models);
  const labels = seriesLabels(summary.models);
  for (const [i, model] of summary.models.entries()) {
    if (!hasHistory(model)) continue;
    const spec = trainingSpec(model, labels[i]);
    charts.push({ name: trainingChartName(stems[i]!), title: `${labels[i]}: training vs validation`, spec, svg: await renderSvg(spec) });
  }
  for (const [i, model] of summary.models.entries()) {
    if (!model.curves) continue;
    const spec = curvesSpec(model, model.curves, labels[i]);
    charts.push({ name: curvesChartName(stems[i]!), title: `${labels[i]}: ROC and precision-recall`, spec, svg: await renderSvg(spec) });
  }
  return charts;
}
