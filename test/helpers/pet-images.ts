import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';

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
  return withJfif(await sharp(petPixels(isDog, width, height, rand), { raw: { width, height, channels: 3 } }).jpeg({ quality: 85 }).toBuffer());
}

/** Writes <root>/PetImages/{Cat,Dog}/<id>.jpg (ids 1..perClass) plus, with broken: true, the broken kinds; returns the PetImages folder. */
export async function makePetImages(root: string, options: PetImagesOptions): Promise<string> {
  if (!Number.isInteger(options.perClass) || options.perClass < 1) throw new Error(`perClass must be a positive integer (got ${options.perClass}).`);
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
  return petImages;
}

const shared = new Map<string, Promise<string>>();
let sharedRoot: string | undefined;

/** One generated folder per process (made once in os.tmpdir(), removed at exit), for tests that only read it. */
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
