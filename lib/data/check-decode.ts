import os from 'node:os';
import { ProgressBar } from '../util/progress-bar.js';
import { DecodeError, decodeImage } from './decode.js';
import { mapPool } from './pool.js';
import { describeSourceRef, type ImageSource } from './source.js';

export interface DecodeCheck {
  /** entries that cannot be decoded, with the reason. */
  failures: { path: string; reason: string }[];
  /** entries that decode, but with libvips warnings (distinct messages, in order). */
  warnings: { path: string; messages: string[] }[];
}

/**
 * Decodes every listed entry (at a small size, nothing cached): what `data info --check-decode`
 * reports. libvips keeps one error buffer and one warning queue for all its threads, so under
 * concurrency a message can surface in another image's decode. The concurrent pass only decides
 * which images fail or may have warned (every image in flight when a warning arrived); those are
 * decoded again one at a time, so each message is attributed to its own file.
 */
export async function checkDecode(
  source: ImageSource,
  names: readonly string[],
  opts: { progress?: boolean; size?: number } = {},
): Promise<DecodeCheck> {
  const size = opts.size ?? 32;
  const progress =
    opts.progress === false || names.length === 0
      ? undefined
      : new ProgressBar({ label: 'checking decode', total: names.length, itemName: 'images' });
  const inFlight = new Set<string>();
  const recheck = new Set<string>();
  const onWarning = () => {
    for (const name of inFlight) recheck.add(name);
  };
  await mapPool(names, Math.max(2, os.availableParallelism()), async (name) => {
    inFlight.add(name);
    try {
      await decodeImage(await source.readAll(name), size, size, { onWarning });
    } catch {
      recheck.add(name);
    } finally {
      inFlight.delete(name);
      progress?.tick();
    }
  });
  progress?.finish();
  const result: DecodeCheck = { failures: [], warnings: [] };
  for (const name of names.filter((n) => recheck.has(n))) {
    const messages: string[] = [];
    const path = describeSourceRef(source.ref(name));
    try {
      await decodeImage(await source.readAll(name), size, size, { onWarning: (m) => messages.push(m) });
    } catch (error) {
      const reason = error instanceof DecodeError ? error.reason : `cannot read: ${(error as Error).message}`;
      result.failures.push({ path, reason });
      continue;
    }
    const distinct = [...new Set(messages)];
    if (distinct.length) result.warnings.push({ path, messages: distinct });
  }
  return result;
}
