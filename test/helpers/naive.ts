/**
 * Naive float64 reference implementations for the engine tests: written from the Keras/TensorFlow
 * definitions, loop by loop, independent of lib/ (nothing here imports the code under test, except
 * the `Dataset` type). Layouts are Keras's: activations NHWC, Conv2D kernels HWIO, depthwise
 * kernels [kh, kw, in, multiplier], Dense kernels [in, out].
 */
import assert from 'node:assert/strict';
import type { Batch, Dataset } from '../../lib/data/types.js';

// ---------------------------------------------------------------------------------------------
// Seeded randomness

/** mulberry32: a small, well-mixed 32-bit PRNG; same seed, same sequence. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** uniform in [0, 1) */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Float32Array of `n` values uniform in [lo, hi). */
  floats(n: number, lo = -1, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(lo, hi);
    return out;
  }
  /** Float32Array of `n` values on the grid lo, lo + 1/steps, ..., hi (coarse values: exact in bfloat16, their sums exact in float32). */
  grid(n: number, steps: number, lo: number, hi: number): Float32Array {
    return Float32Array.from({ length: n }, () => lo + this.int(steps * (hi - lo) + 1) / steps);
  }
  /**
   * `n` biases lo..hi off bfloat16's grid (bfloat16 rounding changes them), at least 1/8 in
   * magnitude: once rounded, multiples of 2^-10, so a grid convolution's sums plus the bias stay exact in float32.
   */
  offGridBias(n: number, lo: number, hi: number): Float32Array {
    return Float32Array.from(this.grid(n, 997, lo + 0.125, hi - 0.125), (v) => v + Math.sign(v || 1) * 0.125);
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

const bf16Bits = new Uint32Array(1);
const bf16Word = new Float32Array(bf16Bits.buffer);
/** float -> the nearest bfloat16 (ties to even), as a number: how autocast rounds inputs, kernels and outputs */
export function bf16(v: number): number {
  bf16Word[0] = v;
  const u = bf16Bits[0]!;
  bf16Bits[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  return bf16Word[0]!;
}

export const prod = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** A float64 tensor in Keras layout. */
export interface T {
  data: Float64Array;
  shape: number[];
}

export function tensor(data: ArrayLike<number>, shape: number[]): T {
  assert.equal(data.length, prod(shape), `tensor data ${data.length} vs shape [${shape}]`);
  return { data: Float64Array.from(data), shape: [...shape] };
}

// ---------------------------------------------------------------------------------------------
// Padding rules (TensorFlow)

export interface Pad1d {
  out: number;
  before: number;
  after: number;
}

/** TF: valid -> floor((in - effective) / s) + 1; same -> ceil(in / s), odd padding pixel after. */
export function tfPadding(size: number, kernel: number, stride: number, dilation: number, padding: 'valid' | 'same'): Pad1d {
  const effective = dilation * (kernel - 1) + 1;
  if (padding === 'valid') return { out: Math.floor((size - effective) / stride) + 1, before: 0, after: 0 };
  const out = Math.ceil(size / stride);
  const total = Math.max(0, (out - 1) * stride + effective - size);
  const before = Math.floor(total / 2);
  return { out, before, after: total - before };
}

// ---------------------------------------------------------------------------------------------
// Layers

export interface ConvOptions {
  strides?: [number, number];
  padding?: 'valid' | 'same';
  dilation?: [number, number];
}

/** Conv2D, NHWC input, HWIO kernel, TF padding (zeros), optional bias. */
export function conv2d(
  x: T,
  kernel: ArrayLike<number>,
  kshape: [number, number, number, number],
  bias: ArrayLike<number> | undefined,
  o: ConvOptions = {},
): T {
  const [n, h, w, c] = x.shape;
  const [kh, kw, ci, co] = kshape;
  assert.equal(ci, c, 'conv2d: kernel in-channels');
  const [sh, sw] = o.strides ?? [1, 1];
  const [dh, dw] = o.dilation ?? [1, 1];
  const py = tfPadding(h, kh, sh, dh, o.padding ?? 'valid');
  const px = tfPadding(w, kw, sw, dw, o.padding ?? 'valid');
  const out = new Float64Array(n * py.out * px.out * co);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < py.out; oy++)
      for (let ox = 0; ox < px.out; ox++)
        for (let f = 0; f < co; f++) {
          let s = bias ? bias[f] : 0;
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * sh - py.before + ky * dh;
            if (iy < 0 || iy >= h) continue;
            for (let kx = 0; kx < kw; kx++) {
              const ix = ox * sw - px.before + kx * dw;
              if (ix < 0 || ix >= w) continue;
              for (let ch = 0; ch < c; ch++) {
                s += x.data[((b * h + iy) * w + ix) * c + ch] * kernel[((ky * kw + kx) * ci + ch) * co + f];
              }
            }
          }
          out[((b * py.out + oy) * px.out + ox) * co + f] = s;
        }
  return { data: out, shape: [n, py.out, px.out, co] };
}

