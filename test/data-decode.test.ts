import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { DecodeError, decodeImage, decodeImageFile, hasJpegEnd, thumbnailJpeg } from '../lib/data/decode.js';
import { needsPetImages, petImagesDir } from './helpers/paths.js';
import { type BrokenKind, brokenFiles, sharedPetImages } from './helpers/pet-images.js';

const PER_CLASS = 30;
const pets = await sharedPetImages({ perClass: PER_CLASS, broken: true });
const file = (rel: string) => path.join(pets, rel);
/** The generated file of a broken kind, e.g. `Cat/34.jpg` for the CMYK JPEG. */
const broken = (kind: BrokenKind, cls?: 'Cat' | 'Dog') =>
  brokenFiles(PER_CLASS).find((f) => f.kind === kind && (cls === undefined || f.cls === cls))!.rel;

/** Channel `c` of an RGB image as a flat array. */
const channel = (px: Uint8Array, c: number) => Array.from(px.filter((_, i) => i % 3 === c));

test('upscaling 2x2 -> 4x4 matches TF bilinear with half-pixel centres (computed by hand)', async () => {
  const v = [0, 100, 200, 40];
  const raw = Buffer.from(v.flatMap((x) => [x, 255 - x, 7]));
  const png = await sharp(raw, { raw: { width: 2, height: 2, channels: 3 } })
    .png()
    .toBuffer();
  const out = await decodeImage(png, 4, 4);
  // Source x of output column j is (j + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped at the edges):
  // row 0 = [0, 25, 75, 100], row 3 = [200, 160, 80, 40], rows 1 and 2 mix them 3:1 and 1:3.
  const expected = [0, 25, 75, 100, 50, 58.75, 76.25, 85, 150, 126.25, 78.75, 55, 200, 160, 80, 40].map(Math.round);
  assert.deepEqual(channel(out, 0), expected);
  assert.deepEqual(
    channel(out, 1),
    expected.map((_x, i) => Math.round(255 - [0, 25, 75, 100, 50, 58.75, 76.25, 85, 150, 126.25, 78.75, 55, 200, 160, 80, 40][i]!)),
  );
  assert.deepEqual(channel(out, 2), new Array(16).fill(7));
});

test('downscaling 4x4 -> 2x2 samples at half-pixel centres without antialiasing (TF), not libvips', async () => {
  const raw = Buffer.from(Array.from({ length: 16 }, (_, i) => [i * 16, i * 16, i * 16]).flat());
  const png = await sharp(raw, { raw: { width: 4, height: 4, channels: 3 } })
    .png()
    .toBuffer();
  const out = await decodeImage(png, 2, 2);
  // Output (r, c) sits at source (2r + 0.5, 2c + 0.5): the mean of a 2x2 block, e.g. (0+16+64+80)/4 = 40.
  assert.deepEqual(channel(out, 0), [40, 72, 168, 200]);
});

test('non-square resize ignores the aspect ratio and always gives H x W x 3', async () => {
  const out = await decodeImageFile(file('Cat/1.jpg'), 30, 70);
  assert.equal(out.length, 30 * 70 * 3);
});

test('the generated broken files are what they claim to be', async () => {
  const meta = async (kind: BrokenKind) => sharp(await fs.readFile(file(broken(kind))), { limitInputPixels: false }).metadata();
  assert.equal((await fs.stat(file(broken('empty')))).size, 0);
  for (const [kind, format] of [
    ['png', 'png'],
    ['gif', 'gif'],
    ['webp', 'webp'],
    ['tiff', 'tiff'],
    ['cmyk', 'jpeg'],
    ['greyscale', 'jpeg'],
  ] as const) {
    assert.equal((await meta(kind)).format, format, kind);
  }
  assert.equal((await meta('cmyk')).space, 'cmyk');
  assert.equal((await meta('greyscale')).channels, 1);
  assert.deepEqual([(await meta('huge-jpeg')).width, (await meta('huge-jpeg')).height], [12000, 12000]);
  assert.deepEqual([(await meta('pixel-bomb')).width, (await meta('pixel-bomb')).height], [20000, 20000]);
  const exif = await fs.readFile(file(broken('exif-no-jfif')));
  assert.deepEqual([...exif.subarray(0, 4)], [0xff, 0xd8, 0xff, 0xe1]);
  assert.equal(exif.toString('latin1', 6, 10), 'Exif');
  assert.equal(exif.indexOf('JFIF'), -1);
  const whole = await fs.readFile(file('Dog/1.jpg'));
  assert.equal(whole.toString('latin1', 6, 10), 'JFIF');
  assert.equal(hasJpegEnd(await fs.readFile(file(broken('no-eoi')))), false);
});

