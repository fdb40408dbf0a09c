/**
 * Keras's random preprocessing layers against naive per-pixel references written here from
 * TensorFlow's ImageProjectiveTransformV3 (coordinate mapping per fill mode, then nearest or
 * bilinear reads) and Keras's transform matrices and formulas, on 5x7 images with known pixels.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LayerConfig } from '../lib/keras-format/config.js';
import { layers } from '../lib/models/layers.js';
import { LayerConfigError } from '../lib/models/resolve.js';
import { Sequential } from '../lib/models/sequential.js';

const H = 5;
const W = 7;
const C = 2;

/** n images whose pixels all differ: image i, row y, column x, channel c. */
function images(n: number): Float32Array {
  const x = new Float32Array(n * H * W * C);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 37) % 101) + 3;
  return x;
}

function augmented(config: LayerConfig, x: Float32Array, n: number, seed = 5): Promise<Float32Array> {
  const model = new Sequential([config], { preprocessing: 'none', inputShape: [H, W, C], seed });
  return model.predict(x, [n, H, W, C], { augment: true }).then((r) => r.output);
}

type Fill = 'reflect' | 'wrap' | 'nearest' | 'constant';

/** TensorFlow's MapCoordinate, one coordinate at a time. */
function mapCoordinate(c: number, len: number, fill: Fill): number {
  if (fill === 'constant') return c;
  let v = c;
  if (fill === 'reflect') {
    if (v < 0) {
      if (len <= 1) v = 0;
      else {
        const sz2 = 2 * len;
        if (v < sz2) v = sz2 * Math.trunc(-v / sz2) + v;
        v = v < -len ? v + sz2 : -v - 1;
      }
    } else if (v > len - 1) {
      if (len <= 1) v = 0;
      else {
        const sz2 = 2 * len;
        v -= sz2 * Math.trunc(v / sz2);
        if (v >= len) v = sz2 - v - 1;
      }
    }
  } else if (fill === 'wrap') {
    if (v < 0) v = len <= 1 ? 0 : v + len * (Math.trunc(-v / (len - 1)) + 1);
    else if (v > len - 1) v = len <= 1 ? 0 : v - len * Math.trunc(v / (len - 1));
  }
  return Math.min(Math.max(v, 0), len - 1);
}

/** Keras `transform` of one image: output (x, y) reads input (a0 x + a1 y + a2, b0 x + b1 y + b2). */
function naiveTransform(img: Float32Array, m: number[], fill: Fill, interpolation: 'bilinear' | 'nearest', fillValue = 0): Float64Array {
  const out = new Float64Array(img.length);
  const read = (y: number, x: number, c: number) => (y < 0 || y >= H || x < 0 || x >= W ? fillValue : img[(y * W + x) * C + c]);
  const round = (v: number) => Math.sign(v) * Math.floor(Math.abs(v) + 0.5); // std::round
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const sx = mapCoordinate(m[0] * x + m[1] * y + m[2], W, fill);
      const sy = mapCoordinate(m[3] * x + m[4] * y + m[5], H, fill);
      for (let c = 0; c < C; c++) {
        let v: number;
        if (interpolation === 'nearest') v = read(round(sy), round(sx), c);
        else {
          const x0 = Math.floor(sx);
          const y0 = Math.floor(sy);
          const top = (x0 + 1 - sx) * read(y0, x0, c) + (sx - x0) * read(y0, x0 + 1, c);
          const bottom = (x0 + 1 - sx) * read(y0 + 1, x0, c) + (sx - x0) * read(y0 + 1, x0 + 1, c);
          v = (y0 + 1 - sy) * top + (sy - y0) * bottom;
        }
        out[(y * W + x) * C + c] = v;
      }
    }
  }
  return out;
}

function assertImageClose(got: Float32Array, want: ArrayLike<number>, what: string, atol = 2e-3): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < got.length; i++) {
    if (Math.abs(got[i] - want[i]) > atol) assert.fail(`${what}: value ${i} is ${got[i]}, the reference ${want[i]}`);
  }
}