/**
 * conv2d as a lower-precision convolution defines it (autocast's bfloat16 by default): input, kernel
 * and bias rounded by `round`, the sums in float64, the output rounded once more.
 */
export function roundedConv2d(
  x: ArrayLike<number>,
  xShape: number[],
  kernel: ArrayLike<number>,
  kshape: [number, number, number, number],
  bias: ArrayLike<number>,
  o: ConvOptions = {},
  round: (v: number) => number = bf16,
): T {
  const conv = conv2d(
    tensor(Float64Array.from(x, round), xShape),
    Float64Array.from(kernel, round),
    kshape,
    Float64Array.from(bias, round),
    o,
  );
  return { data: conv.data.map(round), shape: conv.shape };
}

/**
 * Conv2D's kernel gradient (HWIO) and bias gradient, stride 1, TF padding (zeros): x NHWC, g the
 * gradient at the conv output (NHWC, as conv2d's output).
 */
export function conv2dFilterGradient(
  x: T,
  g: T,
  kernel: [number, number],
  padding: 'valid' | 'same',
): { dKernel: Float64Array; dBias: Float64Array } {
  const [n, h, w, c] = x.shape;
  const [kh, kw] = kernel;
  const f = g.shape[3];
  const py = tfPadding(h, kh, 1, 1, padding);
  const px = tfPadding(w, kw, 1, 1, padding);
  assert.deepEqual(g.shape, [n, py.out, px.out, f], 'conv2dFilterGradient: g is not the conv output shape');
  const dKernel = new Float64Array(kh * kw * c * f);
  const dBias = new Float64Array(f);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < py.out; oy++)
      for (let ox = 0; ox < px.out; ox++)
        for (let o = 0; o < f; o++) {
          const d = g.data[((b * py.out + oy) * px.out + ox) * f + o];
          dBias[o] += d;
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy + ky - py.before;
            if (iy < 0 || iy >= h) continue;
            for (let kx = 0; kx < kw; kx++) {
              const ix = ox + kx - px.before;
              if (ix < 0 || ix >= w) continue;
              for (let ch = 0; ch < c; ch++) dKernel[((ky * kw + kx) * c + ch) * f + o] += d * x.data[((b * h + iy) * w + ix) * c + ch];
            }
          }
        }
  return { dKernel, dBias };
}

/** DepthwiseConv2D: kernel [kh, kw, C, M]; output channel c * M + m (TensorFlow's order). */
export function depthwiseConv2d(
  x: T,
  kernel: ArrayLike<number>,
  kshape: [number, number, number, number],
  bias: ArrayLike<number> | undefined,
  o: ConvOptions = {},
): T {
  const [n, h, w, c] = x.shape;
  const [kh, kw, ci, m] = kshape;
  assert.equal(ci, c, 'depthwise: kernel channels');
  const [sh, sw] = o.strides ?? [1, 1];
  const [dh, dw] = o.dilation ?? [1, 1];
  const py = tfPadding(h, kh, sh, dh, o.padding ?? 'valid');
  const px = tfPadding(w, kw, sw, dw, o.padding ?? 'valid');
  const co = c * m;
  const out = new Float64Array(n * py.out * px.out * co);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < py.out; oy++)
      for (let ox = 0; ox < px.out; ox++)
        for (let ch = 0; ch < c; ch++)
          for (let q = 0; q < m; q++) {
            let s = bias ? bias[ch * m + q] : 0;
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * sh - py.before + ky * dh;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * sw - px.before + kx * dw;
                if (ix < 0 || ix >= w) continue;
                s += x.data[((b * h + iy) * w + ix) * c + ch] * kernel[((ky * kw + kx) * c + ch) * m + q];
              }
            }
            out[((b * py.out + oy) * px.out + ox) * co + ch * m + q] = s;
          }
  return { data: out, shape: [n, py.out, px.out, co] };
}

