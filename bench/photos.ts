import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

/**
 * Photos for the benchmarks: the real cats_vs_dogs photos under
 * `$TRANSFERLAB_TEST_ASSETS/data/PetImages` when that variable is set, otherwise nothing (the
 * callers generate their own), so that `npm run bench` works on a fresh clone.
 */

export const ASSETS_HINT = 'set TRANSFERLAB_TEST_ASSETS to a folder with data/PetImages/{Cat,Dog}/*.jpg to use real photos';

/** `$TRANSFERLAB_TEST_ASSETS/data/PetImages`, or undefined when the variable is not set. */
export async function realPetImagesDir(): Promise<string | undefined> {
  const assets = process.env.TRANSFERLAB_TEST_ASSETS;
  if (!assets) return undefined;
  const dir = path.resolve(assets, 'data/PetImages');
  for (const cls of ['Cat', 'Dog']) {
    const stat = await fs.stat(path.join(dir, cls)).catch(() => undefined);
    if (!stat?.isDirectory()) {
      throw new Error(
        `TRANSFERLAB_TEST_ASSETS=${assets} has no folder ${path.join(dir, cls)}; ` +
          'point it at a folder laid out as data/PetImages/{Cat,Dog}/*.jpg, or unset it to use generated photos.',
      );
    }
  }
  return dir;
}

/** Deterministic uniform numbers in [0, 1) (xorshift32): the same images on every run. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/**
 * Writes `perClass` photo-like JPEGs into `<dir>/Cat` and `<dir>/Dog`, named 1.jpg, 2.jpg, ...:
 * 500x375 (the dataset's most common size), smooth colour waves plus grain, quality 80, which
 * gives files of about the dataset's 20-30 KB, so decoding costs about what a real photo costs.
 */
export async function generatePhotos(dir: string, perClass: number): Promise<void> {
  const W = 500;
  const H = 375;
  const rnd = random(20240601);
  const pixels = new Uint8Array(W * H * 3);
  for (const cls of ['Cat', 'Dog']) {
    await fs.mkdir(path.join(dir, cls), { recursive: true });
    for (let i = 1; i <= perClass; i++) {
      for (let c = 0; c < 3; c++) {
        const base = 60 + rnd() * 120;
        const amp = 30 + rnd() * 50;
        const fx = ((1 + rnd() * 6) * 2 * Math.PI) / W;
        const fy = ((1 + rnd() * 6) * 2 * Math.PI) / H;
        const px = rnd() * 2 * Math.PI;
        const py = rnd() * 2 * Math.PI;
        const row = Float64Array.from({ length: W }, (_, x) => Math.sin(fx * x + px));
        for (let y = 0; y < H; y++) {
          const col = amp * Math.cos(fy * y + py);
          for (let x = 0; x < W; x++) {
            const v = base + col * row[x] + (rnd() - 0.5) * 24;
            pixels[(y * W + x) * 3 + c] = v < 0 ? 0 : Math.min(v, 255);
          }
        }
      }
      await sharp(pixels, { raw: { width: W, height: H, channels: 3 } })
        .jpeg({ quality: 80 })
        .toFile(path.join(dir, cls, `${i}.jpg`));
    }
  }
}