const image = (x: Float32Array, i: number) => x.subarray(i * H * W * C, (i + 1) * H * W * C);

function rotationMatrix(angle: number): number[] {
  const [c, s] = [Math.cos(angle), Math.sin(angle)];
  const dx = (W - 1 - (c * (W - 1) - s * (H - 1))) / 2;
  const dy = (H - 1 - (s * (W - 1) + c * (H - 1))) / 2;
  return [c, -s, dx, s, c, dy];
}

const FILLS: Fill[] = ['reflect', 'wrap', 'nearest', 'constant'];

for (const fillMode of FILLS) {
  for (const interpolation of ['bilinear', 'nearest'] as const) {
    test(`RandomRotation by a fixed angle, fill_mode ${fillMode}, ${interpolation}: matches the naive transform`, async () => {
      const x = images(2);
      const factor = 0.07; // about 25 degrees: corners read outside the image
      const fillValue = fillMode === 'constant' ? 9 : 0;
      const out = await augmented(layers.randomRotation({ factor: [factor, factor], fillMode, interpolation, fillValue }), x, 2);
      for (let i = 0; i < 2; i++) {
        const want = naiveTransform(image(x, i), rotationMatrix(factor * 2 * Math.PI), fillMode, interpolation, fillValue);
        assertImageClose(image(out, i), want, `image ${i}`);
      }
    });
  }
}

for (const fillMode of FILLS) {
  test(`RandomZoom and RandomTranslation with fixed factors, fill_mode ${fillMode}: match the naive transform`, async () => {
    const x = images(1);
    // zoom out by 30% vertically and in by 20% horizontally
    const zoom = await augmented(layers.randomZoom({ heightFactor: [0.3, 0.3], widthFactor: [-0.2, -0.2], fillMode }), x, 1);
    const [zx, zy] = [0.8, 1.3];
    const zoomMatrix = [zx, 0, ((W - 1) / 2) * (1 - zx), 0, zy, ((H - 1) / 2) * (1 - zy)];
    assertImageClose(zoom, naiveTransform(x, zoomMatrix, fillMode, 'bilinear'), 'zoom');
    // 0.3 of the height down, 0.25 of the width left
    const moved = await augmented(
      layers.randomTranslation({ heightFactor: [0.3, 0.3], widthFactor: [-0.25, -0.25], fillMode, interpolation: 'nearest' }),
      x,
      1,
    );
    assertImageClose(moved, naiveTransform(x, [1, 0, 0.25 * W, 0, 1, -0.3 * H], fillMode, 'nearest'), 'translation');
  });
}

test('RandomZoom without width_factor keeps the aspect ratio (one draw for both axes)', async () => {
  const x = images(1);
  const out = await augmented(layers.randomZoom({ heightFactor: [-0.4, -0.4] }), x, 1);
  assertImageClose(out, naiveTransform(x, [0.6, 0, 3 * 0.4, 0, 0.6, 2 * 0.4], 'reflect', 'bilinear'), 'zoom');
});

test('RandomFlip: each image is itself or its exact mirror, both happen in a batch, and the mode picks the axis', async () => {
  const n = 24;
  const x = images(n);
  const mirror = (img: Float32Array, horizontal: boolean) => {
    const out = new Float32Array(img.length);
    for (let y = 0; y < H; y++)
      for (let xx = 0; xx < W; xx++)
        for (let c = 0; c < C; c++) {
          const [sy, sx] = horizontal ? [y, W - 1 - xx] : [H - 1 - y, xx];
          out[(y * W + xx) * C + c] = img[(sy * W + sx) * C + c];
        }
    return out;
  };
  for (const mode of ['horizontal', 'vertical'] as const) {
    const out = await augmented(layers.randomFlip({ mode }), x, n);
    let flipped = 0;
    for (let i = 0; i < n; i++) {
      const same = image(out, i).every((v, k) => v === image(x, i)[k]);
      const mirrored = image(out, i).every((v, k) => v === mirror(image(x, i), mode === 'horizontal')[k]);
      assert.ok(same || mirrored, `${mode}: image ${i} is neither itself nor its mirror`);
      if (mirrored) flipped++;
    }
    assert.ok(flipped > 0 && flipped < n, `${mode}: ${flipped} of ${n} flipped; expected some of each`);
  }
});

