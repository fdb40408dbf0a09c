/**
 * Image folders and `data info` on small generated images: hidden or empty folders are not classes,
 * fewer than two classes is an error, overlapping splits are refused, and `--check-decode`
 * attributes failures and libvips warnings to their own files.
 */

import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { dataCommand } from '../lib/cli/commands/data.js';
import { scanImageFolder } from '../lib/data/image-folder.js';

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = { code: 0, out: '', err: '' };
  r.code = await dataCommand(argv, { stdout: { write: (s: string) => (r.out += s) }, stderr: { write: (s: string) => (r.err += s) } });
  return r;
}

const jpeg = (r: number) =>
  sharp({ create: { width: 12, height: 10, channels: 3, background: { r, g: 40, b: 90 } } })
    .jpeg()
    .toBuffer();

/** A JFIF APP0 segment with the given version: libjpeg warns on a major version other than 1. */
function withJfif(body: Buffer, major: number, minor: number): Buffer {
  const app0 = Buffer.from([0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, major, minor, 0, 0, 1, 0, 1, 0, 0]);
  return Buffer.concat([body.subarray(0, 2), app0, body.subarray(2)]);
}

async function folder(t: { after: (fn: () => Promise<void>) => void }, layout: Record<string, number>): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tl-classes-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  for (const [dir, count] of Object.entries(layout)) {
    await fs.mkdir(path.join(root, dir), { recursive: true });
    for (let i = 0; i < count; i++) await fs.writeFile(path.join(root, dir, `${i}.jpg`), await jpeg(10 * i));
  }
  return root;
}

test('hidden folders and folders without images are not classes, and data info says so', async (t) => {
  const root = await folder(t, { cat: 3, dog: 4, '.ipynb_checkpoints': 2, empty: 0 });
  await fs.writeFile(path.join(root, 'empty', 'notes.txt'), 'no images here');
  const scan = await scanImageFolder(root);
  assert.deepEqual(scan.classNames, ['cat', 'dog']);
  assert.equal(scan.ordered.length, 7);
  assert.ok(scan.ordered.every((e) => e.key.startsWith('cat/') || e.key.startsWith('dog/')));
  assert.deepEqual(scan.ignored, [
    { folder: '.ipynb_checkpoints', reason: 'hidden' },
    { folder: 'empty', reason: 'no image files' },
  ]);
  const info = await capture(['info', '--image-folder', root]);
  assert.equal(info.code, 0, info.err);
  assert.match(info.out, /classes: 0=cat, 1=dog\n/);
  assert.match(info.out, /not classes: \.ipynb_checkpoints\/ \(hidden\), empty\/ \(no image files\)/);
  assert.doesNotMatch(info.out, /JFIF/, 'the JFIF rule belongs to cats_vs_dogs, not image folders');
});

test('fewer than two classes with images is an error naming the folder and what was found', async (t) => {
  const root = await folder(t, { cat: 3, dog: 0, '.ipynb_checkpoints': 1 });
  await assert.rejects(scanImageFolder(root), (error: Error) => {
    assert.match(error.message, new RegExp(`${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} needs at least two class folders with images`));
    assert.match(error.message, /found 1: cat\/ \(3 images\)/);
    assert.match(error.message, /not classes: \.ipynb_checkpoints\/ \(hidden\), dog\/ \(no image files\)/);
    return true;
  });
  const r = await capture(['info', '--image-folder', root]);
  assert.equal(r.code, 1);
  assert.match(r.err, /found 1: cat\/ \(3 images\)/);
});

test('overlapping --splits are refused, naming both', async (t) => {
  const root = await folder(t, { a: 5, b: 5 });
  const r = await capture(['info', '--image-folder', root, '--splits', 'train[:80%],train[50%:]']);
  assert.equal(r.code, 1);
  assert.match(
    r.err,
    /the splits "train\[:80%\]" \(examples 0-7\) and "train\[50%:\]" \(examples 5-9\) of 10 examples overlap in 3 example\(s\)/,
  );
  const ok = await capture(['info', '--image-folder', root, '--splits', 'train[:80%],train[80%:]', '--json']);
  assert.equal(ok.code, 0, ok.err);
  assert.deepEqual(JSON.parse(ok.out).splits, { train: 8, validation: 2 });
});

test('--check-decode attributes each failure and each libvips warning to its own file, once, on one line', async (t) => {
  const root = await folder(t, { cat: 30, dog: 30 });
  const good = await jpeg(200);
  await fs.writeFile(path.join(root, 'cat', '15.jpg'), withJfif(good, 3, 9));
  await fs.writeFile(path.join(root, 'cat', '27.jpg'), Buffer.concat([withJfif(good, 1, 1).subarray(0, 20), Buffer.alloc(300, 7)]));
  await fs.writeFile(path.join(root, 'dog', '4.jpg'), Buffer.from('random bytes, not an image'));
  const r = await capture(['info', '--image-folder', root, '--check-decode', '--json']);
  assert.equal(r.code, 0, r.err);
  const info = JSON.parse(r.out) as {
    decodeFailures: { path: string; reason: string }[];
    decodeWarnings: { path: string; messages: string[] }[];
  };
  assert.deepEqual(info.decodeFailures.map((f) => path.relative(root, f.path)).sort(), ['cat/27.jpg', 'dog/4.jpg']);
  for (const f of info.decodeFailures) {
    assert.doesNotMatch(f.reason, /JFIF revision/, `${f.path}: another file's warning is not its reason`);
    assert.doesNotMatch(f.reason, /\n/, 'one line');
    const parts = f.reason.split('; ');
    assert.equal(new Set(parts).size, parts.length, `no repeated message in "${f.reason}"`);
  }
  assert.deepEqual(
    info.decodeWarnings.map((w) => path.relative(root, w.path)),
    ['cat/15.jpg'],
  );
  assert.deepEqual(info.decodeWarnings[0]!.messages, ['VipsJpeg: Warning: unknown JFIF revision number 3.09']);
  const text = await capture(['info', '--image-folder', root, '--check-decode']);
  assert.match(
    text.out,
    /decode warnings: 1 example\(s\) decode, with warnings from the image decoder:\n {2}\S+cat\/15\.jpg: VipsJpeg: Warning: unknown JFIF revision number 3\.09\n/,
  );
  assert.equal(text.err.match(/JFIF revision/g), null, 'nothing raw on stderr');
});
