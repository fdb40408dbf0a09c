import { promises as fs } from 'node:fs';
import path from 'node:path';
import { readImageBytes, readImageHead } from './read-file.js';
import type { ImageSource, SourceEntry, SourceRef } from './source.js';

/**
 * Files under `root`, named `<prefix>/<relative path>` with forward slashes, so that an extracted
 * archive yields the same names as the archive itself (e.g. prefix `PetImages`).
 */
export class FolderSource implements ImageSource {
  readonly description: string;
  private stats = new Map<string, { size: number; mtimeMs: number; file: string }>();

  constructor(
    private readonly root: string,
    private readonly prefix = '',
  ) {
    this.description = root;
  }

  async entries(): Promise<SourceEntry[]> {
    const out: SourceEntry[] = [];
    this.stats.clear();
    const walk = async (dir: string, rel: string): Promise<void> => {
      const dirents = await fs.readdir(dir, { withFileTypes: true });
      dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const d of dirents) {
        const file = path.join(dir, d.name);
        const name = rel ? `${rel}/${d.name}` : d.name;
        if (d.isDirectory()) {
          await walk(file, name);
        } else {
          // stat follows symlinks: a link to a regular file counts as that file.
          const st = await fs.stat(file).catch(() => undefined);
          if (!st?.isFile()) continue;
          this.stats.set(name, { size: st.size, mtimeMs: st.mtimeMs, file });
          out.push({ name, size: st.size });
        }
      }
    };
    await walk(this.root, this.prefix);
    return out;
  }

  private fileOf(name: string): string {
    const known = this.stats.get(name);
    if (known) return known.file;
    const rel = this.prefix && name.startsWith(`${this.prefix}/`) ? name.slice(this.prefix.length + 1) : name;
    return path.join(this.root, ...rel.split('/'));
  }

  readHead(name: string, n: number): Promise<Buffer> {
    return readImageHead(this.fileOf(name), n);
  }

  readAll(name: string): Promise<Buffer> {
    return readImageBytes(this.fileOf(name));
  }

  ref(name: string): SourceRef {
    return { kind: 'file', path: this.fileOf(name) };
  }

  async identity(name: string): Promise<string> {
    const st = await fs.stat(this.fileOf(name));
    return `${st.size}:${st.mtimeMs}`;
  }

  async close(): Promise<void> {}
}
