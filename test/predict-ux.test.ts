/**
 * `transferlab predict` on folders and glob patterns, with top-k and table/CSV/JSON output, checked
 * against a softmax computed here: a tiny 3-class model whose logits are the mean of each channel
 * (after `tf` scaling) plus a bias, on solid-colour images.
 */

import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { expandImagePaths, globToRegExp } from '../lib/data/image-paths.js';
import { layers } from '../lib/models/layers.js';
import { Sequential } from '../lib/models/sequential.js';
import { saveModel } from '../lib/saving/persistence.js';
import { describeRun, runCli, withTempDir } from './helpers/transfer-helpers.js';

const CLASSES = ['red', 'green', 'blue'];
const BIAS = [0, 0.1, 0.2];

async function savedModel(dir: string): Promise<string> {
  const m = new Sequential([layers.flatten({ inputShape: [4, 4, 3] }), layers.dense({ units: 3, activation: 'softmax' })], {
    preprocessing: 'tf',
    seed: 1,
    name: 'rgb',
  });
  // Keras kernel layout [inputs, units]: unit j averages channel j over the 16 pixels.
  const kernel = new Float32Array(48 * 3);
  for (let i = 0; i < 48; i++) kernel[i * 3 + (i % 3)] = 1 / 16;
  m.setLayerWeights(1, [kernel, Float32Array.from(BIAS)]);
  const modelDir = path.join(dir, 'model');
  await saveModel(m, modelDir, { classNames: CLASSES });
  return modelDir;
}

/** The model's probabilities for a solid colour, computed naively. */
function reference(rgb: [number, number, number]): number[] {
  const logits = rgb.map((v, j) => v / 127.5 - 1 + BIAS[j]!);
  const max = Math.max(...logits);
  const e = logits.map((z) => Math.exp(z - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

async function image(file: string, rgb: [number, number, number]): Promise<string> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const [r, g, b] = rgb;
  const img = sharp({ create: { width: 4, height: 4, channels: 3, background: { r, g, b } } });
  await (file.endsWith('.png') ? img.png() : img.jpeg({ quality: 100 })).toFile(file);
  return file;
}

const COLOURS: Record<string, [number, number, number]> = {
  'a.png': [250, 10, 10],
  'sub/b.png': [10, 240, 60],
  'sub/deeper/c.png': [60, 60, 230],
  'd, with comma.png': [120, 200, 90],
};

async function photos(dir: string): Promise<string> {
  const root = path.join(dir, 'photos');
  for (const [name, rgb] of Object.entries(COLOURS)) await image(path.join(root, name), rgb);
  await fs.writeFile(path.join(root, 'notes.txt'), 'not an image');
  await image(path.join(root, '.hidden.png'), [0, 0, 0]);
  await image(path.join(root, 'sub', 'e.jpg'), [128, 128, 128]);
  return root;
}

/** RFC 4180 fields of one line (quoted fields may hold commas and doubled quotes). */
function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        if (line[i] === '"' && line[i + 1] === '"') {
          value += '"';
          i += 2;
        } else if (line[i] === '"') break;
        else value += line[i++];
      }
      out.push(value);
      i += 2;
    } else {
      const end = line.indexOf(',', i) === -1 ? line.length : line.indexOf(',', i);
      out.push(line.slice(i, end));
      i = end + 1;
    }
  }
  return out;
}

test('glob patterns: * and ? stay within a folder name, ** spans folders', () => {
  const re = globToRegExp('**/*.png');
  assert.ok(re.test('a.png') && re.test('x/y/a.png'));
  assert.ok(!re.test('a.jpg') && !re.test('a.png/x'));
  assert.ok(globToRegExp('*.png').test('a.png') && !globToRegExp('*.png').test('x/a.png'));
  assert.ok(globToRegExp('a?.png').test('ab.png') && !globToRegExp('a?.png').test('a/.png') && !globToRegExp('a?.png').test('abc.png'));
  assert.ok(globToRegExp('x/**/c.png').test('x/c.png') && globToRegExp('x/**/c.png').test('x/1/2/c.png'));
  assert.ok(!globToRegExp('a+b.png').test('aab.png'), 'regex characters are literal');
});

test('folders and patterns expand to image files, sorted, once each; unmatched arguments are reported', async () => {
  await withTempDir('predict-paths', async (dir) => {
    const root = await photos(dir);
    const p = (rel: string) => path.join(root, rel);
    const folder = await expandImagePaths([root]);
    assert.deepEqual(folder.files, [p('a.png'), p('d, with comma.png'), p('sub/b.png'), p('sub/deeper/c.png'), p('sub/e.jpg')]);
    assert.deepEqual(folder.problems, []);
    const globbed = await expandImagePaths([`${root}/**/*.png`, `${root}/sub/*`, p('a.png'), `${root}/*.gif`, p('missing.png')]);
    assert.deepEqual(globbed.files, [p('a.png'), p('d, with comma.png'), p('sub/b.png'), p('sub/deeper/c.png'), p('sub/e.jpg')]);
    assert.deepEqual(
      globbed.problems.map((x) => x.arg),
      [`${root}/*.gif`, p('missing.png')],
    );
    assert.match(globbed.problems[1]!.reason, /no such file or folder/);
    const oneLevel = await expandImagePaths([`${root}/sub/?.png`]);
    assert.deepEqual(oneLevel.files, [p('sub/b.png')]);
  });
});