test('RandomContrast: (x - mean) * factor + mean per image and channel, factor drawn per image within [1 - lower, 1 + upper]', async () => {
  const n = 8;
  const x = images(n);
  const out = await augmented(layers.randomContrast({ factor: [0.5, 0.3], valueRange: [0, 1000] }), x, n);
  const factors = new Set<string>();
  for (let i = 0; i < n; i++) {
    const img = image(x, i);
    const mean = [0, 1].map((c) => img.filter((_, k) => k % C === c).reduce((a, b) => a + b, 0) / (H * W));
    // the factor, from a pixel well above the mean (never clipped at 0 or 1000)
    const k = img.findIndex((v, j) => v > mean[j % C] + 20);
    const f = (image(out, i)[k] - mean[k % C]) / (img[k] - mean[k % C]);
    assert.ok(f >= 0.5 - 1e-4 && f <= 1.3 + 1e-4, `image ${i}: factor ${f} outside [0.5, 1.3]`);
    factors.add(f.toFixed(4));
    const want = Array.from(img, (v, j) => Math.min(Math.max((v - mean[j % C]) * f + mean[j % C], 0), 1000));
    assertImageClose(image(out, i), want, `image ${i}`);
  }
  assert.ok(factors.size > 1, 'every image drew the same contrast factor');
});

test('RandomBrightness: one delta per image, a fraction of value_range, clipped to it', async () => {
  const n = 8;
  const x = images(n);
  const out = await augmented(layers.randomBrightness({ factor: 0.2, valueRange: [0, 110] }), x, n);
  for (let i = 0; i < n; i++) {
    const img = image(x, i);
    // the delta, from a pixel that cannot have been clipped (mid-range)
    const k = img.findIndex((v) => v > 30 && v < 80);
    const delta = image(out, i)[k] - img[k];
    assert.ok(Math.abs(delta) <= 0.2 * 110 + 1e-3, `image ${i}: delta ${delta} beyond 0.2 of the range`);
    assertImageClose(
      image(out, i),
      Array.from(img, (v) => Math.min(Math.max(v + delta, 0), 110)),
      `image ${i}`,
    );
  }
});

test('augmentation is the identity at inference: predict and evaluate match the model without it', async () => {
  const head = [layers.flatten(), layers.dense({ units: 1, activation: 'sigmoid', name: 'out' })];
  const augmentation = [
    layers.randomFlip(),
    layers.randomRotation({ factor: 0.2 }),
    layers.randomZoom({ heightFactor: 0.2 }),
    layers.randomTranslation({ heightFactor: 0.1, widthFactor: 0.1 }),
    layers.randomContrast({ factor: 0.5 }),
    layers.randomBrightness({ factor: 0.3 }),
  ];
  const withAug = new Sequential([...augmentation, ...head], { inputShape: [H, W, C], seed: 3 });
  const without = new Sequential(head, { inputShape: [H, W, C], seed: 3 });
  without.setWeights(withAug.getWeights());
  const pixels = Uint8Array.from(images(4), (v) => v);
  const a = await withAug.predict(pixels, [4, H, W, C]);
  const b = await without.predict(pixels, [4, H, W, C]);
  assert.deepEqual(a.output, b.output);
  // and in training mode they do change the output
  const trained = await withAug.predict(pixels, [4, H, W, C], { augment: true });
  assert.notDeepEqual(trained.output, a.output);
  const y = new Float32Array([0, 1, 1, 0]);
  for (const m of [withAug, without]) m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  const ea = await withAug.engine.evaluate(pixels, [4, H, W, C], y, 0);
  const eb = await without.engine.evaluate(pixels, [4, H, W, C], y, 0);
  assert.equal(ea.loss, eb.loss);
  // Keras: no weights, listed in summary() with 0 parameters
  const summary = withAug.summary(false);
  for (const name of ['random_flip (RandomFlip)', 'random_rotation (RandomRotation)', 'random_brightness (RandomBrightness)']) {
    assert.match(summary, new RegExp(`${name.replace(/[()]/g, '\\$&')}\\s+\\(None, 5, 7, 2\\)\\s+0\\n`));
  }
  assert.deepEqual(withAug.countParams(), without.countParams());
});

