import { createHash } from 'node:crypto';

/**
 * tfds orders examples by `int(md5(salt + key).hexdigest(), 16)` ascending (core/hashing.py,
 * core/shuffle.py; the salt is the split name). md5 hex digests all have 32 digits, so comparing
 * them as strings gives the same order as comparing the integers.
 */
export function tfdsHash(key: string, salt = 'train'): string {
  return createHash('md5')
    .update(Buffer.from(salt + key, 'utf8'))
    .digest('hex');
}

/** Returns a new array in tfds order; `keyOf` gives the example key (the archive entry name). */
export function sortInTfdsOrder<T>(items: readonly T[], keyOf: (item: T) => string, salt = 'train'): T[] {
  const decorated = items.map((item) => ({ item, hash: tfdsHash(keyOf(item), salt) }));
  decorated.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
  return decorated.map((d) => d.item);
}
