/**
 * `transferlab cache list|clear`: entries made by the real decoded-image cache from generated
 * folders, sizes checked against a du-like sum of their files, staleness when a source photo
 * changes, --older-than on the last use (touched on every open), and an entry being filled kept.
 */

import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { ensureDecodedCache } from '../lib/data/decoded-cache.js';
import { FolderSource } from '../lib/data/folder-source.js';
import { describeRun, runCli, withTempDir } from './helpers/transfer-helpers.js';

interface Listed {
  kind: string;
  path: string;
  bytes: number;
  source?: string;
  imageSize?: [number, number];
  lastUsed: string;
  state: string;
  stale?: string;
}

async function photo(file: string, shade: number): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await sharp({ create: { width: 6, height: 5, channels: 3, background: { r: shade, g: 255 - shade, b: 9 } } })
    .png()
    .toFile(file);
}

/** A two-class folder decoded into the cache; returns the entry's folder. */
async function decodedEntry(cacheRoot: string, source: string): Promise<string> {
  await photo(path.join(source, 'Cat', '1.png'), 10);
  await photo(path.join(source, 'Dog', '2.png'), 200);
  return decode(cacheRoot, source);
}

async function decode(cacheRoot: string, source: string): Promise<string> {
  const opened = await ensureDecodedCache({
    cacheRoot,
    datasetName: path.basename(source),
    splitLabel: 'train',
    height: 8,
    width: 8,
    items: [
      { key: 'c1', name: 'Cat/1.png', label: 0 },
      { key: 'd2', name: 'Dog/2.png', label: 1 },
    ],
    source: new FolderSource(source),
    progress: false,
  });
  return path.dirname(opened.pixelsPath);
}

/** What `du --apparent-size -b` would add up: every file below `dir`. */
async function du(dir: string): Promise<number> {
  let sum = 0;
  for (const d of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, d.name);
    sum += d.isDirectory() ? await du(full) : (await fs.stat(full)).size;
  }
  return sum;
}

async function list(root: string, ...flags: string[]): Promise<Listed[]> {
  const r = await runCli(['cache', 'list', '--json', '--cache-dir', root, ...flags], { cacheDir: root });
  assert.equal(r.code, 0, describeRun(r));
  return JSON.parse(r.stdout) as Listed[];
}

const exists = (p: string) =>
  fs.access(p).then(
    () => true,
    () => false,
  );

test('cache list and clear: sizes, sources, staleness, --older-than, and an entry being filled kept', { timeout: 120_000 }, async () => {
  await withTempDir('cache-cli', async (dir) => {
    const root = path.join(dir, 'cache');
    const a = await decodedEntry(root, path.join(dir, 'src-a'));
    const b = await decodedEntry(root, path.join(dir, 'src-b'));
    const locked = await decodedEntry(root, path.join(dir, 'src-c'));
    await fs.writeFile(path.join(locked, 'fill.lock'), String(process.pid)); // this process is alive: a fill in progress
    const download = path.join(root, 'downloads', 'weights.h5');
    await fs.mkdir(path.dirname(download), { recursive: true });
    await fs.writeFile(download, Buffer.alloc(1234, 7));
    await fs.writeFile(`${download}.verified.json`, '{"size":1234}');

    const all = await list(root);
    assert.deepEqual(
      all.map((e) => [e.kind, e.path, e.state]),
      [
        ['decoded', a, 'ready'],
        ['decoded', b, 'ready'],
        ['decoded', locked, 'filling'],
        ['downloads', download, 'ready'],
      ],
    );
    for (const e of all.slice(0, 3)) assert.equal(e.bytes, await du(e.path), e.path);
    assert.equal(all[3]!.bytes, 1234 + '{"size":1234}'.length);
    assert.equal(all[0]!.source, path.join(dir, 'src-a'));
    assert.deepEqual(all[0]!.imageSize, [8, 8]);
    assert.deepEqual(await list(root, '--stale'), []);

    // A changed photo makes the entry decoded from it stale, and only that one.
    await photo(path.join(dir, 'src-a', 'Cat', '1.png'), 99);
    const future = new Date(Date.now() + 5000);
    await fs.utimes(path.join(dir, 'src-a', 'Cat', '1.png'), future, future);
    const stale = await list(root, '--stale');
    assert.deepEqual(
      stale.map((e) => e.path),
      [a],
    );
    assert.match(stale[0]!.stale!, /src-a\/Cat\/1\.png changed/);
    const human = await runCli(['cache', 'list', '--cache-dir', root], { cacheDir: root });
    assert.match(human.stdout, /stale: .*src-a\/Cat\/1\.png changed/);
    assert.match(human.stdout, /^kind\s+size\s+last used\s+state\s+made from\s+entry$/m);

    const aBytes = await du(a);
    const clearStale = await runCli(['cache', 'clear', '--stale', '--cache-dir', root], { cacheDir: root });
    assert.equal(clearStale.code, 0, describeRun(clearStale));
    assert.match(clearStale.stdout, new RegExp(`freed .* \\(${aBytes} bytes\\) in 1 entry`));
    assert.equal(await exists(a), false);
    assert.equal(await exists(b), true);

    // --older-than reads the last use, which every open of the entry renews.
    const old = new Date(Date.now() - 10 * 86_400_000);
    await fs.utimes(path.join(b, 'last-used'), old, old);
    assert.deepEqual(
      (await list(root, '--older-than', '7d')).map((e) => e.path),
      [b],
    );
    await decode(root, path.join(dir, 'src-b'));
    assert.deepEqual(await list(root, '--older-than', '7d'), [], 'reading the entry renewed its last use');
    await fs.utimes(path.join(b, 'last-used'), old, old);
    const bBytes = await du(b);
    const clearOld = await runCli(['cache', 'clear', '--older-than', '7d', '--cache-dir', root], { cacheDir: root });
    assert.match(clearOld.stdout, new RegExp(`freed .* \\(${bBytes} bytes\\) in 1 entry`), describeRun(clearOld));
    assert.equal(await exists(b), false);

    // Everything else: the download goes, the entry being filled stays whole.
    const lockedFiles = (await fs.readdir(locked)).sort();
    const clearAll = await runCli(['cache', 'clear', '--cache-dir', root], { cacheDir: root });
    assert.equal(clearAll.code, 0, describeRun(clearAll));
    assert.match(clearAll.stdout, new RegExp(`kept ${locked.replace(/[.]/g, '\\.')}: being filled`));
    assert.match(clearAll.stdout, new RegExp(`freed .* \\(${1234 + 13} bytes\\) in 1 entry`));
    assert.deepEqual((await fs.readdir(locked)).sort(), lockedFiles);
    assert.deepEqual(await fs.readdir(path.join(root, 'downloads')), []);

    const bad = await runCli(['cache', 'clear', '--older-than', '7 days', '--cache-dir', root], { cacheDir: root });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--older-than '7 days' is not a duration: give a number and a unit, e\.g\. 90s/);
  });
});
