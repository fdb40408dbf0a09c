/** Per-epoch metrics, as Keras's `History` callback records them (`history.history.val_loss`, ...). */
export type Logs = Record<string, number>;

export class History {
  readonly epoch: number[] = [];
  readonly history: Record<string, number[]> = {};

  record(epoch: number, logs: Logs): void {
    this.epoch.push(epoch);
    for (const [key, value] of Object.entries(logs)) (this.history[key] ??= []).push(value);
  }

  /** Epochs `0..n-1` recorded before, e.g. by an interrupted fit that this one resumes. */
  static from(history: Record<string, number[]>): History {
    const h = new History();
    const n = Math.max(0, ...Object.values(history).map((v) => v.length));
    for (let epoch = 0; epoch < n; epoch++) h.epoch.push(epoch);
    for (const [key, values] of Object.entries(history)) h.history[key] = [...values];
    return h;
  }

  toJSON(): { epoch: number[]; history: Record<string, number[]> } {
    return { epoch: this.epoch, history: this.history };
  }
}
