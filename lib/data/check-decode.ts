import os from 'node:os';
import { decodeImage, DecodeError } from './decode.js';
import { mapPool } from './pool.js';
import { ProgressBar } from '../util/progress-bar.js';
import { describeSourceRef, type ImageSource } from './source.js';

/**
 * Decodes every listed entry (at a small size, nothing cached) and returns the ones that fail,
 * with the reason: what `data info --check-decode` reports.
 */
export async function checkDecode(
  source: ImageSource,
  names: readonly string[],
  opts: { progress?: boolean; size?: number } = {},
): Promise<{ path: string; reason: string }[]> {
  const size = opts.size ?? 32;
  const progress = opts.progress === false || names.length === 0 ? undefined : new ProgressBar({ label: 'checking decode', total: names.length, itemName: 'images' });
  const results = await mapPool(names, Math.max(2, os.availableParallelism()), async (name) => {
    try {
      await decodeImage(await source.readAll(name), size, size);
      return undefined;
    } catch (error) {
      const reason = error instanceof DecodeError ? error.reason : `cannot read: ${(error as Error).message}`;
      return { path: describeSourceRef(source.ref(name)), reason };
    } finally {
      progress?.tick();
    }
  });
  progress?.finish();
  return results.filter((r): r is { path: string; reason: string } => r !== undefined);
}
