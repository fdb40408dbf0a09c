/** Progress of a long step on stderr: a redrawn bar on a TTY, a few plain lines otherwise (logs, CI). */
export interface Progress {
  tick(n?: number): void;
  done(): void;
}

export function createProgress(label: string, total: number, opts: { enabled?: boolean; stream?: NodeJS.WriteStream } = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  if (opts.enabled === false || total <= 0) return { tick() {}, done() {} };
  const tty = stream.isTTY === true;
  const started = Date.now();
  let count = 0;
  let lastDraw = 0;
  let lastDecile = -1;
  const rate = (): string => {
    const s = (Date.now() - started) / 1000;
    return s > 0 ? `${(count / s).toFixed(0)}/s` : '';
  };
  const draw = (final: boolean): void => {
    if (tty) {
      const width = 30;
      const filled = Math.round((count / total) * width);
      stream.write(`\r${label} [${'='.repeat(filled)}${' '.repeat(width - filled)}] ${count}/${total} ${rate()}${final ? '\n' : ''}`);
    } else {
      const decile = Math.floor((count / total) * 10);
      if (decile !== lastDecile || final) {
        lastDecile = decile;
        stream.write(`${label}: ${count}/${total} (${Math.floor((count / total) * 100)}%) ${rate()}\n`);
      }
    }
  };
  return {
    tick(n = 1) {
      count += n;
      const now = Date.now();
      if (!tty || now - lastDraw > 100) {
        lastDraw = now;
        if (count < total) draw(false);
      }
    },
    done() {
      draw(true);
    },
  };
}
