/** The human-readable table: our figure, a reference (PyTorch, fp32, ...), the ratio, the target. */

export interface Row {
  metric: string;
  ours: string;
  /** what `ours` is compared with, e.g. `PyTorch 41.2`; empty when nothing. */
  reference: string;
  ratio: string;
  target: string;
  /** true / false when the target applies and could be checked; null when it could not. */
  met: boolean | null;
}

export function fmt(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return value.toFixed(digits);
}

export function ratioText(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '—' : `${value.toFixed(2)}x`;
}

/** "1.23x (1.10-1.40)": a median ratio with the range of the rounds (or epochs) it is the median of. */
export function ratioRangeText(median: number | null | undefined, rounds?: readonly number[] | null): string {
  return rounds?.length ? `${ratioText(median)} (${Math.min(...rounds).toFixed(2)}-${Math.max(...rounds).toFixed(2)})` : ratioText(median);
}

export function bytesText(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? '—' : `${(bytes / 1e9).toFixed(2)} GB`;
}

export function formatTable(rows: Row[]): string {
  const header: Row = { metric: 'measure', ours: 'ours', reference: 'compared with', ratio: 'ratio', target: 'target', met: null };
  const cells = (r: Row, isHeader = false) => [
    r.metric,
    r.ours,
    r.reference,
    r.ratio,
    r.target,
    isHeader ? 'met' : r.met === null ? '—' : r.met ? 'yes' : 'NO',
  ];
  const all = [cells(header, true), ...rows.map((r) => cells(r))];
  const widths = all[0].map((_, c) => Math.max(...all.map((row) => row[c].length)));
  const line = (row: string[]) =>
    row
      .map((cell, c) => (c === 0 || c >= 4 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(all[0]), rule, ...all.slice(1).map(line)].join('\n');
}