/**
 * Max / average pooling with TF padding. Padded positions never take part: max ignores them and
 * the average divides by the number of real pixels in the window (Keras/TF 'same').
 */
export function pool2d(x: T, mode: 'max' | 'avg', pool: [number, number], strides: [number, number], padding: 'valid' | 'same'): T {
  const [n, h, w, c] = x.shape;
  const py = tfPadding(h, pool[0], strides[0], 1, padding);
  const px = tfPadding(w, pool[1], strides[1], 1, padding);
  const out = new Float64Array(n * py.out * px.out * c);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < py.out; oy++)
      for (let ox = 0; ox < px.out; ox++)
        for (let ch = 0; ch < c; ch++) {
          let best = -Infinity;
          let sum = 0;
          let count = 0;
          for (let ky = 0; ky < pool[0]; ky++) {
            const iy = oy * strides[0] - py.before + ky;
            if (iy < 0 || iy >= h) continue;
            for (let kx = 0; kx < pool[1]; kx++) {
              const ix = ox * strides[1] - px.before + kx;
              if (ix < 0 || ix >= w) continue;
              const v = x.data[((b * h + iy) * w + ix) * c + ch];
              best = Math.max(best, v);
              sum += v;
              count++;
            }
          }
          out[((b * py.out + oy) * px.out + ox) * c + ch] = mode === 'max' ? best : sum / count;
        }
  return { data: out, shape: [n, py.out, px.out, c] };
}

/**
 * relu(maxpool(x)) for a Keras 'valid' square pool of stride k, and dx for output gradient `g`, with
 * libtorch's CPU window rule: row-major scan, a value wins if it is greater or NaN.
 */
export function naivePoolRelu(
  x: ArrayLike<number>,
  [n, h, w, c]: [number, number, number, number],
  k: number,
  g: ArrayLike<number>,
): { out: number[]; dx: number[] } {
  const [oh, ow] = [Math.floor(h / k), Math.floor(w / k)];
  const out = new Array<number>(n * oh * ow * c).fill(0);
  const dx = new Array<number>(x.length).fill(0);
  const at = (b: number, i: number, j: number, ch: number): number => ((b * h + i) * w + j) * c + ch;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        for (let ch = 0; ch < c; ch++) {
          let arg = at(b, i * k, j * k, ch);
          let max = x[arg]!;
          for (let di = 0; di < k; di++) {
            for (let dj = 0; dj < k; dj++) {
              const p = at(b, i * k + di, j * k + dj, ch);
              const v = x[p]!;
              if (v > max || Number.isNaN(v)) [max, arg] = [v, p];
            }
          }
          const o = ((b * oh + i) * ow + j) * c + ch;
          out[o] = max > 0 || Number.isNaN(max) ? max : 0;
          if (!(max <= 0)) dx[arg] = g[o]!; // relu's backward passes what its output did not clamp
        }
      }
    }
  }
  return { out, dx };
}

export function globalAvgPool(x: T): T {
  const [n, h, w, c] = x.shape;
  const out = new Float64Array(n * c);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < h * w; i++) for (let ch = 0; ch < c; ch++) out[b * c + ch] += x.data[(b * h * w + i) * c + ch] / (h * w);
  return { data: out, shape: [n, c] };
}

/** Keras Flatten on NHWC: the data is already in height, width, channel order. */
export function flatten(x: T): T {
  return { data: x.data, shape: [x.shape[0], prod(x.shape.slice(1))] };
}

export function dense(x: T, kernel: ArrayLike<number>, units: number, bias?: ArrayLike<number>): T {
  const [n, inF] = x.shape;
  assert.equal(kernel.length, inF * units, 'dense kernel size');
  const out = new Float64Array(n * units);
  for (let b = 0; b < n; b++)
    for (let u = 0; u < units; u++) {
      let s = bias ? bias[u] : 0;
      for (let i = 0; i < inF; i++) s += x.data[b * inF + i] * kernel[i * units + u];
      out[b * units + u] = s;
    }
  return { data: out, shape: [n, units] };
}

/** BatchNormalization in inference: (x - mean) / sqrt(var + eps) * gamma + beta, per channel. */
export function batchNorm(
  x: T,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  mean: ArrayLike<number>,
  variance: ArrayLike<number>,
  eps: number,
): T {
  const c = x.shape[x.shape.length - 1];
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    const ch = i % c;
    out[i] = ((x.data[i] - mean[ch]) / Math.sqrt(variance[ch] + eps)) * gamma[ch] + beta[ch];
  }
  return { data: out, shape: x.shape };
}

