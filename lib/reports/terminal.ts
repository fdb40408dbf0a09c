import { formatAccuracy, formatSeconds, isFiniteNumber, mean, sum } from './format.js';
import type { ModelRunSummary, RunSummary } from './types.js';

/**
 * A small aligned plain-text table for the end of a run:
 *
 *   Model     Best val acc (epoch)  Final val acc  Time total  Time/epoch
 *   CNN       88.90% (9)            87.08%         3 m 44 s    11.2 s
 */
export function formatResultsTable(summary: RunSummary): string {
  const header = ['Model', 'Best val acc (epoch)', 'Final val acc', 'Time total', 'Time/epoch'];
  const rows = summary.models.map(row);
  const all = [header, ...rows.map((r) => r.cells)];
  const widths = header.map((_, c) => Math.max(...all.map((cells) => displayWidth(cells[c] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => cell + ' '.repeat(Math.max(0, widths[c]! - displayWidth(cell))))
      .join('  ')
      .trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of rows) {
    out.push(line(r.cells));
    // A failure gets its own indented line, so one long message does not widen every column.
    if (r.error) out.push(`  ! ${r.error}`);
  }
  return out.join('\n');
}

function row(model: ModelRunSummary): { cells: string[]; error?: string } {
  const label = oneLine(model.label || model.name);
  const seconds = model.epochSeconds ?? [];
  const best = isFiniteNumber(model.best?.val_accuracy) ? `${formatAccuracy(model.best.val_accuracy)} (${model.best.epoch})` : formatAccuracy(NaN);
  const cells = [
    model.error ? `${label} (failed)` : label,
    best,
    formatAccuracy(model.final?.val_accuracy),
    seconds.length > 0 ? formatSeconds(sum(seconds)) : formatSeconds(NaN),
    formatSeconds(mean(seconds)),
  ];
  return model.error ? { cells, error: oneLine(model.error) } : { cells };
}

/** Terminal-safe single line: control characters (incl. escape sequences' ESC) become spaces. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
}

/** Code points, not UTF-16 units, so that labels such as "Ω" or emoji do not skew alignment much. */
function displayWidth(text: string): number {
  return [...text].length;
}
