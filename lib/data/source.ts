/**
 * Where an example's bytes come from. A plain JSON value, so it can be stored in cache manifests
 * and reports, and reopened later (e.g. for a thumbnail).
 */
export type SourceRef = { kind: 'file'; path: string } | { kind: 'zip'; archive: string; entry: string };

/** Human form used in reports: the file path, or `archive.zip:PetImages/Cat/1.jpg`. */
export function describeSourceRef(ref: SourceRef): string {
  return ref.kind === 'file' ? ref.path : `${ref.archive}:${ref.entry}`;
}

/** One file found in a source; `name` is the archive-style name (forward slashes for folders). */
export interface SourceEntry {
  name: string;
  size: number;
}

/** A readable collection of named files: an extracted folder or a zip read in place. */
export interface ImageSource {
  /** what the user gave, for messages and reports. */
  readonly description: string;
  /** every regular file, in a stable order. */
  entries(): Promise<SourceEntry[]>;
  /** up to `n` first bytes (fewer if the file is shorter). */
  readHead(name: string, n: number): Promise<Buffer>;
  readAll(name: string): Promise<Buffer>;
  ref(name: string): SourceRef;
  /** changes whenever the bytes might have changed: used in cache keys. */
  identity(name: string): Promise<string>;
  close(): Promise<void>;
}
