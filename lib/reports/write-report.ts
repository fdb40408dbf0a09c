import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { buildReportCharts, svgToPng } from './charts.js';
import { findChartFontFiles } from './fonts.js';
import { renderReportHtml } from './html.js';
import type { RunSummary } from './types.js';

export const REPORT_HTML = 'report.html';

/**
 * Writes a run's plots and report into runDir: `<chart>.svg` and `<chart>.png` for val_loss,
 * val_accuracy and each model's `<model>_training`, then `report.html`. Everything is rendered in
 * memory first (a missing font fails before any file changes), then each file is written
 * atomically. Returns the absolute paths written, in order.
 */
export async function writeRunReport(runDir: string, summary: RunSummary): Promise<{ files: string[] }> {
  const fontFiles = findChartFontFiles();
  const charts = await buildReportCharts(summary);
  const outputs: { file: string; data: string | Uint8Array }[] = [];
  for (const chart of charts) {
    outputs.push({ file: `${chart.name}.svg`, data: chart.svg });
    outputs.push({ file: `${chart.name}.png`, data: svgToPng(chart.svg, { fontFiles }) });
  }
  outputs.push({ file: REPORT_HTML, data: renderReportHtml(summary, charts) });

  const files: string[] = [];
  for (const { file, data } of outputs) {
    const target = path.resolve(runDir, file);
    await writeFileAtomic(target, data);
    files.push(target);
  }
  return { files };
}
