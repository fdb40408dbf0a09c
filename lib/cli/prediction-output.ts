/**
 * How `transferlab predict` writes its answers: `table` (aligned columns with a header, for people),
 * `csv` (RFC 4180, with a header), `json` (one object per line) or `tsv` (tab-separated, no header:
 * the default when stdout is not a terminal, for `cut` and friends).
 */

export const PREDICT_FORMATS = ['table', 'csv', 'json', 'tsv'] as const;
export type PredictFormat = (typeof PREDICT_FORMATS)[number];

export interface Prediction {
  image: string;
  /** the k most probable classes, most probable first. */
  top: { class: string; probability: number }[];
  /** the model's raw output row. */
  output: number[];
}

/**
 * Per-class probabilities of one output row: a single sigmoid unit is P(class 1), so the row
 * becomes [1 - p, p]; a wider row is taken as the softmax it is.
 */
export function classProbabilities(row: ArrayLike<number>): number[] {
  return row.length === 1 ? [1 - row[0]!, row[0]!] : Array.from(row);
}

/** The k most probable classes, ties kept in class order. */
export function topK(probabilities: readonly number[], names: readonly string[], k: number): Prediction['top'] {
  return probabilities
    .map((probability, cls) => ({ class: names[cls] ?? String(cls), probability, cls }))
    .sort((a, b) => b.probability - a.probability || a.cls - b.cls)
    .slice(0, k)
    .map(({ class: c, probability }) => ({ class: c, probability }));
}

export function header(k: number): string[] {
  if (k === 1) return ['image', 'class', 'probability'];
  return ['image', ...Array.from({ length: k }, (_, i) => [`class_${i + 1}`, `probability_${i + 1}`]).flat()];
}

function cells(p: Prediction): string[] {
  return [p.image, ...p.top.flatMap((t) => [t.class, t.probability.toFixed(4)])];
}

/** A CSV field, quoted when it holds a comma, quote, line break or edge space. */
function csvField(value: string): string {
  return /[",\r\n]|^\s|\s$/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** Writes predictions as they come (table: all at the end, to align the columns). */
export class PredictionWriter {
  private readonly rows: string[][] = [];

  constructor(
    private readonly format: PredictFormat,
    private readonly k: number,
    private readonly write: (text: string) => void,
  ) {
    if (format === 'csv') write(`${header(k).map(csvField).join(',')}\n`);
  }

  add(p: Prediction): void {
    if (this.format === 'table') this.rows.push(cells(p));
    else if (this.format === 'csv') this.write(`${cells(p).map(csvField).join(',')}\n`);
    else if (this.format === 'tsv') this.write(`${cells(p).join('\t')}\n`);
    else {
      const [best] = p.top;
      this.write(
        `${JSON.stringify({ image: p.image, class: best!.class, probability: best!.probability, top: p.top, output: p.output })}\n`,
      );
    }
  }

  end(): void {
    if (this.format !== 'table' || this.rows.length === 0) return;
    const all = [header(this.k), ...this.rows];
    const widths = all[0]!.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
    // Probabilities align right, names left.
    const line = (r: string[]) =>
      r
        .map((cell, c) => (c > 0 && c % 2 === 0 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd();
    this.write(`${all.map(line).join('\n')}\n`);
  }
}
