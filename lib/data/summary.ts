/** What is known about a dataset once opened: its files, what was skipped, its splits and classes (shown in reports). */
export interface DatasetSummary {
  name: string;
  source: string;
  files: number;
  skippedByName: number;
  skippedByJfif: number;
  examples: number;
  splits: { train: number; validation: number };
  classNames: string[];
  classCounts?: { train: number[]; validation: number[] };
  decodeFailures: { path: string; reason: string }[];
}
