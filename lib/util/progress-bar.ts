/**
 * A small progress bar for long work (downloads, image decoding), written to stderr by default.
 *
 * On a TTY it redraws one line (bar, done/total, rate, ETA), throttled so that fast `tick()` calls
 * cost little. Elsewhere (CI logs, pipes) it writes plain lines without control characters, at most
 * every few seconds, plus one at the end, so that logs stay readable.
 */

export type ProgressUnit = 'bytes' | 'items';

/** The part of a writable stream the bar uses; `isTTY`/`columns` are read when present. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressBarOptions {
  /** Shown first on every line, e.g. the file name or "decoding". */
  label: string;
  /** Total amount of work; omit (or 0) when unknown: no bar, no ETA. */
  total?: number;
  /** 'bytes' prints human units (`312.4 MB`); 'items' prints counts. Default 'items'. */
  unit?: ProgressUnit;
  /** Name of the items for unit 'items', e.g. 'images'. */
  itemName?: string;
  /** Work already done before this bar started (a resumed download); not counted in the rate. */
  initial?: number;
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** Force TTY (redrawn line) or plain mode; default: the stream's isTTY, unless TERM=dumb. */
  tty?: boolean;
  /** Minimum time between TTY redraws. Default 100 ms. */
  redrawIntervalMs?: number;
  /** Minimum time between plain lines when not a TTY. Default 5000 ms. */
  plainIntervalMs?: number;
  /** Clock in ms, injectable for tests. Default Date.now. */
  now?: () => number;
}

const DEFAULT_COLUMNS = 80;

export class ProgressBar {
  readonly label: string;
  readonly unit: ProgressUnit;
  private total: number;
  private done: number;
  private readonly initial: number;
  private readonly itemName: string;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly redrawIntervalMs: number;
  private readonly plainIntervalMs: number;
  private readonly now: () => number;
  private readonly startedAt: number;
  private lastDrawAt = -Infinity;
  private lastPlainAt: number;
  private drewLine = false;
  private closed = false;

  constructor(options: ProgressBarOptions) {
    this.label = options.label;
    this.unit = options.unit ?? 'items';
    this.total = options.total && options.total > 0 ? options.total : 0;
    this.initial = Math.max(0, options.initial ?? 0);
    this.done = this.initial;
    this.itemName = options.itemName ?? '';
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? (Boolean(this.stream.isTTY) && process.env.TERM !== 'dumb');
    this.redrawIntervalMs = options.redrawIntervalMs ?? 100;
    this.plainIntervalMs = options.plainIntervalMs ?? 5000;
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    // The first plain line waits a full interval: short jobs then print only their final line.
    this.lastPlainAt = this.startedAt;
  }

  /** Adds `n` (default 1) to the amount done. */
  tick(n = 1): void {
    this.update(this.done + n);
  }

  /** Sets the amount done. */
  update(done: number): void {
    if (this.closed) return;
    this.done = done;
    this.maybeDraw();
  }

  /** Sets or changes the total (e.g. once a server announces the size). */
  setTotal(total: number | undefined): void {
    this.total = total && total > 0 ? total : 0;
  }

  /** Current amount done. */
  get value(): number {
    return this.done;
  }

  /** Ends the bar after success: draws the final state and ends the line. */
  finish(): void {
    if (this.closed) return;
    this.closed = true;
    const elapsed = this.elapsedSeconds();
    const rate = this.rate();
    const parts = [`${this.label}: done, ${this.amount(this.done)}`];
    if (elapsed > 0) parts.push(`in ${formatDuration(elapsed)}`);
    if (rate !== undefined) parts.push(`(${this.rateText(rate)})`);
    this.writeLine(parts.join(' '));
  }

  /**
   * Ends the bar without success (error, Ctrl-C): on a TTY keeps the last drawn state and ends its
   * line so that the next message starts on a fresh line; in plain mode writes nothing more.
   */
  stop(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.tty && this.drewLine) this.stream.write('\n');
  }

  /** One status line, without control characters (exposed for callers that log it themselves). */
  render(width = DEFAULT_COLUMNS): string {
    const rate = this.rate();
    const fraction = this.total > 0 ? Math.min(1, this.done / this.total) : undefined;
    const counts =
      this.unit === 'bytes'
        ? this.total > 0
          ? `${formatBytes(this.done)} / ${formatBytes(this.total)}`
          : formatBytes(this.done)
        : `${this.done}${this.total > 0 ? `/${this.total}` : ''}${this.itemName ? ` ${this.itemName}` : ''}`;
    const tail: string[] = [counts];
    if (rate !== undefined) tail.push(this.rateText(rate));
    if (rate !== undefined && rate > 0 && this.total > 0 && this.done < this.total) {
      tail.push(`ETA ${formatDuration((this.total - this.done) / rate)}`);
    }
    const tailText = tail.join('  ');
    if (fraction === undefined) return `${this.label}  ${tailText}`;
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    // Give the bar whatever room is left, but keep it readable and never wider than 40 cells.
    const room = width - this.label.length - tailText.length - percent.length - 7;
    const barWidth = Math.max(0, Math.min(40, room));
    if (barWidth < 5) return `${this.label} ${percent}  ${tailText}`;
    const filled = Math.round(fraction * barWidth);
    const bar = '#'.repeat(filled) + '-'.repeat(barWidth - filled);
    return `${this.label} [${bar}] ${percent}  ${tailText}`;
  }

  private maybeDraw(): void {
    const now = this.now();
    if (this.tty) {
      if (now - this.lastDrawAt < this.redrawIntervalMs) return;
      this.lastDrawAt = now;
      const width = this.stream.columns && this.stream.columns > 10 ? this.stream.columns : DEFAULT_COLUMNS;
      // Leave the last column free: writing into it makes some terminals wrap.
      const line = this.render(width - 1).slice(0, width - 1);
      // \r returns to the line start, ESC[K clears what a longer previous line left behind.
      this.stream.write(`\r${line}\x1b[K`);
      this.drewLine = true;
    } else {
      if (now - this.lastPlainAt < this.plainIntervalMs) return;
      this.lastPlainAt = now;
      this.stream.write(`${this.render(Number.MAX_SAFE_INTEGER).replace(/ \[[#-]*\]/, '')}\n`);
    }
  }

  private writeLine(text: string): void {
    if (this.tty) this.stream.write(`\r${text}\x1b[K\n`);
    else this.stream.write(`${text}\n`);
  }

  private elapsedSeconds(): number {
    return Math.max(0, (this.now() - this.startedAt) / 1000);
  }

  /** Average rate since the bar started, excluding `initial`; undefined until time has passed. */
  private rate(): number | undefined {
    const elapsed = this.elapsedSeconds();
    if (elapsed <= 0) return undefined;
    return Math.max(0, this.done - this.initial) / elapsed;
  }

  private rateText(rate: number): string {
    return this.unit === 'bytes' ? `${formatBytes(rate)}/s` : `${formatCount(rate)}/s`;
  }

  private amount(n: number): string {
    return this.unit === 'bytes' ? formatBytes(n) : `${n}${this.itemName ? ` ${this.itemName}` : ''}`;
  }
}

/** Decimal units (1 MB = 10^6 bytes), as download sites and `ls -h --si` print them. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 1000) return `${Math.max(0, Math.round(bytes || 0))} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** `7s`, `1m03s`, `2h05m`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatCount(rate: number): string {
  return rate >= 10 ? String(Math.round(rate)) : rate.toFixed(1);
}
