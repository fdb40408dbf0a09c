import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { crc32 } from './crc32.js';

export interface PetImagesOptions {
  perClass: number;
  /** fixed size for every good image; by default each image gets its own (60..400 px, rarely square). */
  width?: number;
  height?: number;
  seed?: number;
  /** add the archive's broken-file kinds (ids above perClass) and Thumbs.db junk. */
  broken?: boolean;
}

/** Seeded generator of its own, so fixtures do not move when lib/data's PRNG changes. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A photo-like RGB image with a learnable class signal: cats are warm with horizontal stripes, dogs cool
 * with vertical ones; colour, stripe period, phase, contrast and noise vary per image.
 */
function petPixels(isDog: boolean, width: number, height: number, rand: () => number): Buffer {
  const base = isDog ? [60 + 50 * rand(), 110 + 50 * rand(), 170 + 60 * rand()] : [170 + 60 * rand(), 110 + 50 * rand(), 50 + 50 * rand()];
  const period = 8 + 16 * rand();
  const phase = rand() * 2 * Math.PI;
  const contrast = 35 + 30 * rand();
  const noise = 10 + 20 * rand();
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const stripe = contrast * Math.sin(((isDog ? x : y) * 2 * Math.PI) / period + phase);
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) px[o + c] = Math.max(0, Math.min(255, Math.round(base[c]! + stripe + noise * (rand() - 0.5))));
    }
  }
  return px;
}

/** JFIF APP0 segment (version 1.1, aspect 1:1, no thumbnail). */
const JFIF_APP0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);

/** libvips writes no JFIF APP0; real camera-roll JPEGs (and the tfds rule) expect one right after SOI. */
export function withJfif(jpeg: Buffer): Buffer {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('withJfif: not a JPEG (no SOI marker).');
  if (jpeg[2] === 0xff && jpeg[3] === 0xe0) return jpeg;
  return Buffer.concat([jpeg.subarray(0, 2), JFIF_APP0, jpeg.subarray(2)]);
}

/** A good JPEG (baseline, with JFIF APP0) of one class. */
export async function petJpeg(isDog: boolean, width: number, height: number, rand: () => number): Promise<Buffer> {
  return withJfif(
    await sharp(petPixels(isDog, width, height, rand), { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 85 })
      .toBuffer(),
  );
}

/** Writes <root>/PetImages/{Cat,Dog}/<id>.jpg (ids 1..perClass) plus, with broken: true, the broken kinds; returns the PetImages folder. */
export async function makePetImages(root: string, options: PetImagesOptions): Promise<string> {
  if (!Number.isInteger(options.perClass) || options.perClass < 1)
    throw new Error(`perClass must be a positive integer (got ${options.perClass}).`);
  const rand = mulberry32(options.seed ?? 1);
  const petImages = path.join(root, 'PetImages');
  const jobs: Array<{ file: string; isDog: boolean; width: number; height: number; seed: number }> = [];
  for (const cls of ['Cat', 'Dog'] as const) {
    mkdirSync(path.join(petImages, cls), { recursive: true });
    for (let id = 1; id <= options.perClass; id++) {
      const width = options.width ?? 60 + Math.floor(341 * rand());
      const height = options.height ?? 60 + Math.floor(341 * rand());
      jobs.push({ file: path.join(petImages, cls, `${id}.jpg`), isDog: cls === 'Dog', width, height, seed: Math.floor(rand() * 2 ** 32) });
    }
  }
  // Each image draws from its own seed so the files do not depend on encoding order.
  const lanes = Math.max(1, Math.min(4, os.availableParallelism()));
  for (let i = 0; i < jobs.length; i += lanes) {
    await Promise.all(
      jobs.slice(i, i + lanes).map(async (j) => writeFile(j.file, await petJpeg(j.isDog, j.width, j.height, mulberry32(j.seed)))),
    );
  }
  if (options.broken) {
    for (const f of brokenFiles(options.perClass)) await writeFile(path.join(petImages, f.rel), await brokenBytes(f.kind, rand));
  }
  return petImages;
}

export type BrokenKind =
  | 'thumbs-db'
  | 'empty'
  | 'cut-short'
  | 'no-eoi'
  | 'png'
  | 'gif'
  | 'bmp'
  | 'webp'
  | 'tiff'
  | 'cmyk'
  | 'exif-no-jfif'
  | 'greyscale'
  | 'huge-jpeg'
  | 'pixel-bomb';

export interface BrokenFile {
  kind: BrokenKind;
  /** path under PetImages, e.g. `Cat/31.jpg`. */
  rel: string;
  cls: 'Cat' | 'Dog';
  /** what the tfds rules and the decoder should make of it (checked against the bytes by the tests). */
  keptByName: boolean;
  keptByJfif: boolean;
  decodes: boolean;
}

/**
 * The broken files `makePetImages(..., { broken: true })` adds, mirroring the real archive's oddities
 * (same kinds in the same classes, ids right above perClass), plus WebP and TIFF data named .jpg.
 */
