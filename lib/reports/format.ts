/** Number formatting shared by the HTML report and the terminal table, so both read the same. */

export const MISSING = '–';

export function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Accuracy as a percentage with two decimals (0.95123 → "95.12%"). */
export function formatAccuracy(value: number | undefined): string {
  return isFiniteNumber(value) ? `${(value * 100).toFixed(2)}%` : MISSING;
}

/** Loss with four decimals, as Keras prints it. */
export function formatLoss(value: number | undefined): string {
  return isFiniteNumber(value) ? value.toFixed(4) : MISSING;
}

/** Thousands separated with commas regardless of locale, so outputs are reproducible. */
export function formatInteger(value: number | undefined): string {
  if (!isFiniteNumber(value)) return MISSING;
  return Math.round(value)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Seconds, compact: "8.4 s", "39.4 s", "3 m 05 s", "1 h 02 m". */
export function formatSeconds(seconds: number | undefined): string {
  if (!isFiniteNumber(seconds) || seconds < 0) return MISSING;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)} m ${String(whole % 60).padStart(2, '0')} s`;
  return `${Math.floor(whole / 3600)} h ${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')} m`;
}

export function sum(values: readonly number[]): number {
  return values.filter(isFiniteNumber).reduce((a, b) => a + b, 0);
}

/** Mean of the finite values, or NaN when there are none. */
export function mean(values: readonly number[]): number {
  const finite = values.filter(isFiniteNumber);
  return finite.length === 0 ? NaN : sum(finite) / finite.length;
}

/** Share as a percentage with one decimal, or MISSING when the total is zero. */
export function formatShare(part: number, total: number): string {
  return total > 0 && isFiniteNumber(part) ? `${((part / total) * 100).toFixed(1)}%` : MISSING;
}

/** Byte counts for people, in SI units as disk tools print them: 999 B, 1.2 MB, 16.8 GB. */
export function formatBytes(bytes: number | undefined): string {
  if (!isFiniteNumber(bytes) || bytes < 0) return MISSING;
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (value >= 999.95 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}
