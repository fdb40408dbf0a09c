import type { FileHandle } from 'node:fs/promises';

/**
 * Reads exactly `length` bytes at `position` into `target[offset..]`, looping over short reads; a
 * file that ends early is an error naming `what` (a cache file to delete and rebuild, usually).
 */
export async function readExactly(
  handle: FileHandle,
  target: Uint8Array,
  offset: number,
  length: number,
  position: number,
  what: string,
): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(target, offset + done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`${what} ended early (at byte ${position + done}); delete it to rebuild it`);
    done += bytesRead;
  }
}
