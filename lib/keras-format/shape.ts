/** Small shape helpers shared by the weight readers, writers and the matcher. */
import type { Shape } from './config.js';

/** Number of elements of a tensor of this shape (1 for a scalar `[]`). */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((dim, i) => dim === b[i]);
}

/** `[3, 3, 3, 64]`, the way Keras prints shapes, so messages read the same as Keras's. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** True when every dimension is a non-negative integer (rejects NaN, null from JSON, -1). */
export function isValidShape(shape: unknown): shape is Shape {
  return Array.isArray(shape) && shape.every((dim) => Number.isInteger(dim) && dim >= 0);
}