test('seeded: the same seed gives the same draws, another seed other draws; images of a batch draw differently', async () => {
  const n = 4;
  const x = new Float32Array(n * H * W * C);
  for (let i = 0; i < x.length; i++) x[i] = (i % (H * W * C)) + 1; // n identical images
  const config = layers.randomRotation({ factor: 0.3, seed: 11 });
  const a = await augmented(config, x, n, 1);
  const b = await augmented(config, x, n, 2); // the layer's own seed decides, not the model's
  assert.deepEqual(a, b);
  const other = await augmented(layers.randomRotation({ factor: 0.3, seed: 12 }), x, n);
  assert.notDeepEqual(a, other);
  for (let i = 1; i < n; i++) assert.notDeepEqual(image(a, i), image(a, 0), `image ${i} drew the same angle as image 0`);
  // without a layer seed, the model's seed decides
  const unseeded = layers.randomZoom({ heightFactor: 0.3 });
  assert.deepEqual(await augmented(unseeded, x, n, 7), await augmented(unseeded, x, n, 7));
  assert.notDeepEqual(await augmented(unseeded, x, n, 7), await augmented(unseeded, x, n, 8));
});

test('leading augmentation layers see raw pixels, before the preprocessing step', async () => {
  // brightness clipped to [0, 255] on raw pixels: with scale01 first it would clip x / 255 instead
  const model = new Sequential([layers.randomBrightness({ factor: [1, 1] })], { inputShape: [H, W, C], seed: 1 });
  const pixels = Uint8Array.from(images(1), (v) => v);
  const out = await model.predict(pixels, [1, H, W, C], { augment: true });
  assert.ok(
    out.output.every((v) => Math.abs(v - 1) < 1e-6),
    'every pixel should be 255 / 255',
  );
});

test('bad arguments name the layer and the argument', () => {
  const cases: [LayerConfig, RegExp][] = [
    [layers.randomFlip({ mode: 'sideways' as 'horizontal', name: 'f' }), /layer 'f': mode "sideways" is not one of horizontal, vertical/],
    [layers.randomZoom({ heightFactor: 1.5, name: 'z' }), /layer 'z': height_factor 1.5 must give lower <= upper, both in \[-1, 1\]/],
    [
      layers.randomRotation({ factor: 0.1, fillMode: 'mirror' as 'wrap', name: 'r' }),
      /layer 'r': fill_mode "mirror" is not one of reflect/,
    ],
    [layers.randomContrast({ factor: -0.1, name: 'c' }), /layer 'c': factor -0.1 must give both in \[0, 1\]/],
    [
      layers.randomBrightness({ factor: 0.1, valueRange: [1, 0], name: 'b' }),
      /layer 'b': value_range must be \[low, high\] with low < high/,
    ],
  ];
  for (const [config, message] of cases) {
    assert.throws(
      () => new Sequential([config], { inputShape: [H, W, C] }),
      (e: Error) => e instanceof LayerConfigError && message.test(e.message),
    );
  }
  const translation = { class_name: 'RandomTranslation', config: { name: 't', height_factor: 0.1 } };
  assert.throws(() => new Sequential([translation], { inputShape: [H, W, C] }), /layer 't': width_factor must be a number or a pair/);
});
