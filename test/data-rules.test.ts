import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';
import { inspectCatsVsDogs } from '../lib/data/cats-vs-dogs.js';
import { CATS_VS_DOGS_NAME_RE, tfdsNormpath } from '../lib/data/cats-vs-dogs-scan.js';
import { hasJfifMarker } from '../lib/data/jfif.js';
import { seededShuffle } from '../lib/data/prng.js';
import { parseSplit, pythonRound, resolveSplit } from '../lib/data/split.js';
import { sortInTfdsOrder, tfdsHash } from '../lib/data/tfds-order.js';
import { needsPetImages, petImagesDir } from './helpers/paths.js';
import { brokenFiles, sharedPetImages } from './helpers/pet-images.js';
import { percentSlice, referenceFigures } from './helpers/tfds-reference.js';

test('pythonRound rounds half to even, like Python 3 round()', () => {
  // Values from Python: round(0.5)=0, round(1.5)=2, round(2.5)=2, round(-0.5)=0, round(-1.5)=-2, round(-2.5)=-2
  const cases: [number, number][] = [
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [3.5, 4],
    [-0.5, 0],
    [-1.5, -2],
    [-2.5, -2],
    [4003.2, 4003],
    [-1000.8, -1001],
    [2.4999, 2],
    [2.5001, 3],
  ];
  for (const [x, expected] of cases) assert.equal(pythonRound(x) + 0, expected, `round(${x})`);
});

test('percent boundaries use round(pct * n / 100) half to even, negatives from the end', () => {
  assert.deepEqual(resolveSplit('train[:80%]', 23262), { start: 0, end: 18610 });
  assert.deepEqual(resolveSplit('train[-20%:]', 23262), { start: 23262 - 4652, end: 23262 });
  // 50% of 5 = 2.5 -> 2 (even), 50% of 7 = 3.5 -> 4, 10% of 25 = 2.5 -> 2, 30% of 5 = 1.5 -> 2
  assert.equal(resolveSplit('train[:50%]', 5).end, 2);
  assert.equal(resolveSplit('train[:50%]', 7).end, 4);
  assert.equal(resolveSplit('train[:10%]', 25).end, 2);
  assert.equal(resolveSplit('train[:30%]', 5).end, 2);
  // -50% of 5: round(-2.5) = -2 -> starts at 3, so index 2 is in neither half, as in tfds
  assert.deepEqual(resolveSplit('train[-50%:]', 5), { start: 3, end: 5 });
  assert.deepEqual(resolveSplit('train[10%:20%]', 1000), { start: 100, end: 200 });
  assert.deepEqual(resolveSplit('train', 10), { start: 0, end: 10 });
  assert.deepEqual(resolveSplit('train[:3]', 10), { start: 0, end: 3 });
  assert.deepEqual(resolveSplit('train[2:5]', 10), { start: 2, end: 5 });
  assert.deepEqual(resolveSplit('train[-3:]', 10), { start: 7, end: 10 });
  assert.deepEqual(resolveSplit('train[5:2]', 10), { start: 5, end: 5 });
  assert.deepEqual(resolveSplit('train[:10%](pct1_dropremainder)', 1050), { start: 0, end: 100 });
});

test('bad split strings are refused with a message naming them', () => {
  assert.throws(() => parseSplit('test[:10%]'), /Unknown split "test"/);
  assert.throws(() => parseSplit('train[:10%:]'), /Invalid split "train\[:10%:\]"/);
  assert.throws(() => parseSplit('train[1:50%]'), /Mixed units/);
  assert.throws(() => parseSplit('train[:150%]'), /out of range/);
  assert.throws(() => resolveSplit('train[:20]', 10), /incompatible with 10 examples/);
});

test('tfds order compares md5("train" + key) as a 128-bit integer', () => {
  const keys = ['PetImages/Cat/0.jpg', 'PetImages/Dog/1.jpg', 'PetImages/Cat/10.jpg', 'PetImages/Dog/77.jpg', 'a', 'b'];
  const expected = keys
    .map((k) => ({
      k,
      v: BigInt(`0x${createHash('md5').update(`train${k}`).digest('hex')}`),
    }))
    .sort((a, b) => (a.v < b.v ? -1 : a.v > b.v ? 1 : 0))
    .map((x) => x.k);
  assert.deepEqual(
    sortInTfdsOrder(keys, (k) => k),
    expected,
  );
  assert.equal(tfdsHash('PetImages/Cat/0.jpg').length, 32);
});

