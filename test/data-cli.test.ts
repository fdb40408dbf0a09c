import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { dataCommand } from '../lib/cli/commands/data.js';
import { needsPetImages, petImagesDir } from './helpers/paths.js';
import { brokenFiles, sharedPetImages } from './helpers/pet-images.js';
import { referenceFigures } from './helpers/tfds-reference.js';

const PER_CLASS = 30;
const pets = await sharedPetImages({ perClass: PER_CLASS, broken: true });

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = { code: 0, out: '', err: '' };
  r.code = await dataCommand(argv, { stdout: { write: (s: string) => (r.out += s) }, stderr: { write: (s: string) => (r.err += s) } });
  return r;
}

test('data info --json gives the tfds figures, equal to an independent reading of the rules', async () => {
  const ref = referenceFigures(pets);
  const { code, out } = await capture(['info', '--data-dir', pets, '--json']);
  assert.equal(code, 0);
  const info = JSON.parse(out);
  assert.equal(info.files, ref.files);
  assert.equal(info.skippedByName, ref.skippedByName);
  assert.equal(info.skippedByJfif, ref.skippedByJfif);
  assert.equal(info.examples, ref.examples);
  assert.deepEqual(info.splits, ref.splits);
  assert.equal(info.classCounts.train[1], ref.dogsInTrain);
  assert.deepEqual(info.firstKeys, ref.firstKeys);
});

test('data info human output, and --check-decode lists exactly the files that cannot be decoded', async () => {
  const ref = referenceFigures(pets);
  const { code, out } = await capture(['info', '--data-dir', pets, '--limit', '40']);
  assert.equal(code, 0);
  assert.match(out, new RegExp(`files seen\\s+${ref.files}\\b`));
  assert.match(out, /train\[:80%\]\s+32 /);
  assert.doesNotMatch(out, /decode check/);
  const failing = new Set(
    brokenFiles(PER_CLASS)
      .filter((f) => !f.decodes)
      .map((f) => `PetImages/${f.rel}`),
  );
  const expected = (keys: string[]) =>
    keys
      .filter((k) => failing.has(k))
      .map((k) => path.join(path.dirname(pets), k))
      .sort();
  const limited = await capture(['info', '--data-dir', pets, '--limit', '40', '--check-decode', '--json']);
  assert.deepEqual(
    JSON.parse(limited.out)
      .decodeFailures.map((f: { path: string }) => f.path)
      .sort(),
    expected(ref.ordered.slice(0, 40)),
  );
  const all = JSON.parse((await capture(['info', '--data-dir', pets, '--check-decode', '--json'])).out);
  const allExpected = expected(ref.ordered);
  assert.ok(allExpected.length > 0, 'the generated folder holds a kept file that cannot be decoded');
  assert.deepEqual(all.decodeFailures.map((f: { path: string }) => f.path).sort(), allExpected);
  assert.match(all.decodeFailures[0].reason, /truncated/);
});

test('real PetImages: data info gives the published figures', { skip: needsPetImages }, async () => {
  const { code, out } = await capture(['info', '--data-dir', petImagesDir!, '--json']);
  assert.equal(code, 0);
  const info = JSON.parse(out);
  assert.equal(info.files, 5013);
  assert.equal(info.skippedByName, 2);
  assert.equal(info.skippedByJfif, 7);
  assert.equal(info.examples, 5004);
  assert.deepEqual(info.splits, { train: 4003, validation: 1001 });
  assert.deepEqual(info.firstKeys, [
    'PetImages/Dog/2390.jpg',
    'PetImages/Cat/2407.jpg',
    'PetImages/Dog/475.jpg',
    'PetImages/Dog/819.jpg',
    'PetImages/Dog/2118.jpg',
  ]);
  const human = await capture(['info', '--data-dir', petImagesDir!, '--limit', '40']);
  assert.match(human.out, /files seen\s+5,013/);
});

test('usage errors exit 2 and teach; --help exits 0', async () => {
  assert.equal((await capture(['--help'])).code, 0);
  assert.match((await capture(['info', '--help'])).out, /--archive PATH/);
  const none = await capture(['info']);
  assert.equal(none.code, 2);
  assert.match(none.err, /exactly one of --data-dir, --archive or --image-folder/);
  assert.equal((await capture(['info', '--data-dir', pets, '--splits', 'train[:80%]'])).code, 2);
  const missing = await capture(['info', '--archive', '/nonexistent/k.zip']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /Archive not found: \/nonexistent\/k\.zip/);
});
