import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { inspectCatsVsDogs, openCatsVsDogs } from '../lib/data/cats-vs-dogs.js';
import { decodeImage, decodeImageFile } from '../lib/data/decode.js';
import { openImageFolder } from '../lib/data/image-folder.js';
import type { Batch } from '../lib/data/types.js';
import { brokenFiles, sharedPetImages } from './helpers/pet-images.js';

const PER_CLASS = 6;
const brokenRel = (kind: string) => brokenFiles(PER_CLASS).find((f) => f.kind === kind)!.rel;
const CUT_SHORT = `PetImages/${brokenRel('cut-short')}`;
/** Good photos plus a JPEG cut short (kept by the rules, fails to decode), a greyscale one and PNG data named .jpg (fails the JFIF rule). */
const PICK = [
  'Cat/1.jpg',
  'Cat/2.jpg',
  'Cat/3.jpg',
  'Cat/4.jpg',
  'Cat/5.jpg',
  'Cat/6.jpg',
  'Dog/1.jpg',
  'Dog/2.jpg',
  'Dog/3.jpg',
  'Dog/4.jpg',
  brokenRel('cut-short'),
  brokenRel('greyscale'),
  brokenRel('png'),
];

/** A fresh copy per test: the tests touch and truncate files. */
async function petFixture(): Promise<string> {
  const pets = await sharedPetImages({ perClass: PER_CLASS, broken: true });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-cache-'));
  for (const rel of PICK) {
    await fs.mkdir(path.join(dir, 'PetImages', path.dirname(rel)), { recursive: true });
    await fs.copyFile(path.join(pets, rel), path.join(dir, 'PetImages', rel));
  }
  return dir;
}

async function collect(ds: { batches(options?: { pass?: number }): AsyncIterable<Batch> }, pass = 0): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of ds.batches({ pass })) out.push(b);
  return out;
}

const SIZE: [number, number] = [20, 24];

test('decode once, reuse the cache, rebuild when the source or the cache changes', async () => {
  const dir = await petFixture();
  const cacheDir = path.join(dir, 'cache');
  // Counts the images decoded, to tell a cache hit from a rebuild.
  let decodes = 0;
  const decode = (input: Buffer, height: number, width: number) => {
    decodes++;
    return decodeImage(input, height, width);
  };
  const decodeCount = () => decodes;
  const opts = { dataDir: dir, imageSize: SIZE, batchSize: 4, cacheDir, progress: false, decode };
  const rules = await inspectCatsVsDogs({ dataDir: dir });
  await rules.source.close();
  assert.equal(rules.info.examples, 12); // the PNG data fails the JFIF rule

  let before = decodeCount();
  const first = await openCatsVsDogs(opts);
  assert.equal(decodeCount() - before, 12);
  assert.deepEqual(first.info.cache && [first.info.cache.train, first.info.cache.validation], ['built', 'built']);
  // The JPEG cut short is kept by the rules but cannot be decoded: reported, left out, split unchanged.
  assert.deepEqual(
    first.info.decodeFailures.map((f) => path.relative(dir, f.path)),
    [CUT_SHORT],
  );
  assert.match(first.info.decodeFailures[0]!.reason, /truncated/);
  assert.deepEqual(first.info.splits, rules.info.splits);
  const expectTrain = rules.parts.train.map((e) => e.key).filter((k) => k !== CUT_SHORT);
  const expectVal = rules.parts.validation.map((e) => e.key).filter((k) => k !== CUT_SHORT);
  assert.deepEqual(first.train.keys, expectTrain);
  assert.deepEqual(first.validation.keys, expectVal);
  assert.equal(first.train.size + first.validation.size, 11);

  // Batches: sizes, labels, keys, pixels equal to a direct decode.
  const batches = await collect(first.train);
  const sizes = batches.map((b) => b.shape[0]);
  assert.deepEqual(
    sizes,
    Array.from({ length: Math.ceil(first.train.size / 4) }, (_, i) => Math.min(4, first.train.size - i * 4)),
  );
  assert.deepEqual(batches[0]!.shape, [4, 20, 24, 3]);
  const keys = batches.flatMap((b) => b.keys!);
  assert.deepEqual(keys, expectTrain);
  const labels = batches.flatMap((b) => Array.from(b.y));
  assert.deepEqual(
    labels,
    keys.map((k) => (k.includes('/Dog/') ? 1 : 0)),
  );
  const direct = await decodeImageFile(path.join(dir, keys[5]!), 20, 24);
  assert.deepEqual(batches[1]!.x.subarray(20 * 24 * 3, 2 * 20 * 24 * 3), direct);

  // Second open: nothing decoded, same content.
  before = decodeCount();
  const second = await openCatsVsDogs(opts);
  assert.equal(decodeCount() - before, 0);
  assert.equal(second.info.cache?.train, 'hit');
  assert.deepEqual(second.info.decodeFailures, first.info.decodeFailures);
  assert.deepEqual(
    (await collect(second.train)).map((b) => b.x),
    batches.map((b) => b.x),
  );

  // Touching one file invalidates the split that holds it.
  const touched = path.join(dir, first.validation.keys[0]!);
  await fs.utimes(touched, new Date(), new Date(Date.now() + 5000));
  before = decodeCount();
  const third = await openCatsVsDogs(opts);
  assert.equal(third.info.cache?.validation, 'built');
  assert.equal(third.info.cache?.train, 'hit');
  assert.equal(decodeCount() - before, rules.parts.validation.length);

  // A truncated pixel file (killed process, full disk) is rebuilt, never read.
  await fs.truncate(third.train.pixelsPath, 1000);
  before = decodeCount();
  const fourth = await openCatsVsDogs(opts);
  assert.equal(fourth.info.cache?.train, 'built');
  assert.equal(decodeCount() - before, rules.parts.train.length);
  assert.deepEqual(
    (await collect(fourth.train)).map((b) => b.x),
    batches.map((b) => b.x),
  );

  // A build interrupted before its manifest was written is rebuilt too.
  await fs.rm(path.join(path.dirname(fourth.train.pixelsPath), 'manifest.json'));
  const fifth = await openCatsVsDogs(opts);
  assert.equal(fifth.info.cache?.train, 'built');
  await fs.rm(dir, { recursive: true, force: true });
});