test('name rule and tfds path normalisation', () => {
  assert.match('PetImages/Cat/12.jpg', CATS_VS_DOGS_NAME_RE);
  assert.match('PetImages\\Dog\\3.jpg', CATS_VS_DOGS_NAME_RE);
  for (const bad of [
    'PetImages/Cat/Thumbs.db',
    'PetImages/Cat/1.JPG',
    'PetImages/Cow/1.jpg',
    'x/PetImages/Cat/1.jpg',
    'PetImages/Cat/a1.jpg',
  ]) {
    assert.doesNotMatch(bad, CATS_VS_DOGS_NAME_RE, bad);
  }
  assert.equal(tfdsNormpath('../evil.jpg'), undefined);
  assert.equal(tfdsNormpath('/PetImages/Cat/1.jpg'), undefined);
  assert.equal(tfdsNormpath('PetImages/Cat/.1.jpg'), undefined);
  assert.equal(tfdsNormpath('PetImages/Dog/../Cat/3.jpg'), 'PetImages/Cat/3.jpg');
});

test('JFIF rule looks at the first 512 bytes only', () => {
  const at = (offset: number, length = 600): Uint8Array => {
    const b = Buffer.alloc(length);
    b.write('JFIF', offset, 'latin1');
    return b;
  };
  assert.equal(hasJfifMarker(at(6)), true);
  assert.equal(hasJfifMarker(at(508)), true); // ends at byte 511
  assert.equal(hasJfifMarker(at(509)), false); // straddles the window
  assert.equal(hasJfifMarker(Buffer.alloc(0)), false);
});

test('seeded shuffle is a deterministic permutation', () => {
  const xs = Array.from({ length: 50 }, (_, i) => i);
  const a = seededShuffle(xs, 7);
  assert.deepEqual(a, seededShuffle(xs, 7));
  assert.notDeepEqual(a, seededShuffle(xs, 8));
  assert.notDeepEqual(a, xs);
  assert.deepEqual(
    [...a].sort((p, q) => p - q),
    xs,
  );
});

/** lib/data's figures for a PetImages folder (given as itself and as its parent), with the given limit. */
async function libFigures(dataDir: string, limit?: number) {
  const { info, parts, source } = await inspectCatsVsDogs({ dataDir, limit });
  await source.close();
  return { info, parts };
}

test('generated PetImages: the tfds figures equal an independent reading of the rules', async () => {
  const perClass = 30;
  const pets = await sharedPetImages({ perClass, broken: true });
  const ref = referenceFigures(pets);
  // The reference itself agrees with what the generator says it wrote.
  const broken = brokenFiles(perClass);
  assert.equal(ref.files, 2 * perClass + broken.length);
  assert.equal(ref.skippedByName, broken.filter((f) => !f.keptByName).length);
  assert.equal(ref.skippedByJfif, broken.filter((f) => f.keptByName && !f.keptByJfif).length);
  assert.ok(ref.skippedByName > 0 && ref.skippedByJfif > 0 && ref.dogsInTrain > 0);
  for (const dataDir of [pets, path.dirname(pets)]) {
    const { info, parts } = await libFigures(dataDir);
    assert.equal(info.files, ref.files);
    assert.equal(info.skippedByName, ref.skippedByName);
    assert.equal(info.skippedByJfif, ref.skippedByJfif);
    assert.equal(info.examples, ref.examples);
    assert.deepEqual(info.splits, ref.splits);
    assert.equal(info.classCounts.train[1], ref.dogsInTrain);
    assert.deepEqual(info.classNames, ['cat', 'dog']);
    assert.deepEqual(info.firstKeys, ref.firstKeys);
    assert.deepEqual(info.firstKeysBySplit, ref.firstKeysBySplit);
    assert.deepEqual(
      [...parts.train, ...parts.validation].map((e) => e.key),
      ref.ordered,
    );
  }
});