test('every generated broken file decodes or is refused as its manifest says', async () => {
  for (const f of brokenFiles(PER_CLASS)) {
    const outcome = await decodeImageFile(file(f.rel), 24, 24).then(
      (px) => px.length === 24 * 24 * 3,
      (e: unknown) => {
        assert.ok(e instanceof DecodeError, `${f.rel}: ${String(e)}`);
        assert.ok(e.message.startsWith(file(f.rel)), `the error names the file: ${e.message}`);
        return false;
      },
    );
    assert.equal(outcome, f.decodes, `${f.kind} (${f.rel})`);
  }
});

test('broken files of the README table', async (t) => {
  const ok = async (rel: string) => {
    const px = await decodeImageFile(file(rel), 24, 24);
    assert.equal(px.length, 24 * 24 * 3, rel);
    return px;
  };
  await t.test('an empty file is refused', async () => {
    const rel = broken('empty');
    await assert.rejects(
      decodeImageFile(file(rel), 24, 24),
      (e: unknown) => e instanceof DecodeError && e.message === `${file(rel)}: empty file (0 bytes)`,
    );
  });
  await t.test('PNG, GIF, WebP and TIFF data named .jpg decode', async () => {
    for (const kind of ['png', 'gif', 'webp', 'tiff'] as const) await ok(broken(kind));
  });
  await t.test('BMP named .jpg decodes and matches its own pixels', async () => {
    const rel = broken('bmp');
    const px = await ok(rel);
    const bytes = await fs.readFile(file(rel));
    assert.equal(bytes.toString('latin1', 0, 2), 'BM');
    // Independent read of one pixel of a bottom-up 24-bit BMP: the top-left output pixel of a
    // 1x1 resize is not a plain pixel, so compare a full-size decode instead.
    const width = bytes.readInt32LE(18);
    const height = bytes.readInt32LE(22);
    const full = await decodeImage(bytes, Math.abs(height), width);
    const stride = Math.ceil((24 * width) / 32) * 4;
    const offset = bytes.readUInt32LE(10) + (Math.abs(height) - 1) * stride; // top row is stored last
    assert.deepEqual([...full.subarray(0, 3)], [bytes[offset + 2], bytes[offset + 1], bytes[offset]]);
    assert.ok(px.some((v) => v > 0));
  });
  await t.test('CMYK becomes RGB', async () => {
    const px = await ok(broken('cmyk'));
    assert.ok(
      channel(px, 0).some((r, i) => r !== channel(px, 2)[i]),
      'a colour photo has R != B somewhere',
    );
  });
  await t.test('no EOI: decodes like the same data with the EOI added', async () => {
    const rel = broken('no-eoi');
    const bytes = await fs.readFile(file(rel));
    assert.equal(hasJpegEnd(bytes), false);
    const px = await ok(rel);
    const fixed = await decodeImage(Buffer.concat([bytes, Buffer.from([0xff, 0xd9])]), 24, 24);
    assert.deepEqual(px, fixed);
  });
  await t.test('a 400 Mpx PNG is refused as a pixel bomb', async () => {
    await assert.rejects(decodeImageFile(file(broken('pixel-bomb')), 24, 24), /20000x20000 .*exceeds .*limitInputPixels/);
  });
  await t.test('a JPEG cut to 40% is reported as truncated', async () => {
    for (let i = 0; i < 3; i++) await assert.rejects(decodeImageFile(file(broken('cut-short')), 24, 24), /truncated JPEG/);
  });
  await t.test('Exif without JFIF decodes', async () => {
    await ok(broken('exif-no-jfif'));
  });
  await t.test('greyscale becomes 3 equal channels', async () => {
    const px = await ok(broken('greyscale'));
    assert.deepEqual(channel(px, 0), channel(px, 1));
    assert.deepEqual(channel(px, 0), channel(px, 2));
    assert.ok(
      channel(px, 0).some((v, _i, a) => v !== a[0]),
      'not a flat image',
    );
  });
  await t.test('12000x12000 decodes with bounded memory', async () => {
    const base = process.memoryUsage().rss;
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss - base)), 1);
    let px: Uint8Array;
    try {
      px = await decodeImageFile(file(broken('huge-jpeg')), 300, 300);
    } finally {
      // Cleared on failure too: a live interval keeps the test process from ever exiting.
      clearInterval(timer);
    }
    assert.equal(px.length, 300 * 300 * 3);
    // A full decode needs 432 MB for the RGB pixels alone.
    assert.ok(peak < 200e6, `peak RSS growth ${(peak / 1e6).toFixed(0)} MB`);
  });
  await t.test('Thumbs.db is not an image', async () => {
    await assert.rejects(decodeImageFile(file('Cat/Thumbs.db'), 24, 24), /not a readable image/);
  });
});