/** ZeroPadding2D ((top, bottom), (left, right)). */
export function zeroPad(x: T, top: number, bottom: number, left: number, right: number): T {
  const [n, h, w, c] = x.shape;
  const H = h + top + bottom;
  const W = w + left + right;
  const out = new Float64Array(n * H * W * c);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++)
        for (let ch = 0; ch < c; ch++) out[((b * H + y + top) * W + xx + left) * c + ch] = x.data[((b * h + y) * w + xx) * c + ch];
  return { data: out, shape: [n, H, W, c] };
}

// ---------------------------------------------------------------------------------------------
// Activations (softmax over the last axis, as Keras)

export const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

export function activation(x: T, name: 'linear' | 'relu' | 'relu6' | 'sigmoid' | 'tanh' | 'elu' | 'softmax'): T {
  const d = x.data;
  const out = new Float64Array(d.length);
  switch (name) {
    case 'linear':
      out.set(d);
      break;
    case 'relu':
      for (let i = 0; i < d.length; i++) out[i] = Math.max(0, d[i]);
      break;
    case 'relu6':
      for (let i = 0; i < d.length; i++) out[i] = Math.min(6, Math.max(0, d[i]));
      break;
    case 'sigmoid':
      for (let i = 0; i < d.length; i++) out[i] = sigmoid(d[i]);
      break;
    case 'tanh':
      for (let i = 0; i < d.length; i++) out[i] = Math.tanh(d[i]);
      break;
    case 'elu':
      for (let i = 0; i < d.length; i++) out[i] = d[i] > 0 ? d[i] : Math.exp(d[i]) - 1;
      break;
    case 'softmax': {
      const c = x.shape[x.shape.length - 1];
      for (let r = 0; r < d.length / c; r++) {
        let max = -Infinity;
        for (let k = 0; k < c; k++) max = Math.max(max, d[r * c + k]);
        let sum = 0;
        for (let k = 0; k < c; k++) sum += Math.exp(d[r * c + k] - max);
        for (let k = 0; k < c; k++) out[r * c + k] = Math.exp(d[r * c + k] - max) / sum;
      }
      break;
    }
  }
  return { data: out, shape: x.shape };
}

// ---------------------------------------------------------------------------------------------
// Losses

/** Mean binary crossentropy from logits: log(1 + e^z) - y z, computed stably. */
export function bceFromLogits(logits: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < logits.length; i++) {
    const z = logits[i];
    s += Math.max(z, 0) - z * y[i] + Math.log1p(Math.exp(-Math.abs(z)));
  }
  return s / logits.length;
}

/**
 * Mean binary crossentropy on probabilities clipped to [1e-7, 1 - 1e-7], the bounds as float32
 * holds them (as in Keras, whose clip runs in float32: 1 - 1e-7 becomes 1 - 1.19e-7).
 */
export function bceFromProbabilities(p: ArrayLike<number>, y: ArrayLike<number>): number {
  const lo = Math.fround(1e-7);
  const hi = Math.fround(1 - 1e-7);
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const q = Math.min(hi, Math.max(lo, p[i]));
    s += -(y[i] * Math.log(q) + (1 - y[i]) * Math.log(1 - q));
  }
  return s / p.length;
}

/** Mean categorical crossentropy of softmax(logits) against class indices. */
export function categoricalFromLogits(logits: T, classes: ArrayLike<number>): number {
  const p = activation(logits, 'softmax');
  const c = logits.shape[1];
  let s = 0;
  for (let r = 0; r < classes.length; r++) s -= Math.log(p.data[r * c + classes[r]]);
  return s / classes.length;
}

// ---------------------------------------------------------------------------------------------
// Keras Adam ("epsilon hat" form)

export interface AdamConfig {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** Keras/TF Adam: alpha_t = lr sqrt(1 - b2^t) / (1 - b1^t); w -= alpha_t m / (sqrt(v) + eps). */
export class KerasAdam {
  t = 0;
  private m: Float64Array[] = [];
  private v: Float64Array[] = [];
  constructor(readonly cfg: AdamConfig) {}

