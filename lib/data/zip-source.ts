import { promises as fs } from 'node:fs';
import path from 'node:path';
import { inflateRawSync, constants as zlibConstants } from 'node:zlib';
import yauzl from 'yauzl';
import type { ImageSource, SourceEntry, SourceRef } from './source.js';

/**
 * A zip archive read in place (random access, nothing extracted). Entries are only ever looked up
 * by name and their bytes returned in memory; no path is built from an entry name, so names such
 * as `../evil.jpg` cannot write anywhere (zip-slip is impossible by construction).
 *
 * Names are read raw (`decodeStrings: false`) because yauzl rejects the whole archive on a single
 * `..` or absolute name; such names simply fail the name rule instead.
 */
export class ZipSource implements ImageSource {
  readonly description: string;
  private zip?: yauzl.ZipFile;
  private byName = new Map<string, yauzl.Entry>();
  private archiveIdentity?: string;
  private handle?: Promise<fs.FileHandle>;

  constructor(private readonly archive: string) {
    this.archive = path.resolve(archive);
    this.description = this.archive;
  }

  private async open(): Promise<yauzl.ZipFile> {
    if (this.zip) return this.zip;
    let st;
    try {
      st = await fs.stat(this.archive);
    } catch {
      throw new Error(`Archive not found: ${this.archive}. Give the path of kagglecatsanddogs_5340.zip (or download it first).`);
    }
    this.archiveIdentity = `${st.size}:${st.mtimeMs}`;
    try {
      this.zip = await yauzl.openPromise(this.archive, {
        lazyEntries: true,
        autoClose: false,
        decodeStrings: false,
        validateEntrySizes: true,
      });
    } catch (error) {
      throw new Error(`Cannot read ${this.archive} as a zip archive (${(error as Error).message}). Is the download complete?`);
    }
    return this.zip;
  }

  async entries(): Promise<SourceEntry[]> {
    const zip = await this.open();
    const out: SourceEntry[] = [];
    this.byName.clear();
    for await (const entry of zip.eachEntry()) {
      const name = entryName(entry);
      if (name.endsWith('/')) continue; // directory
      if (!this.byName.has(name)) this.byName.set(name, entry);
      out.push({ name, size: entry.uncompressedSize });
    }
    return out;
  }

  private entry(name: string): yauzl.Entry {
    const e = this.byName.get(name);
    if (!e) throw new Error(`No entry "${name}" in ${this.archive} (list the entries first).`);
    return e;
  }

  private async stream(name: string) {
    const zip = await this.open();
    return zip.openReadStreamPromise(this.entry(name));
  }

  /**
   * First bytes of an entry without streaming it: yauzl's streams cannot be abandoned midway
   * (destroying one with a read queued crashes fd-slicer), so the compressed bytes are read
   * directly and inflated only as far as they go.
   */
  async readHead(name: string, n: number): Promise<Buffer> {
    const zip = await this.open();
    const entry = this.entry(name);
    if (entry.isEncrypted()) throw new Error(`Entry "${name}" in ${this.archive} is encrypted.`);
    const { fileDataStart } = await zip.readLocalFileHeaderPromise(entry, { minimal: true });
    this.handle ??= fs.open(this.archive, 'r');
    const want = Math.min(n, entry.uncompressedSize);
    if (entry.compressionMethod === 0) return this.readRaw(fileDataStart, want);
    if (entry.compressionMethod !== 8) throw new Error(`Entry "${name}" uses unsupported compression method ${entry.compressionMethod}.`);
    for (let chunk = 4096; ; chunk *= 4) {
      const compressed = await this.readRaw(fileDataStart, Math.min(chunk, entry.compressedSize));
      const out = inflateRawSync(compressed, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
      if (out.length >= want || compressed.length >= entry.compressedSize) return out.subarray(0, want);
    }
  }

  private async readRaw(position: number, length: number): Promise<Buffer> {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await (await this.handle!).read(buf, 0, length, position);
    return buf.subarray(0, bytesRead);
  }

  async readAll(name: string): Promise<Buffer> {
    const stream = await this.stream(name);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  ref(name: string): SourceRef {
    return { kind: 'zip', archive: this.archive, entry: name };
  }

  async identity(name: string): Promise<string> {
    await this.open();
    const e = this.entry(name);
    return `${this.archiveIdentity}:${e.crc32}:${e.uncompressedSize}`;
  }

  async close(): Promise<void> {
    this.zip?.close();
    this.zip = undefined;
    await (await this.handle)?.close();
    this.handle = undefined;
  }
}

/** Raw entry name: UTF-8 when flagged (or the Info-ZIP unicode extra field is absent), else Latin-1 as a stand-in for CP437. */
function entryName(entry: yauzl.Entry): string {
  const raw = entry.fileName as unknown as Buffer;
  const utf8 = (entry.generalPurposeBitFlag & 0x800) !== 0;
  return raw.toString(utf8 ? 'utf8' : 'latin1');
}

/** Reads one entry of an archive without listing it first (for thumbnails). */
export async function readZipEntry(archive: string, name: string): Promise<Buffer> {
  const source = new ZipSource(archive);
  try {
    const entries = await source.entries();
    if (!entries.some((e) => e.name === name)) throw new Error(`No entry "${name}" in ${archive}.`);
    return await source.readAll(name);
  } finally {
    await source.close();
  }
}
