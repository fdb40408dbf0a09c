import { promises as fs } from 'node:fs';
import path from 'node:path';
import { IMAGE_EXTENSIONS } from './image-folder.js';

/**
 * What the user named on a command line (files, folders, glob patterns) expanded into image files:
 * a file is taken as given (decoding says whether it is an image), a folder gives its image files
 * recursively, a pattern with `*`, `?` or `**` the image files it matches. Hidden entries (`.name`)
 * are skipped in folders and patterns, as shells do. Results keep argument order, sorted within a
 * folder or pattern, each file once.
 */
export interface ExpandedPaths {
  files: string[];
  /** arguments that gave no file, with why. */
  problems: { arg: string; reason: string }[];
}

const GLOB_CHARS = /[*?]/;

const isImage = (file: string): boolean => IMAGE_EXTENSIONS.includes(path.extname(file).toLowerCase());

export async function expandImagePaths(args: readonly string[]): Promise<ExpandedPaths> {
  const files: string[] = [];
  const seen = new Set<string>();
  const problems: ExpandedPaths['problems'] = [];
  const add = (file: string): void => {
    if (!seen.has(file)) {
      seen.add(file);
      files.push(file);
    }
  };
  for (const arg of args) {
    if (GLOB_CHARS.test(arg)) {
      const found = (await globFiles(arg)).filter(isImage);
      if (found.length === 0) problems.push({ arg, reason: `the pattern matches no image file (${IMAGE_EXTENSIONS.join(' ')})` });
      found.forEach(add);
      continue;
    }
    const st = await fs.stat(arg).catch((error: NodeJS.ErrnoException) => error);
    if (st instanceof Error) {
      problems.push({ arg, reason: st.code === 'ENOENT' ? 'no such file or folder' : `cannot read: ${st.message}` });
    } else if (st.isDirectory()) {
      const found = (await walk(arg)).filter(isImage);
      if (found.length === 0) problems.push({ arg, reason: `the folder holds no image file (${IMAGE_EXTENSIONS.join(' ')})` });
      found.forEach(add);
    } else {
      add(arg);
    }
  }
  return { files, problems };
}

/** Regular files under `dir` (links followed), sorted, hidden entries skipped. */
async function walk(dir: string): Promise<string[]> {
  const dirents = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  const names = dirents.map((d) => d.name).filter((n) => !n.startsWith('.'));
  names.sort();
  const out: string[] = [];
  for (const name of names) {
    const full = path.join(dir, name);
    const st = await fs.stat(full).catch(() => undefined);
    if (st?.isDirectory()) out.push(...(await walk(full)));
    else if (st?.isFile()) out.push(full);
  }
  return out;
}

/** Files matching `pattern`: the walk starts at its longest folder prefix without wildcards. */
export async function globFiles(pattern: string): Promise<string[]> {
  const parts = pattern.split(/[\\/]+/);
  const firstGlob = parts.findIndex((p) => GLOB_CHARS.test(p));
  const baseParts = parts.slice(0, firstGlob);
  const base = baseParts.length === 0 ? '.' : baseParts.join('/') || '/';
  const re = globToRegExp(parts.slice(firstGlob).join('/'));
  // Keep the user's spelling of the base folder (`./x/*.png` gives `./x/a.png`).
  const prefix = baseParts.length === 0 ? '' : base.endsWith('/') ? base : `${base}/`;
  const relative = (file: string) => path.relative(base, file).split(path.sep).join('/');
  return (await walk(base))
    .map(relative)
    .filter((rel) => re.test(rel))
    .map((rel) => prefix + rel);
}

/** `**` any folders (zero or more), `*` any characters but `/`, `?` one such character; the rest literal. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/';
      re += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
