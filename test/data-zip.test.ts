import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import { inspectCatsVsDogs, openCatsVsDogs } from '../lib/data/cats-vs-dogs.js';
import { thumbnailJpeg } from '../lib/data/decode.js';
import { ZipSource } from '../lib/data/zip-source.js';
import { crc32 } from './helpers/crc32.js';
import { brokenFiles, sharedPetImages } from './helpers/pet-images.js';

// A minimal zip writer (deflate or store, no zip64), so tests need no extra package.
function makeZip(files: { name: string; data: Buffer; store?: boolean }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    const name = Buffer.from(f.name, 'utf8');
    const body = f.store ? f.data : deflateRawSync(f.data);
    const method = f.store ? 0 : 8;
    const crc = crc32(f.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(f.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(f.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

const PER_CLASS = 5;
const brokenRel = (kind: string) => brokenFiles(PER_CLASS).find((f) => f.kind === kind)!.rel;
/** Good photos plus PNG data named .jpg (fails the JFIF rule), a JPEG cut short and a greyscale one. */
const PICK = [
  'Cat/1.jpg',
  'Cat/2.jpg',
  'Cat/3.jpg',
  'Cat/4.jpg',
  'Cat/5.jpg',
  brokenRel('png'),
  'Dog/1.jpg',
  'Dog/2.jpg',
  'Dog/3.jpg',
  'Dog/4.jpg',
  brokenRel('cut-short'),
  brokenRel('greyscale'),
];

async function fixture(): Promise<{ dir: string; folder: string; zip: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-zip-'));
  const folder = path.join(dir, 'PetImages');
  const pets = await sharedPetImages({ perClass: PER_CLASS, broken: true });
  const files: { name: string; data: Buffer; store?: boolean }[] = [];
  for (const [i, rel] of PICK.entries()) {
    const data = await fs.readFile(path.join(pets, rel));
    await fs.mkdir(path.join(folder, path.dirname(rel)), { recursive: true });
    await fs.writeFile(path.join(folder, rel), data);
    files.push({ name: `PetImages/${rel}`, data, store: i % 2 === 0 });
  }
  const evil = await fs.readFile(path.join(pets, 'Cat/1.jpg'));
  files.push(
    { name: 'PetImages/', data: Buffer.alloc(0), store: true },
    { name: 'PetImages/Cat/Thumbs.db', data: Buffer.from('junk') },
    { name: '../evil.jpg', data: evil },
    { name: '../../PetImages/Cat/99.jpg', data: evil },
    { name: '/abs/PetImages/Cat/98.jpg', data: evil },
    { name: 'PetImages/Cat/../../../evil2.jpg', data: evil },
  );
  const zip = path.join(dir, 'kagglecatsanddogs_5340.zip');
  await fs.writeFile(zip, makeZip(files));
  return { dir, folder, zip };
}

test('zip source gives the same keys, labels, skips and order as the extracted folder', async () => {
  const { dir, folder, zip } = await fixture();
  const a = await inspectCatsVsDogs({ dataDir: folder });
  const b = await inspectCatsVsDogs({ archive: zip });
  await a.source.close();
  await b.source.close();
  assert.equal(a.info.files, PICK.length);
  assert.equal(a.info.skippedByJfif, 1); // the PNG data
  assert.equal(a.info.examples, PICK.length - 1);
  assert.deepEqual(
    [...b.parts.train, ...b.parts.validation].map(({ key, label }) => [key, label]),
    [...a.parts.train, ...a.parts.validation].map(({ key, label }) => [key, label]),
  );
  assert.equal(b.info.skippedByJfif, a.info.skippedByJfif);
  // The zip has 6 extra non-directory entries, all dropped by the name rule.
  assert.equal(b.info.files, a.info.files + 5);
  assert.equal(b.info.skippedByName, 5);
  await fs.rm(dir, { recursive: true, force: true });
});

test('zip-slip names are harmless: never matched, never written', async () => {
  const { dir, zip } = await fixture();
  const source = new ZipSource(zip);
  const names = (await source.entries()).map((e) => e.name);
  assert.ok(names.includes('../evil.jpg'), 'the archive is still readable despite the name');
  const cache = path.join(dir, 'cache');
  const opened = await openCatsVsDogs({ archive: zip, imageSize: [16, 16], batchSize: 4, cacheDir: cache, progress: false });
  const keys = [...opened.train.keys, ...opened.validation.keys];
  assert.ok(keys.every((k) => /^PetImages\/(Cat|Dog)\/\d+\.jpg$/.test(k)));
  assert.ok(!keys.some((k) => k.includes('evil') || k.endsWith('/99.jpg') || k.endsWith('/98.jpg')));
  // Inside the temporary folder only the zip, the folder and the cache; nothing named by an entry outside it.
  assert.deepEqual((await fs.readdir(dir)).sort(), ['PetImages', 'cache', 'kagglecatsanddogs_5340.zip']);
  for (const p of ['../evil.jpg', '../evil2.jpg', '../../evil2.jpg', '../../PetImages/Cat/99.jpg', 'abs']) {
    await assert.rejects(fs.access(path.join(dir, p)), p);
  }
  // Pixels from the archive equal pixels from the folder.
  const fromFolder = await openCatsVsDogs({
    dataDir: path.join(dir, 'PetImages'),
    imageSize: [16, 16],
    batchSize: 4,
    cacheDir: cache,
    progress: false,
  });
  assert.deepEqual(fromFolder.train.keys, opened.train.keys);
  const first = async (ds: typeof opened.train) => {
    for await (const b of ds.batches()) return b;
    throw new Error('empty');
  };
  assert.deepEqual((await first(fromFolder.train)).x, (await first(opened.train)).x);
  // Thumbnails reopen the archive entry by reference.
  const ref = opened.train.sourceRef(opened.train.keys[0]!);
  assert.equal(ref?.kind, 'zip');
  const thumb = await thumbnailJpeg(ref!, 32);
  assert.deepEqual([...thumb.subarray(0, 2)], [0xff, 0xd8]);
  await source.close();
  await fs.rm(dir, { recursive: true, force: true });
});

test('a file that is not a zip is refused with a clear message', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-zip-'));
  const bad = path.join(dir, 'partial.zip');
  await fs.writeFile(bad, Buffer.from('not a zip at all'));
  await assert.rejects(inspectCatsVsDogs({ archive: bad }), /Cannot read .*partial\.zip as a zip archive/);
  await fs.rm(dir, { recursive: true, force: true });
});