export function brokenFiles(perClass: number): BrokenFile[] {
  const layout: Array<['Cat' | 'Dog', BrokenKind[]]> = [
    ['Cat', ['empty', 'png', 'bmp', 'cmyk', 'no-eoi', 'pixel-bomb', 'webp']],
    ['Dog', ['cut-short', 'gif', 'exif-no-jfif', 'greyscale', 'huge-jpeg', 'tiff']],
  ];
  const jfif = new Set<BrokenKind>(['cut-short', 'no-eoi', 'greyscale', 'huge-jpeg']);
  const refused = new Set<BrokenKind>(['thumbs-db', 'empty', 'cut-short', 'pixel-bomb']);
  const out: BrokenFile[] = [];
  for (const [cls, kinds] of layout) {
    out.push({ kind: 'thumbs-db', rel: `${cls}/Thumbs.db`, cls, keptByName: false, keptByJfif: false, decodes: false });
    kinds.forEach((kind, i) =>
      out.push({
        kind,
        rel: `${cls}/${perClass + 1 + i}.jpg`,
        cls,
        keptByName: true,
        keptByJfif: jfif.has(kind),
        decodes: !refused.has(kind),
      }),
    );
  }
  return out;
}

const SMALL = { width: 120, height: 90 };

async function brokenBytes(kind: BrokenKind, rand: () => number): Promise<Buffer> {
  const { width, height } = SMALL;
  const photo = () => sharp(petPixels(rand() < 0.5, width, height, rand), { raw: { width, height, channels: 3 } });
  switch (kind) {
    case 'thumbs-db': // an OLE compound-file header followed by junk, as Windows leaves it
      return Buffer.concat([Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), Buffer.alloc(504, 0x2a)]);
    case 'empty':
      return Buffer.alloc(0);
    case 'cut-short': {
      const whole = await petJpeg(rand() < 0.5, 200, 160, rand);
      return whole.subarray(0, Math.floor(whole.length * 0.4));
    }
    case 'no-eoi': {
      const whole = await petJpeg(rand() < 0.5, width, height, rand);
      return whole.subarray(0, whole.lastIndexOf(Buffer.from([0xff, 0xd9])));
    }
    case 'png':
      return photo().png().toBuffer();
    case 'gif':
      return photo().gif().toBuffer();
    case 'webp':
      return photo().webp().toBuffer();
    case 'tiff':
      return photo().tiff().toBuffer();
    case 'bmp':
      return bmp24(petPixels(rand() < 0.5, width, height, rand), width, height);
    case 'cmyk': // libjpeg writes an Adobe APP14 marker and no JFIF for CMYK
      return photo().toColourspace('cmyk').jpeg({ quality: 85 }).toBuffer();
    case 'exif-no-jfif':
      return withExifOnly(await photo().jpeg({ quality: 85 }).toBuffer());
    case 'greyscale':
      return withJfif(await photo().toColourspace('b-w').jpeg({ quality: 85 }).toBuffer());
    case 'huge-jpeg':
      return hugeJpeg();
    case 'pixel-bomb':
      return pngBomb(20000, 20000);
  }
}

/** A bottom-up 24-bit BMP (BI_RGB), which sharp cannot write. */
export function bmp24(rgb: Uint8Array, width: number, height: number): Buffer {
  const stride = Math.ceil((24 * width) / 32) * 4;
  const out = Buffer.alloc(54 + stride * height);
  out.write('BM', 0, 'latin1');
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(54, 10);
  out.writeUInt32LE(40, 14);
  out.writeInt32LE(width, 18);
  out.writeInt32LE(height, 22);
  out.writeUInt16LE(1, 26);
  out.writeUInt16LE(24, 28);
  out.writeUInt32LE(stride * height, 34);
  for (let y = 0; y < height; y++) {
    const row = 54 + (height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      out[row + x * 3] = rgb[i + 2]!;
      out[row + x * 3 + 1] = rgb[i + 1]!;
      out[row + x * 3 + 2] = rgb[i]!;
    }
  }
  return out;
}

/** Replaces any APP0 after SOI by a minimal Exif APP1 (little-endian TIFF header, one empty IFD), as cameras write. */
function withExifOnly(jpeg: Buffer): Buffer {
  let rest = jpeg.subarray(2);
  if (rest[0] === 0xff && rest[1] === 0xe0) rest = rest.subarray(2 + rest.readUInt16BE(2));
  const tiff = Buffer.from([0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const app1 = Buffer.alloc(4);
  app1.writeUInt16BE(0xffe1, 0);
  app1.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), app1, body, rest]);
}

let huge: Promise<Buffer> | undefined;
/** A valid 12000x12000 JPEG (432 MB as RGB); flat grey so the file stays under 1 MB. Made once per process (~1 s). */
function hugeJpeg(): Promise<Buffer> {
  const side = 12000;
  huge ??= sharp(Buffer.alloc(side * side, 120), { raw: { width: side, height: side, channels: 1 } })
    .jpeg({ quality: 10 })
    .toBuffer()
    .then(withJfif);
  return huge;
}

/** A PNG whose header declares width x height RGB but whose IDAT holds a few bytes: refused before any pixel is made. */
export function pngBomb(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(64))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const shared = new Map<string, Promise<string>>();
let sharedRoot: string | undefined;

/**
 * One generated folder per process (made once in os.tmpdir(), removed at exit), for tests that only read it.
 * Defaults: 30 images per class, seed 1, with the broken files (like the real folder).
 */
export async function sharedPetImages(options: Partial<PetImagesOptions> = {}): Promise<string> {
  const full: PetImagesOptions = { perClass: 30, seed: 1, broken: true, ...options };
  const key = JSON.stringify(full, Object.keys(full).sort());
  let made = shared.get(key);
  if (made === undefined) {
    if (sharedRoot === undefined) {
      const root = mkdtempSync(path.join(os.tmpdir(), 'transferlab-pets-'));
      sharedRoot = root;
      process.on('exit', () => rmSync(root, { recursive: true, force: true }));
    }
    made = makePetImages(path.join(sharedRoot, String(shared.size)), full);
    shared.set(key, made);
  }
  return made;
}
