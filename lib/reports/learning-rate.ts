/**
 * The per-epoch learning rate in a few words: runs of equal rates, e.g.
 * `0.001 (epochs 1–5), 0.0001 (epochs 6–20)`, so a schedule or ReduceLROnPlateau is visible in the report.
 */
export function describeLearningRates(rates: readonly (number | null)[]): string | undefined {
  const runs: { rate: number; first: number; last: number }[] = [];
  rates.forEach((rate, i) => {
    if (typeof rate !== 'number' || !Number.isFinite(rate)) return;
    const run = runs[runs.length - 1];
    // equal up to float32 rounding: the engine keeps rates in double, schedules may differ in the last bits
    if (run && Math.abs(run.rate - rate) <= 1e-7 * Math.abs(rate) && run.last === i) run.last = i + 1;
    else runs.push({ rate, first: i + 1, last: i + 1 });
  });
  if (runs.length === 0) return undefined;
  if (runs.length === 1) return `${format(runs[0].rate)} throughout`;
  // a schedule changes often: first, last and the count say enough
  if (runs.length > 6)
    return `${format(runs[0].rate)} at epoch 1 to ${format(runs[runs.length - 1].rate)} at epoch ${runs[runs.length - 1].last} over ${runs.length - 1} changes`;
  return runs.map((r) => `${format(r.rate)} (${r.first === r.last ? `epoch ${r.first}` : `epochs ${r.first}–${r.last}`})`).join(', ');
}

function format(rate: number): string {
  return Number(rate.toPrecision(3)).toString();
}
