/** Synthetic inputs for the engine measurements (bench/serve.ts): speed does not depend on pixel values. */

/** Deterministic pseudo-random bytes (xorshift): synthetic pixels without a slow Math.random loop. */
export function syntheticPixels(n: number, seed = 12345): Uint8Array {
  const out = new Uint8Array(n);
  const words = new Uint32Array(out.buffer, 0, Math.floor(n / 4));
  let s = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    words[i] = s;
  }
  for (let i = words.length * 4; i < n; i++) out[i] = (i * 131) & 255;
  return out;
}