  /** One update of all `weights` (mutated in place) given their gradients. */
  step(weights: Float64Array[], grads: Float64Array[]): void {
    const { learningRate: lr, beta1: b1, beta2: b2, epsilon: eps } = this.cfg;
    this.t++;
    const alpha = (lr * Math.sqrt(1 - b2 ** this.t)) / (1 - b1 ** this.t);
    weights.forEach((w, k) => {
      this.m[k] ??= new Float64Array(w.length);
      this.v[k] ??= new Float64Array(w.length);
      const m = this.m[k];
      const v = this.v[k];
      const g = grads[k];
      for (let i = 0; i < w.length; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        w[i] -= (alpha * m[i]) / (Math.sqrt(v[i]) + eps);
      }
    });
  }
}

/** Central finite differences of `f` with respect to every entry of `params` (mutated, restored). */
export function numericGradient(f: () => number, params: Float64Array[], h = 1e-6): Float64Array[] {
  return params.map((p) => {
    const g = new Float64Array(p.length);
    for (let i = 0; i < p.length; i++) {
      const saved = p[i];
      p[i] = saved + h;
      const up = f();
      p[i] = saved - h;
      const down = f();
      p[i] = saved;
      g[i] = (up - down) / (2 * h);
    }
    return g;
  });
}

// ---------------------------------------------------------------------------------------------
// Assertions

/**
 * Every element equal to the expected one (Object.is: -0 and +0 differ), NaN where it is NaN: for
 * results that must match a reference bit for bit.
 */
export function assertBitExact(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    if (Number.isNaN(e)) assert.ok(Number.isNaN(actual[i]!), `${what}: element ${i} should be NaN, got ${actual[i]}`);
    else assert.equal(actual[i], e, `${what}: element ${i}`);
  }
}

/**
 * assertBitExact on a relu'd output that must hold both positive and blocked (zero) values, so that
 * the case exercises both sides of the relu.
 */
export function assertBitExactPassingAndBlocked(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  const passing = Array.from(expected).filter((e) => e > 0).length;
  assert.ok(passing > 0 && passing < expected.length, `${what}: the case needs blocked and passing windows (${passing} passing)`);
  assertBitExact(actual, expected, what);
}

/**
 * Element-wise |actual - expected| <= atol + rtol * |expected|, reporting the worst element.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  opts: { atol?: number; rtol?: number; what?: string } = {},
): void {
  const atol = opts.atol ?? 1e-5;
  const rtol = opts.rtol ?? 1e-4;
  const what = opts.what ?? 'values';
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs expected ${expected.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(a) !== Number.isNaN(e)) {
      assert.fail(`${what}[${i}]: got ${a}, expected ${e}`);
    }
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    assert.fail(
      `${what}[${worst}]: got ${actual[worst]}, expected ${expected[worst]} (|diff| ${Math.abs(actual[worst] - expected[worst])} > ${atol} + ` +
        `${rtol}·|expected|)`,
    );
  }
}

export function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

/** largest |a - b|, element-wise */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** ||actual - expected|| / ||expected|| (L2) */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, `length ${actual.length} vs expected ${expected.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < actual.length; i++) {
    num += (actual[i] - expected[i]) ** 2;
    den += expected[i] ** 2;
  }
  return Math.sqrt(num / den);
}

// ---------------------------------------------------------------------------------------------
// In-memory dataset

export interface ServedBatch {
  /** 0-based pass over the data (each call of batches() starts a new pass) */
  pass: number;
  /** batch index within the pass */
  index: number;
  size: number;
}

/**
 * A `Dataset` over arrays in memory, in order, last batch smaller; records every batch it serves
 * (pass and index) so tests can see how `fit` walks the stream.
 */
export class ArrayDataset implements Dataset {
  readonly size: number;
  readonly served: ServedBatch[] = [];
  private passes = 0;

  constructor(
    readonly x: Uint8Array | Float32Array,
    readonly elementShape: number[],
    readonly y: Float32Array,
    readonly batchSize: number,
    readonly classNames: string[] = ['a', 'b'],
  ) {
    this.size = y.length;
    assert.equal(x.length, this.size * prod(elementShape), 'ArrayDataset: x length');
  }

  async *batches(): AsyncGenerator<Batch> {
    const pass = this.passes++;
    const per = prod(this.elementShape);
    for (let start = 0, index = 0; start < this.size; start += this.batchSize, index++) {
      const n = Math.min(this.batchSize, this.size - start);
      this.served.push({ pass, index, size: n });
      yield {
        x: this.x.slice(start * per, (start + n) * per),
        shape: [n, ...this.elementShape],
        y: this.y.slice(start, start + n),
        keys: Array.from({ length: n }, (_, i) => `example-${start + i}`),
      };
    }
  }
}
