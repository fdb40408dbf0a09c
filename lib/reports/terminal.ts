import { bestAccuracy } from './figures.js';
import { formatAccuracy, formatInteger, formatLoss, formatSeconds, isFiniteNumber, mean, sum } from './format.js';
import type { ModelRunSummary, RunSummary, ValidationSummary } from './types.js';

/**
 * A small aligned plain-text table for the end of a run, each figure named for what it is, and a
 * line saying what the per-epoch figures were measured on:
 *
 *   Model     Best val_accuracy (epoch)  Lowest val_loss (epoch)  best/ val_accuracy  Wall time  Time/epoch
 *   CNN       88.90% (9)                 0.2711 (6)               88.12%              3 m 44 s   11.2 s
 */
export function formatResultsTable(summary: RunSummary): string {
  const header = ['Model', 'Best val_accuracy (epoch)', 'Lowest val_loss (epoch)', 'best/ val_accuracy', 'Wall time', 'Time/epoch'];
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
  const note = scopeNote(summary.validation);
  return note ? `${out.join('\n')}\n${note}` : out.join('\n');
}

function scopeNote(validation: ValidationSummary | undefined): string | undefined {
  if (!validation) return undefined;
  const whole = `the whole validation split (${formatInteger(validation.examples)} images)`;
  const perEpoch = validation.window
    ? `a window of ${formatInteger(validation.window.steps)} ` +
      `batches of ${formatInteger(validation.window.batchSize)} (${formatInteger(validation.window.steps * validation.window.batchSize)} ` +
      `images) per epoch`
    : whole;
  return `Per-epoch figures on ${perEpoch}; best/ (lowest val_loss, used by predict) on ${whole}.`;
}

function row(model: ModelRunSummary): { cells: string[]; error?: string } {
  const label = oneLine(model.label || model.name);
  const seconds = model.epochSeconds ?? [];
  const accuracy = bestAccuracy(model);
  const total = model.timings?.totalSeconds ?? (seconds.length > 0 ? sum(seconds) : NaN);
  const cells = [
    model.error ? `${label} (failed)` : label,
    accuracy ? `${formatAccuracy(accuracy.value)} (${accuracy.epoch})` : formatAccuracy(NaN),
    isFiniteNumber(model.best?.val_loss) ? `${formatLoss(model.best.val_loss)} (${model.best.epoch})` : formatLoss(NaN),
    formatAccuracy(model.checkpoint?.val_accuracy),
    formatSeconds(total),
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
