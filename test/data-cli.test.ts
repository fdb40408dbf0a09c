import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dataCommand } from '../lib/cli/commands/data.js';
import { petImagesDir } from './helpers/paths.js';

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = { code: 0, out: '', err: '' };
  r.code = await dataCommand(argv, { stdout: { write: (s: string) => (r.out += s) }, stderr: { write: (s: string) => (r.err += s) } });
  return r;
}

test('data info --json gives the tfds figures', async () => {
  const { code, out } = await capture(['info', '--data-dir', petImagesDir, '--json']);
  assert.equal(code, 0);
  const info = JSON.parse(out);
  assert.equal(info.files, 5013);
  assert.equal(info.skippedByName, 2);
  assert.equal(info.skippedByJfif, 7);
  assert.equal(info.examples, 5004);
  assert.deepEqual(info.splits, { train: 4003, validation: 1001 });
  assert.deepEqual(info.firstKeys, ['PetImages/Dog/2390.jpg', 'PetImages/Cat/2407.jpg', 'PetImages/Dog/475.jpg', 'PetImages/Dog/819.jpg', 'PetImages/Dog/2118.jpg']);
});

test('data info human output and --check-decode on a limited set', async () => {
  const { code, out } = await capture(['info', '--data-dir', petImagesDir, '--limit', '40']);
  assert.equal(code, 0);
  assert.match(out, /files seen\s+5,013/);
  assert.match(out, /train\[:80%\]\s+32 /);
  assert.doesNotMatch(out, /decode check/);
  const checked = await capture(['info', '--data-dir', petImagesDir, '--limit', '40', '--check-decode', '--json']);
  assert.deepEqual(JSON.parse(checked.out).decodeFailures, []);
});

test('usage errors exit 2 and teach; --help exits 0', async () => {
  assert.equal((await capture(['--help'])).code, 0);
  assert.match((await capture(['info', '--help'])).out, /--archive PATH/);
  const none = await capture(['info']);
  assert.equal(none.code, 2);
  assert.match(none.err, /exactly one of --data-dir, --archive or --image-folder/);
  assert.equal((await capture(['info', '--data-dir', petImagesDir, '--splits', 'train[:80%]'])).code, 2);
  const missing = await capture(['info', '--archive', '/nonexistent/k.zip']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /Archive not found: \/nonexistent\/k\.zip/);
});
