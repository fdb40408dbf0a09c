import type { Callback } from './callbacks.js';
import type { Logs } from './history.js';

/** Keras's duration format for ETA: `1:02:03`, `1:05`, `42s`. */
export function formatEta(seconds: number): string {
  const s = Math.round(seconds);
  if (s >= 3600)
    return `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  if (s >= 60) return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  return `${s}s`;
}

/** Keras's per-step time: `45ms/step`, `2s/step`, `800us/step`. */
export function formatTimePerStep(seconds: number): string {
  if (seconds >= 1) return `${Math.round(seconds)}s/step`;
  if (seconds >= 1e-3) return `${Math.round(seconds * 1e3)}ms/step`;
  return `${Math.round(seconds * 1e6)}us/step`;
}

/** The 30-character Keras bar: `[=====>........................]`. */
export function formatBar(current: number, target: number, width = 30): string {
  const filled = Math.floor((width * current) / target);
  let bar = '';
  if (filled > 0) bar += '='.repeat(filled - 1) + (current < target ? '>' : '=');
  bar += '.'.repeat(width - Math.max(filled, 0));
  return `[${bar}]`;
}

/** A log value as Keras's progress bar prints it: `0.1235`, or `9.4206e-04` at or below 1e-3 (a small learning rate stays readable). */
function formatValue(v: number): string {
  if (Math.abs(v) > 1e-3 || v === 0 || !Number.isFinite(v)) return v.toFixed(4);
  return v.toExponential(4).replace(/e([+-])(\d)$/, 'e$10$2'); // Python's two-digit exponent
}

export function formatLogs(logs: Logs): string {
  return Object.entries(logs)
    .map(([k, v]) => ` - ${k}: ${formatValue(v)}`)
    .join('');
}

/**
 * Keras's ProgbarLogger: `Epoch 3/20`, a live bar on a terminal, and the epoch line
 * `233/233 [==============================] - 11s 45ms/step - loss: ... - val_accuracy: ...`.
 * When the stream is not a terminal only the epoch lines are written (no carriage returns).
 */
export class ProgressLogger implements Callback {
  private steps = 0;
  private epochStart = 0;
  private lastDraw = 0;
  private epochs = 0;
  private readonly tty: boolean;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout,
    private readonly totalSteps?: () => number | undefined,
  ) {
    this.tty = Boolean(out.isTTY) && process.env.TERM !== 'dumb';
  }

  onTrainBegin(info: { epochs: number }): void {
    this.epochs = info.epochs;
  }

  onEpochBegin(epoch: number): void {
    this.out.write(`Epoch ${epoch + 1}/${this.epochs}\n`);
    this.steps = 0;
    this.epochStart = performance.now();
    this.lastDraw = 0;
  }

  onBatchEnd(step: number, logs: Logs, info?: { steps?: number }): void {
    this.steps = step + 1;
    if (!this.tty) return;
    const now = performance.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const target = info?.steps ?? this.totalSteps?.();
    const elapsed = (now - this.epochStart) / 1000;
    if (target) {
      const width = String(target).length;
      const eta = (elapsed / this.steps) * (target - this.steps);
      this.out.write(
        `\r${String(this.steps).padStart(width)}/${target} ${formatBar(this.steps, target)} - ETA: ${formatEta(eta)}${formatLogs(logs)}\x1b[K`,
      );
    } else {
      this.out.write(`\r${this.steps}/Unknown - ${Math.round(elapsed)}s${formatLogs(logs)}\x1b[K`);
    }
  }

  onEpochEnd(_epoch: number, logs: Logs): void {
    const seconds = (performance.now() - this.epochStart) / 1000;
    const line =
      `${this.steps}/${this.steps} ${formatBar(1, 1)} - ${Math.round(seconds)}s ` +
      `${formatTimePerStep(seconds / Math.max(this.steps, 1))}${formatLogs(logs)}`;
    this.out.write(`${(this.tty ? '\r' : '') + line + (this.tty ? '\x1b[K' : '')}\n`);
  }
}
