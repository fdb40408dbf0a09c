/**
 * tfds (4.0.1) split slicing: `train`, `train[a:b]`, `train[:N]`, `train[10%:20%]`,
 * `train[-20%:]`, optionally followed by `(closest)` (default) or `(pct1_dropremainder)`.
 * Percent boundaries are `round(pct * n / 100)` with Python's round (half to even); negative
 * boundaries count from the end, as in Python slices.
 */
export interface SplitSpec {
  split: string;
  from?: number;
  to?: number;
  unit: 'abs' | '%';
  rounding: 'closest' | 'pct1_dropremainder';
}

const SPLIT_RE = /^(\w+)(\[((-?\d+)(%)?)?:((-?\d+)(%)?)?\])?(\(([^)]*)\))?$/;

export class SplitSyntaxError extends Error {}

export function parseSplit(spec: string, splitName = 'train'): SplitSpec {
  const m = SPLIT_RE.exec(spec.replace(/\s+/g, ''));
  if (!m) {
    throw new SplitSyntaxError(
      `Invalid split "${spec}". Use ${splitName}, ${splitName}[:80%], ${splitName}[-20%:], ${splitName}[100:200] or ${splitName}[:1000].`,
    );
  }
  if (m[1] !== splitName) {
    throw new SplitSyntaxError(`Unknown split "${m[1]}" in "${spec}": this dataset has only "${splitName}".`);
  }
  const fromPct = m[5] === '%';
  const toPct = m[8] === '%';
  if (m[4] !== undefined && m[7] !== undefined && fromPct !== toPct) {
    throw new SplitSyntaxError(`Mixed units in "${spec}": use percent on both sides or on neither.`);
  }
  const unit = fromPct || toPct ? '%' : 'abs';
  const rounding = (m[10] ?? 'closest') as SplitSpec['rounding'];
  if (rounding !== 'closest' && rounding !== 'pct1_dropremainder') {
    throw new SplitSyntaxError(`Unknown rounding "${m[10]}" in "${spec}": use (closest) or (pct1_dropremainder).`);
  }
  const from = m[4] === undefined ? undefined : Number(m[4]);
  const to = m[7] === undefined ? undefined : Number(m[7]);
  if (unit === '%') {
    for (const v of [from, to]) {
      if (v !== undefined && Math.abs(v) > 100) throw new SplitSyntaxError(`Percent out of range in "${spec}": use -100..100.`);
    }
  }
  return { split: m[1]!, from, to, unit, rounding };
}

/** Python 3 `round(x)` for a float: nearest integer, ties to even. */
export function pythonRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f; // exact for doubles of the sizes used here
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** [start, end) indices that `spec` selects from `n` examples, as tfds `_rel_to_abs_instr` computes them. */
export function resolveSplit(spec: string | SplitSpec, n: number, splitName = 'train'): { start: number; end: number } {
  const s = typeof spec === 'string' ? parseSplit(spec, splitName) : spec;
  let from: number;
  let to: number;
  if (s.unit === '%') {
    const toAbs =
      s.rounding === 'closest'
        ? (pct: number) => pythonRound((pct * n) / 100)
        : (pct: number) => {
            if (n < 100) throw new SplitSyntaxError(`pct1_dropremainder needs at least 100 examples (have ${n}).`);
            return pct * Math.trunc(n / 100);
          };
    from = s.from === undefined ? 0 : toAbs(s.from);
    to = s.to === undefined ? n : toAbs(s.to);
  } else {
    from = s.from ?? 0;
    to = s.to ?? n;
  }
  if (Math.abs(from) > n || Math.abs(to) > n) {
    throw new SplitSyntaxError(
      `Requested slice [${from}:${to}] is incompatible with ${n} examples; use smaller boundaries or percentages.`,
    );
  }
  if (from < 0) from += n;
  if (to < 0) to += n;
  // Python slicing of a list: an empty range when from >= to.
  return { start: from, end: Math.max(from, to) };
}
