import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openImageFolder } from '../lib/data/image-folder.js';
import { ASSETS_HINT, generatePhotos, realPetImagesDir } from './photos.js';

/**
 * Images per second of the cold path (read + decode + TF-exact resize to 300x300 of photos,
 * both cores busy, written to the cache) and of the cached path (batches read back from the
 * cache). Uses a temporary cache so nothing is reused between runs. The photos are the real ones
 * from TRANSFERLAB_TEST_ASSETS when it is set, generated photo-like JPEGs otherwise.
 */
export async function benchDecode(
  opts: { images?: number } = {},
): Promise<{ decodeColdImgPerSec: number; decodeCachedImgPerSec: number; inputs: string }> {
  const images = opts.images ?? 400;
  const perClass = Math.ceil(images / 2);
  const pet = await realPetImagesDir();
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-bench-decode-'));
  try {
    let inputs: string;
    if (pet) {
      // An image folder of links to real photos (ids 1-2500 are all valid), half cats, half dogs.
      for (const cls of ['Cat', 'Dog']) {
        await fs.mkdir(path.join(work, 'images', cls), { recursive: true });
        for (let i = 1; i <= perClass; i++) await fs.symlink(path.join(pet, cls, `${i}.jpg`), path.join(work, 'images', cls, `${i}.jpg`));
      }
      inputs = `real photos from ${pet}`;
    } else {
      process.stderr.write(`bench decode: generating ${2 * perClass} photo-like JPEGs (${ASSETS_HINT})\n`);
      await generatePhotos(path.join(work, 'images'), perClass);
      inputs = 'generated 500x375 JPEGs';
    }
    process.stderr.write(`bench decode: ${images} ${inputs} to 300x300\n`);
    const opts2 = {
      root: path.join(work, 'images'),
      imageSize: [300, 300] as [number, number],
      batchSize: 64,
      splits: ['train[1:]', 'train[:1]'] as [string, string],
      cacheDir: path.join(work, 'cache'),
      progress: false,
    };
    let t = performance.now();
    const { train } = await openImageFolder(opts2);
    const cold = (performance.now() - t) / 1000;
    t = performance.now();
    let n = 0;
    for await (const b of train.batches()) n += b.shape[0]!;
    const cached = (performance.now() - t) / 1000;
    return { decodeColdImgPerSec: train.size / cold, decodeCachedImgPerSec: n / cached, inputs };
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
