/** tfds cats_vs_dogs keeps a file only when `b"JFIF"` occurs in `ZipExtFile.peek(512)`. */
export const JFIF_WINDOW = 512;
const MARKER = Buffer.from('JFIF', 'latin1');

export function hasJfifMarker(head: Uint8Array): boolean {
  const window = Buffer.from(head.buffer, head.byteOffset, Math.min(head.byteLength, JFIF_WINDOW));
  return window.indexOf(MARKER) !== -1;
}