test('a missing, dangling or folder path is an error naming it, never a hang', { timeout: 60_000 }, async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-unreadable-'));
  try {
    const missing = path.join(dir, 'missing.jpg');
    const folder = path.join(dir, 'folder.jpg');
    const dangling = path.join(dir, 'dangling.jpg');
    await fs.mkdir(folder);
    await fs.symlink(path.join(dir, 'nowhere.jpg'), dangling);
    const expect = [
      [missing, /no such file \(ENOENT\)/],
      [folder, /it is a folder, not a file \(EISDIR\)/],
      [dangling, /no such file \(ENOENT\)/],
    ] as const;
    for (const [p, why] of expect) {
      for (const attempt of [() => decodeImageFile(p, 8, 8), () => thumbnailJpeg(p, 8)]) {
        await assert.rejects(attempt, (e: Error) => e.message.includes(`Cannot read image ${p}: `) && why.test(e.message));
      }
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('real PetImages: the README table of broken files', { skip: needsPetImages }, async () => {
  const real = (rel: string) => path.join(petImagesDir!, rel);
  const decodes = [
    'Cat/2502.jpg',
    'Cat/2503.jpg',
    'Cat/2504.jpg',
    'Cat/2505.jpg',
    'Dog/2502.jpg',
    'Dog/2503.jpg',
    'Dog/2504.jpg',
    'Dog/2505.jpg',
  ];
  for (const rel of decodes) assert.equal((await decodeImageFile(real(rel), 24, 24)).length, 24 * 24 * 3, rel);
  await assert.rejects(decodeImageFile(real('Cat/2501.jpg'), 24, 24), /Cat\/2501\.jpg: empty file/);
  await assert.rejects(decodeImageFile(real('Cat/2506.jpg'), 24, 24), /20000x20000 .*exceeds .*limitInputPixels/);
  await assert.rejects(decodeImageFile(real('Dog/2501.jpg'), 24, 24), /truncated JPEG/);
  const grey = await decodeImageFile(real('Dog/2504.jpg'), 24, 24);
  assert.deepEqual(channel(grey, 0), channel(grey, 2));
});

test('a JPEG cut short is refused; the same JPEG with only its EOI removed is accepted', async () => {
  const bytes = await fs.readFile(file('Dog/10.jpg'));
  assert.equal(hasJpegEnd(bytes), true);
  const whole = await decodeImage(bytes, 32, 32);
  const noEoi = bytes.subarray(0, bytes.lastIndexOf(Buffer.from([0xff, 0xd9])));
  assert.deepEqual(await decodeImage(noEoi, 32, 32), whole);
  await assert.rejects(decodeImage(bytes.subarray(0, Math.floor(bytes.length * 0.6)), 32, 32), /truncated JPEG/);
});

test('alpha is dropped, not composited', async () => {
  const raw = Buffer.from([10, 20, 30, 0, 10, 20, 30, 0, 10, 20, 30, 0, 10, 20, 30, 0]);
  const png = await sharp(raw, { raw: { width: 2, height: 2, channels: 4 } })
    .png()
    .toBuffer();
  assert.deepEqual([...(await decodeImage(png, 1, 1))], [10, 20, 30]);
});

test('thumbnailJpeg makes a small JPEG from a file path', async () => {
  const thumb = await thumbnailJpeg(file(broken('huge-jpeg')), 64);
  const meta = await sharp(thumb).metadata();
  assert.equal(meta.format, 'jpeg');
  assert.equal(Math.max(meta.width!, meta.height!), 64);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-thumb-'));
  await assert.rejects(thumbnailJpeg(path.join(dir, 'missing.jpg'), 64), /missing\.jpg: no such file \(ENOENT\)/);
  await fs.rm(dir, { recursive: true, force: true });
});
