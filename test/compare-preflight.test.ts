/**
 * `compare` checks everything it can before any model trains: unusable data (junk files, empty
 * class folders, one class), the transfer model's backbone layer and weights, the CNN's input
 * size. A run refused there exits non-zero, says why, and leaves no run folder behind.
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fromTfjs } from '../lib/applications/tfjs.js';
import { Rng } from './helpers/naive.js';
import { makePetImages } from './helpers/pet-images.js';
import { TINY_OUTPUT_LAYER, writeTinyBackbone } from './helpers/tiny-backbone.js';
import { type CliResult, describeRun, runCli, withTempDir } from './helpers/transfer-helpers.js';

const SMALL = ['--image-size', '96', '--epochs', '1', '--batch-size', '8'];

/** A JFIF APP0 segment (passes the tfds rule) followed by bytes that are no JPEG. */
function jfifGarbage(rng: Rng, n: number): Buffer {
  const head = Buffer.from([
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
  ]);
  return Buffer.concat([head, Buffer.from(rng.bytes(n))]);
}

/** The refusal every preflight failure shares: exit 1, nothing trained, no run folder. */
function assertRefused(r: CliResult, out: string, pattern: RegExp): void {
  assert.equal(r.code, 1, describeRun(r));
  assert.match(r.stderr, pattern, describeRun(r));
  assert.match(r.stderr, /no run folder was created/);
  assert.doesNotMatch(r.stdout, /== (CNN|TRANSFER) ==|Epoch 1\//, 'no model started');
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.ok(!existsSync(out), `no run folder at ${out}`);
}

test('a folder of undecodable files is refused before training, naming a file and the reason', { timeout: 120_000 }, async () => {
  await withTempDir('preflight-junk', async (dir) => {
    const rng = new Rng(5);
    for (const cls of ['Cat', 'Dog']) {
      await mkdir(path.join(dir, 'PetImages', cls), { recursive: true });
      for (let i = 1; i <= 10; i++) await writeFile(path.join(dir, 'PetImages', cls, `${i}.jpg`), jfifGarbage(rng, 300));
    }
    const out = path.join(dir, 'run');
    const r = await runCli(['compare', '--data-dir', dir, ...SMALL, '--models', 'cnn', '--out', out], {
      cacheDir: path.join(dir, 'cache'),
    });
    assertRefused(r, out, /none of \d+ sampled images .* could be decoded, e\.g\. .*PetImages\/(Cat|Dog)\/\d+\.jpg: /);
  });
});

test('files of random bytes and empty Cat/Dog folders: no usable examples, refused', { timeout: 120_000 }, async () => {
  await withTempDir('preflight-empty', async (dir) => {
    const rng = new Rng(6);
    const random = path.join(dir, 'random');
    for (const cls of ['Cat', 'Dog']) {
      await mkdir(path.join(random, 'PetImages', cls), { recursive: true });
      for (let i = 1; i <= 5; i++) await writeFile(path.join(random, 'PetImages', cls, `${i}.jpg`), Buffer.from(rng.bytes(400)));
    }
    const empty = path.join(dir, 'empty');
    for (const cls of ['Cat', 'Dog']) await mkdir(path.join(empty, 'PetImages', cls), { recursive: true });
    const out = path.join(dir, 'run');
    const a = await runCli(['compare', '--data-dir', random, ...SMALL, '--out', out], { cacheDir: path.join(dir, 'cache') });
    assertRefused(a, out, /holds no usable examples \(10 file\(s\) seen, 0 not named as expected, 10 without the JFIF marker\)/);
    const b = await runCli(['compare', '--data-dir', empty, ...SMALL, '--out', out], { cacheDir: path.join(dir, 'cache') });
    assertRefused(b, out, /holds no usable examples \(0 file\(s\) seen/);
  });
});

test('cats only (empty Dog folder) is refused: a classifier needs two classes', { timeout: 120_000 }, async () => {
  await withTempDir('preflight-one-class', async (dir) => {
    const pets = await makePetImages(dir, { perClass: 8, width: 48, height: 40, seed: 2 });
    await rm(path.join(pets, 'Dog'), { recursive: true });
    await mkdir(path.join(pets, 'Dog'));
    const out = path.join(dir, 'run');
    const r = await runCli(['compare', '--data-dir', pets, ...SMALL, '--models', 'cnn', '--out', out], {
      cacheDir: path.join(dir, 'cache'),
    });
    assertRefused(r, out, /examples of 1 class\(es\) \(cat \d+, dog 0\); a classifier needs at least two/);
  });
});

test('transfer settings are checked before the CNN trains: layer typo, classifier top, missing VGG16 weights offline', {
  timeout: 120_000,
}, async () => {
  await withTempDir('preflight-transfer', async (dir) => {
    const pets = await makePetImages(dir, { perClass: 8, width: 48, height: 40, seed: 3 });
    const tiny = await writeTinyBackbone(path.join(dir, 'tiny'));
    const out = path.join(dir, 'run');
    const cacheDir = path.join(dir, 'cache');
    const base = ['compare', '--data-dir', pets, ...SMALL, '--out', out, '--cache-dir', cacheDir];

    const typo = await runCli([...base, '--backbone', tiny.modelJson, '--backbone-output', 'conv_pw_3_rel'], { cacheDir });
    assertRefused(typo, out, new RegExp(`no layer 'conv_pw_3_rel'.*Close names: ${TINY_OUTPUT_LAYER}`));

    // the whole model would train the head on class scores: 13a
    const top = await runCli([...base, '--backbone', tiny.modelJson], { cacheDir });
    assertRefused(top, out, /ends in a classifier \(Reshape 'reshape_2'\).*--backbone-output, e\.g\. pool_5, pool_4, conv_4_leaky/);

    // no weights in the (empty) cache nor in ~/.keras, downloads off
    const offline = await runCli([...base, '--no-download'], { cacheDir, env: { HOME: dir } });
    assertRefused(offline, out, /VGG16 ImageNet weights are not on this machine/);
  });
});

test('fromTfjs refuses a classifier top without outputLayer and lists the feature layers', async () => {
  await withTempDir('preflight-library', async (dir) => {
    const tiny = await writeTinyBackbone(dir);
    await assert.rejects(fromTfjs(tiny.modelJson), /ends in a classifier.*pool_5, pool_4, conv_4_leaky/s);
    const cut = await fromTfjs(tiny.modelJson, { outputLayer: TINY_OUTPUT_LAYER });
    assert.equal(cut.layers.at(-1)!.config.name, TINY_OUTPUT_LAYER);
  });
});

test('a CNN input too small for its five blocks is refused before decoding', { timeout: 120_000 }, async () => {
  await withTempDir('preflight-cnn-size', async (dir) => {
    const pets = await makePetImages(dir, { perClass: 4, width: 48, height: 40, seed: 4 });
    const out = path.join(dir, 'run');
    const r = await runCli(['compare', '--data-dir', pets, '--image-size', '64', '--models', 'cnn', '--out', out], {
      cacheDir: path.join(dir, 'cache'),
    });
    assertRefused(r, out, /--image-size 64x64 is too small for the CNN's five conv\/pool blocks: use at least 94 pixels per side/);
    assert.doesNotMatch(r.stdout + r.stderr, /decoding/);
  });
});

test('data info on a zip without PetImages/ exits 1 and says what the archive lacks', async () => {
  await withTempDir('preflight-zip', async (dir) => {
    // one stored, empty entry: CRC 0, sizes 0
    const name = Buffer.from('notes/readme.txt');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(name.length, 28);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(1, 8);
    end.writeUInt16LE(1, 10);
    end.writeUInt32LE(46 + name.length, 12);
    end.writeUInt32LE(30 + name.length, 16);
    const zip = path.join(dir, 'other.zip');
    await writeFile(zip, Buffer.concat([local, name, central, name, end]));
    const r = await runCli(['data', 'info', '--archive', zip], { cacheDir: path.join(dir, 'cache') });
    assert.equal(r.code, 1, describeRun(r));
    assert.match(r.stderr, /holds no usable examples \(1 file\(s\) seen, 1 not named as expected.*PetImages\/Cat\/<n>\.jpg/);
  });
});