test('generated PetImages: split sizes for several example counts', async () => {
  // 21 examples: 80% = 16.8 -> 17, -20% = -4.2 -> -4; 10: 8 and 2; 13: 10.4 -> 10, -2.6 -> -3.
  for (const limit of [21, 10, 13]) {
    const pets = await sharedPetImages({ perClass: 12, broken: false });
    const ref = referenceFigures(pets, limit);
    assert.equal(ref.examples, limit);
    const { info } = await libFigures(pets, limit);
    assert.deepEqual(info.splits, ref.splits);
    assert.deepEqual(info.firstKeysBySplit, ref.firstKeysBySplit);
  }
  assert.deepEqual(percentSlice(13, undefined, 80), [0, 10]);
  assert.deepEqual(percentSlice(13, -20, undefined), [10, 13]);
  // The reference rounds half to even, as Python does: -50% of 5 = -2.5 -> -2.
  assert.deepEqual(percentSlice(5, -50, undefined), [3, 5]);
});

test('limit keeps the first N in tfds order, before splitting', async () => {
  const pets = await sharedPetImages();
  const all = referenceFigures(pets);
  const { info, parts } = await libFigures(pets, 10);
  assert.equal(info.examples, 10);
  assert.deepEqual(info.splits, { train: 8, validation: 2 });
  assert.deepEqual(info.firstKeys, all.firstKeys);
  assert.deepEqual(
    [...parts.train, ...parts.validation].map((e) => e.key),
    all.ordered.slice(0, 10),
  );
  const second = all.ordered[1]!;
  assert.deepEqual(parts.train[1], { key: second, name: second, label: second.includes('/Dog/') ? 1 : 0 });
});

test('real PetImages: the published figures', { skip: needsPetImages }, async () => {
  const real = petImagesDir!;
  // The reference reading of the rules gives the published figures too.
  const ref = referenceFigures(real);
  assert.deepEqual(
    [ref.files, ref.skippedByName, ref.skippedByJfif, ref.examples, ref.splits.train, ref.splits.validation, ref.dogsInTrain],
    [5013, 2, 7, 5004, 4003, 1001, 1990],
  );
  for (const dataDir of [real, path.dirname(real)]) {
    const { info } = await libFigures(dataDir);
    assert.equal(info.files, 5013);
    assert.equal(info.skippedByName, 2);
    assert.equal(info.skippedByJfif, 7);
    assert.equal(info.examples, 5004);
    assert.deepEqual(info.splits, { train: 4003, validation: 1001 });
    assert.equal(info.classCounts.train[1], 1990);
    assert.deepEqual(info.firstKeys, [
      'PetImages/Dog/2390.jpg',
      'PetImages/Cat/2407.jpg',
      'PetImages/Dog/475.jpg',
      'PetImages/Dog/819.jpg',
      'PetImages/Dog/2118.jpg',
    ]);
    assert.deepEqual(info.firstKeysBySplit.validation, [
      'PetImages/Dog/1999.jpg',
      'PetImages/Dog/1670.jpg',
      'PetImages/Cat/2191.jpg',
      'PetImages/Dog/1688.jpg',
      'PetImages/Cat/1567.jpg',
    ]);
  }
  const { info } = await libFigures(real, 10);
  assert.deepEqual(info.splits, { train: 8, validation: 2 });
  assert.deepEqual(info.firstKeys, [
    'PetImages/Dog/2390.jpg',
    'PetImages/Cat/2407.jpg',
    'PetImages/Dog/475.jpg',
    'PetImages/Dog/819.jpg',
    'PetImages/Dog/2118.jpg',
  ]);
});

test('a missing or ambiguous source is refused, naming what to give', async () => {
  await assert.rejects(inspectCatsVsDogs({}), /give dataDir .* or archive/);
  await assert.rejects(inspectCatsVsDogs({ dataDir: '/nonexistent/x' }), /Data folder not found: \/nonexistent\/x/);
  await assert.rejects(inspectCatsVsDogs({ dataDir: await sharedPetImages(), archive: 'a.zip' }), /not both/);
  await assert.rejects(inspectCatsVsDogs({ archive: '/nonexistent/a.zip' }), /Archive not found/);
});
