/**
 * Conversions between raw little/big-endian float bytes and Float32Array. Weight files store raw
 * IEEE floats; copying through a DataView keeps this correct whatever the host byte order and
 * whatever the alignment of the source bytes.
 */

/** Decodes one IEEE 754 half-precision value (Node 20 has no Float16Array). */
export function float16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/**
 * Reads `count` floats of `bytesPerValue` (2, 4 or 8) bytes from `bytes` into a new Float32Array.
 * float64 values are rounded to float32 (Keras weights are float32 in memory anyway).
 */
export function floatsFromBytes(bytes: Uint8Array, bytesPerValue: 2 | 4 | 8, littleEndian: boolean, count: number): Float32Array {
  if (bytes.byteLength < count * bytesPerValue) {
    throw new Error(`need ${count * bytesPerValue} bytes for ${count} values, got ${bytes.byteLength}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, count * bytesPerValue);
  const out = new Float32Array(count);
  if (bytesPerValue === 4) {
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, littleEndian);
  } else if (bytesPerValue === 8) {
    for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, littleEndian);
  } else {
    for (let i = 0; i < count; i++) out[i] = float16ToNumber(view.getUint16(i * 2, littleEndian));
  }
  return out;
}

/** Little-endian float32 bytes of `values` (a fresh buffer, independent of the input). */
export function float32ToLittleEndianBytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return out;
}
