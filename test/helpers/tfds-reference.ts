/**
 * An independent, naive reading of the tfds cats_vs_dogs rules, written from their description and not
 * from lib/data, so that lib/data's figures for a generated folder are checked against computed values.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import path from 'node:path';

export interface ReferenceFigures {
  files: number;
  skippedByName: number;
  skippedByJfif: number;
  examples: number;
  /** kept keys in tfds order. */
  ordered: string[];
  splits: { train: number; validation: number };
  dogsInTrain: number;
  firstKeys: string[];
  firstKeysBySplit: { train: string[]; validation: string[] };
}

/** Python 3 round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** `train[from%:to%]` boundaries: round(pct * n / 100), negative percentages counted from the end. */
export function percentSlice(n: number, from: number | undefined, to: number | undefined): [number, number] {
  const abs = (pct: number) => {
    const b = roundHalfEven((pct * n) / 100);
    return b < 0 ? Math.max(0, n + b) : Math.min(n, b);
  };
  const start = from === undefined ? 0 : abs(from);
  const end = to === undefined ? n : abs(to);
  return [start, Math.max(start, end)];
}

function filesUnder(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const d of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(...filesUnder(dir, r));
    else if (d.isFile()) out.push(r);
  }
  return out;
}

function head(file: string, n: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    return buf.subarray(0, readSync(fd, buf, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

/** The figures of cats_vs_dogs built from a PetImages folder with the default splits `train[:80%]`, `train[-20%:]`. */
export function referenceFigures(petImagesDir: string, limit?: number): ReferenceFigures {
  const names = filesUnder(petImagesDir).map((rel) => `PetImages/${rel}`);
  const byName = names.filter((k) => /^PetImages[\\/](Cat|Dog)[\\/]\d+\.jpg$/.test(k));
  const kept = byName.filter((k) => head(path.join(petImagesDir, k.slice('PetImages/'.length)), 512).includes('JFIF', 0, 'latin1'));
  const hash = (k: string) => BigInt(`0x${createHash('md5').update(`train${k}`).digest('hex')}`);
  const ordered = kept
    .map((k) => ({ k, h: hash(k) }))
    .sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : 0))
    .map((x) => x.k)
    .slice(0, limit);
  const n = ordered.length;
  const [t0, t1] = percentSlice(n, undefined, 80);
  const [v0, v1] = percentSlice(n, -20, undefined);
  const train = ordered.slice(t0, t1);
  const validation = ordered.slice(v0, v1);
  return {
    files: names.length,
    skippedByName: names.length - byName.length,
    skippedByJfif: byName.length - kept.length,
    examples: n,
    ordered,
    splits: { train: train.length, validation: validation.length },
    dogsInTrain: train.filter((k) => k.includes('/Dog/')).length,
    firstKeys: ordered.slice(0, 5),
    firstKeysBySplit: { train: train.slice(0, 5), validation: validation.slice(0, 5) },
  };
}
