import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { barrier, isChief } from '../distributed/index.js';
import type { Sequential } from '../models/sequential.js';
import { recoverInterruptedSave, restoreCheckpoint, type SaveOptions, saveModel } from '../saving/persistence.js';
import type { Callback, Restored } from './callbacks.js';
import type { Logs } from './history.js';

/**
 * What a backup records in its `transferlab.json` (under `extra.resume`) besides weights and
 * optimizer state: the epochs done (which is also where the data streams stand) and the history.
 */
export interface BackupState {
  completedEpochs: number;
  history: Record<string, number[]>;
  [key: string]: unknown;
}

export interface BackupAndRestoreOptions {
  /** Keras `delete_checkpoint`: remove the backup when fit completes (default true). */
  deleteCheckpoint?: boolean;
  /** saved with the model (class names, base layers), as `saveModel` takes them. */
  saveOptions?: Omit<SaveOptions, 'includeOptimizer' | 'extra'>;
  /** the caller's own state to save with each backup (e.g. timings), read back by `restored()`. */
  state?: () => object;
}

/**
 * Keras `BackupAndRestore(backup_dir)`: at the end of every epoch saves the model, its optimizer
 * state, the epoch count and the history to `backupDir` (atomically: a crash keeps the previous
 * backup). When `fit` starts and a backup newer than its `initialEpoch` exists, fit restores it and
 * continues with the next epoch, so an interrupted fit ends as an uninterrupted one would. A backup
 * at or before `initialEpoch` belongs to an earlier fit (e.g. before fine-tuning) and is left alone.
 */
export class BackupAndRestore implements Callback {
  private model?: Sequential;
  private history: Record<string, number[]> = {};
  readonly backupDir: string;

  constructor(
    backupDir: string,
    private readonly options: BackupAndRestoreOptions = {},
  ) {
    this.backupDir = path.resolve(backupDir);
  }

  setModel(model: Sequential): void {
    this.model = model;
  }

  /** The saved state, without touching the model; undefined when there is no backup. */
  async saved(): Promise<BackupState | undefined> {
    // only rank 0 of a data-parallel run writes the backup (and so finishes an interrupted save)
    if (isChief()) await recoverInterruptedSave(this.backupDir);
    const file = path.join(this.backupDir, 'transferlab.json');
    if (!existsSync(path.join(this.backupDir, 'model.json')) || !existsSync(file)) return undefined;
    const metadata = JSON.parse(await fs.readFile(file, 'utf8')) as { extra?: { resume?: BackupState } };
    const state = metadata.extra?.resume;
    if (!state || !Number.isInteger(state.completedEpochs)) {
      throw new Error(
        `${file} records no epoch count (extra.resume.completedEpochs): it is not a backup; delete ${this.backupDir} to start over`,
      );
    }
    return state;
  }

  async restore(initialEpoch: number): Promise<Restored | undefined> {
    if (isChief()) await recoverInterruptedSave(this.backupDir);
    await barrier(); // the other ranks read the backup once rank 0 has recovered it
    const state = await this.saved();
    // an earlier fit's backup: its history continues in ours, its weights are already the model's
    this.history = structuredClone(state?.history ?? {});
    if (!state || state.completedEpochs <= initialEpoch) return undefined;
    await restoreCheckpoint(this.model!, this.backupDir);
    return { initialEpoch: state.completedEpochs, history: state.history };
  }

  async onEpochEnd(epoch: number, logs: Logs): Promise<void> {
    for (const [k, v] of Object.entries(logs)) (this.history[k] ??= []).push(v);
    const resume: BackupState = { ...this.options.state?.(), completedEpochs: epoch + 1, history: this.history };
    if (!isChief()) return;
    await saveModel(this.model!, this.backupDir, { ...this.options.saveOptions, includeOptimizer: true, extra: { resume } });
  }

  async onTrainEnd(): Promise<void> {
    if (isChief() && (this.options.deleteCheckpoint ?? true)) await fs.rm(this.backupDir, { recursive: true, force: true });
  }
}