test('predict --top-k --format json: classes by probability, probabilities as computed and summing to 1', {
  timeout: 120_000,
}, async () => {
  await withTempDir('predict-topk', async (dir) => {
    const model = await savedModel(dir);
    const root = await photos(dir);
    const r = await runCli(['predict', '--model', model, '--top-k', '3', '--format', 'json', `${root}/**/*.png`], { cacheDir: dir });
    assert.equal(r.code, 0, describeRun(r));
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      rows.map((x) => path.relative(root, x.image)),
      ['a.png', 'd, with comma.png', 'sub/b.png', 'sub/deeper/c.png'],
    );
    for (const row of rows) {
      const expected = reference(COLOURS[path.relative(root, row.image)]!);
      const order = [0, 1, 2].sort((a, b) => expected[b]! - expected[a]!);
      assert.deepEqual(
        row.top.map((t: { class: string }) => t.class),
        order.map((c) => CLASSES[c]),
      );
      row.top.forEach((t: { probability: number }, i: number) => assert.ok(Math.abs(t.probability - expected[order[i]!]!) < 1e-5));
      const sum = row.top.reduce((s: number, t: { probability: number }) => s + t.probability, 0);
      assert.ok(Math.abs(sum - 1) < 1e-5, `probabilities sum to ${sum}`);
      assert.equal(row.class, row.top[0].class);
    }
    const tooMany = await runCli(['predict', '--model', model, '--top-k', '4', root], { cacheDir: dir });
    assert.equal(tooMany.code, 2);
    assert.match(tooMany.stderr, /--top-k 4 is more than the model's 3 classes/);
  });
});

test('predict --format csv and table have a header; CSV parses back (quoted names too); batches give the same answers', {
  timeout: 120_000,
}, async () => {
  await withTempDir('predict-csv', async (dir) => {
    const model = await savedModel(dir);
    const root = await photos(dir);
    // batch size 2 over 5 images: three engine calls, the last one short, and a progress bar.
    const r = await runCli(['predict', '--model', model, '--top-k', '2', '--format', 'csv', '--batch-size', '2', root], { cacheDir: dir });
    assert.equal(r.code, 0, describeRun(r));
    const [head, ...lines] = r.stdout.trim().split('\n');
    assert.equal(head, 'image,class_1,probability_1,class_2,probability_2');
    assert.equal(lines.length, 5);
    assert.match(r.stderr, /predicting: done, 5 images/);
    for (const line of lines) {
      const [file, c1, p1, c2, p2] = parseCsvLine(line);
      const rel = path.relative(root, file!);
      if (rel === 'sub/e.jpg') continue; // JPEG grey: no exact colour to compare with
      const expected = reference(COLOURS[rel]!);
      const order = [0, 1, 2].sort((a, b) => expected[b]! - expected[a]!);
      assert.deepEqual([c1, c2], [CLASSES[order[0]!], CLASSES[order[1]!]], line);
      assert.equal(p1, expected[order[0]!]!.toFixed(4));
      assert.equal(p2, expected[order[1]!]!.toFixed(4));
    }
    const table = await runCli(['predict', '--model', model, '--format', 'table', path.join(root, 'a.png'), path.join(root, 'sub')], {
      cacheDir: dir,
    });
    assert.equal(table.code, 0, describeRun(table));
    const tableLines = table.stdout.trimEnd().split('\n');
    assert.match(tableLines[0]!, /^image\s+class\s+probability$/);
    assert.equal(tableLines.length, 5);
    const classColumn = tableLines[0]!.indexOf('class');
    for (const l of tableLines.slice(1)) assert.match(l.slice(classColumn), /^(red|green|blue)\s+\d\.\d{4}$/, 'columns align');
  });
});

test('unreadable files and empty arguments are named, exit 1, and the other images are still printed', { timeout: 120_000 }, async () => {
  await withTempDir('predict-bad', async (dir) => {
    const model = await savedModel(dir);
    const root = await photos(dir);
    const broken = path.join(root, 'broken.png');
    await fs.writeFile(broken, 'this is not a PNG');
    const missing = path.join(dir, 'missing.jpg');
    const r = await runCli(['predict', '--model', model, '--format', 'tsv', broken, path.join(root, 'a.png'), missing, `${dir}/*.webp`], {
      cacheDir: dir,
    });
    assert.equal(r.code, 1, describeRun(r));
    const expected = reference(COLOURS['a.png']!);
    assert.equal(r.stdout, `${path.join(root, 'a.png')}\tred\t${Math.max(...expected).toFixed(4)}\n`);
    assert.match(r.stderr, new RegExp(`${broken.replace(/[.]/g, '\\.')}: not a readable image`));
    assert.match(r.stderr, new RegExp(`${missing.replace(/[.]/g, '\\.')}: no such file or folder`));
    assert.match(r.stderr, /\*\.webp: the pattern matches no image file/);
    assert.match(r.stderr, /3 input\(s\) could not be read \(named above\); the other 1 image\(s\) were predicted/);
  });
});
