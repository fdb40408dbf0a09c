/** mulberry32: a tiny, well-mixed 32-bit PRNG, so orders are reproducible from a seed on any platform. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates shuffle of a copy, driven by mulberry32(seed). */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  const out = items.slice();
  const rand = mulberry32(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** The order of one pass over `size` examples: shuffled by (seed, pass), or undefined (split order) without a seed. */
export function passOrder(size: number, seed: number | undefined, pass: number): number[] | undefined {
  if (seed === undefined) return undefined;
  return seededShuffle(
    Array.from({ length: size }, (_, i) => i),
    (seed + pass) >>> 0,
  );
}