test('seeded shuffle per pass: same examples, different order each pass, reproducible', async () => {
  const dir = await petFixture();
  const opts = {
    dataDir: dir,
    imageSize: SIZE,
    batchSize: 3,
    cacheDir: path.join(dir, 'cache'),
    progress: false,
    shuffleSeed: 42,
    splits: ['train[2:]', 'train[:2]'] as [string, string],
  };
  const a = await openCatsVsDogs(opts);
  const pass1 = (await collect(a.train)).flatMap((b) => b.keys!);
  const pass2 = (await collect(a.train, 1)).flatMap((b) => b.keys!);
  assert.notDeepEqual(pass1, pass2);
  assert.deepEqual([...pass1].sort(), [...a.train.keys].sort());
  assert.notDeepEqual(pass1, a.train.keys);
  const b = await openCatsVsDogs(opts);
  assert.deepEqual(
    (await collect(b.train)).flatMap((x) => x.keys!),
    pass1,
  );
  // Validation is never shuffled.
  assert.deepEqual(
    (await collect(a.validation)).flatMap((x) => x.keys!),
    a.validation.keys,
  );
  // Pixels follow their keys when shuffled.
  const shuffled = await collect(b.train);
  const key = shuffled[0]!.keys![1]!;
  assert.deepEqual(shuffled[0]!.x.subarray(20 * 24 * 3, 2 * 20 * 24 * 3), await decodeImageFile(path.join(dir, key), 20, 24));
  await fs.rm(dir, { recursive: true, force: true });
});

test('stopping a pass early releases it and the next pass starts from the beginning', async () => {
  const dir = await petFixture();
  const { train } = await openCatsVsDogs({
    dataDir: dir,
    imageSize: SIZE,
    batchSize: 2,
    cacheDir: path.join(dir, 'cache'),
    progress: false,
  });
  for await (const b of train.batches()) {
    assert.deepEqual(b.keys, train.keys.slice(0, 2));
    break;
  }
  assert.deepEqual(
    (await collect(train)).flatMap((b) => b.keys!),
    train.keys,
  );
  await fs.rm(dir, { recursive: true, force: true });
});

test('multi-class image folder: sorted class names, labels, extensions, seeded order', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-folder-'));
  const colours: Record<string, [number, number, number]> = { zebra: [250, 250, 250], apple: [200, 10, 10], mango: [240, 180, 20] };
  let n = 0;
  for (const [cls, rgb] of Object.entries(colours)) {
    await fs.mkdir(path.join(root, cls, 'sub'), { recursive: true });
    const img = sharp({ create: { width: 9, height: 7, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
    await img
      .clone()
      .png()
      .toFile(path.join(root, cls, `a${n++}.PNG`));
    await img
      .clone()
      .webp({ lossless: true })
      .toFile(path.join(root, cls, `b${n++}.webp`));
    await img
      .clone()
      .png()
      .toFile(path.join(root, cls, 'sub', `c${n++}.png`));
    await fs.writeFile(path.join(root, cls, 'notes.txt'), 'not an image');
  }
  await fs.writeFile(path.join(root, 'stray.png'), 'in no class');
  const opts = {
    root,
    imageSize: [5, 5] as [number, number],
    batchSize: 4,
    splits: ['train[:6]', 'train[6:]'] as [string, string],
    seed: 3,
    cacheDir: path.join(root, '.cache'),
    progress: false,
  };
  const { train, validation, info } = await openImageFolder(opts);
  assert.deepEqual(info.classNames, ['apple', 'mango', 'zebra']);
  assert.equal(info.examples, 9);
  assert.deepEqual(info.splits, { train: 6, validation: 3 });
  assert.equal(train.size + validation.size, 9);
  for (const ds of [train, validation]) {
    for (const b of await collect(ds)) {
      b.keys!.forEach((key, i) => {
        const cls = key.split('/')[0]!;
        assert.equal(b.y[i], info.classNames.indexOf(cls), key);
        // Solid colours survive the resize exactly.
        assert.deepEqual([...b.x.subarray(i * 75, i * 75 + 3)], colours[cls], key);
      });
    }
  }
  // Same seed, same order; another seed, another order.
  const again = await openImageFolder(opts);
  assert.deepEqual(again.train.keys, train.keys);
  const other = await openImageFolder({ ...opts, seed: 4 });
  assert.notDeepEqual([...other.train.keys, ...other.validation.keys], [...train.keys, ...validation.keys]);
  await assert.rejects(openImageFolder({ ...opts, root: path.join(root, 'apple') }), /class folder/);
  await fs.rm(root, { recursive: true, force: true });
});

test('bad options are refused with the name of the option', async () => {
  const pets = await sharedPetImages({ perClass: PER_CLASS, broken: true });
  await assert.rejects(openCatsVsDogs({ dataDir: pets, imageSize: [0, 10], batchSize: 4 }), /imageSize height must be a positive integer/);
  await assert.rejects(openCatsVsDogs({ dataDir: pets, imageSize: [10, 10], batchSize: 0 }), /batchSize must be a positive integer/);
  await assert.rejects(openCatsVsDogs({ dataDir: pets, imageSize: [10, 10], batchSize: 2, limit: -1 }), /limit must be a positive integer/);
});
