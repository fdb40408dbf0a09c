/**
 * Minimal BMP reader (sharp/libvips cannot read BMP, TensorFlow's decode_image can): uncompressed
 * 1/4/8-bit palette, 16/24/32-bit, and BI_BITFIELDS. Returns packed RGB.
 */
export interface RawRgb {
  data: Uint8Array;
  width: number;
  height: number;
}

export function isBmp(buf: Uint8Array): boolean {
  return buf.length >= 26 && buf[0] === 0x42 && buf[1] === 0x4d;
}

export function bmpDimensions(buf: Buffer): { width: number; height: number } {
  const dib = buf.readUInt32LE(14);
  if (dib === 12) return { width: buf.readUInt16LE(18), height: buf.readUInt16LE(20) };
  return { width: buf.readInt32LE(18), height: Math.abs(buf.readInt32LE(22)) };
}

export function decodeBmp(buf: Buffer, maxPixels: number): RawRgb {
  if (buf.length < 54) throw new Error('BMP file too short for its headers');
  const dataOffset = buf.readUInt32LE(10);
  const dib = buf.readUInt32LE(14);
  if (dib < 40) throw new Error(`unsupported BMP header (size ${dib})`);
  const width = buf.readInt32LE(18);
  const rawHeight = buf.readInt32LE(22);
  const height = Math.abs(rawHeight);
  const topDown = rawHeight < 0;
  const bpp = buf.readUInt16LE(28);
  const compression = buf.readUInt32LE(30);
  if (width <= 0 || height === 0) throw new Error(`invalid BMP size ${width}x${height}`);
  if (width * height > maxPixels) {
    throw new Error(
      `refused: ${width}x${height} (${((width * height) / 1e6).toFixed(0)} Mpx) exceeds the ${(maxPixels / 1e6).toFixed(0)} Mpx input limit`,
    );
  }
  let masks: [number, number, number] | undefined;
  if (compression === 3 || compression === 6) {
    masks = [buf.readUInt32LE(54), buf.readUInt32LE(58), buf.readUInt32LE(62)];
  } else if (compression !== 0) {
    throw new Error(`unsupported BMP compression ${compression} (only uncompressed and bitfields)`);
  } else if (bpp === 16) {
    masks = [0x7c00, 0x03e0, 0x001f];
  } else if (bpp === 32) {
    masks = [0xff0000, 0xff00, 0xff];
  }
  const colorsUsed = buf.readUInt32LE(46);
  const paletteStart = 14 + dib + (compression === 3 && dib === 40 ? 12 : 0);
  const paletteSize = bpp <= 8 ? colorsUsed || 1 << bpp : 0;
  const stride = Math.ceil((bpp * width) / 32) * 4;
  if (dataOffset + stride * height > buf.length) throw new Error('BMP pixel data is truncated');
  const out = new Uint8Array(width * height * 3);
  // Scales a masked field (e.g. 5 bits) to 0-255.
  const channel = (v: number, mask: number): number => {
    if (mask === 0) return 0;
    const low = (mask & -mask) >>> 0;
    const max = (mask >>> 0) / low;
    return Math.round(((((v & mask) >>> 0) / low) * 255) / max);
  };
  for (let y = 0; y < height; y++) {
    const row = dataOffset + (topDown ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (bpp <= 8) {
        const bitPos = x * bpp;
        const byte = buf[row + (bitPos >> 3)]!;
        const index = (byte >> (8 - bpp - (bitPos & 7))) & ((1 << bpp) - 1);
        if (index >= paletteSize) throw new Error(`BMP palette index ${index} out of range`);
        const p = paletteStart + index * 4;
        out[o] = buf[p + 2]!;
        out[o + 1] = buf[p + 1]!;
        out[o + 2] = buf[p]!;
      } else if (bpp === 24) {
        const p = row + x * 3;
        out[o] = buf[p + 2]!;
        out[o + 1] = buf[p + 1]!;
        out[o + 2] = buf[p]!;
      } else if ((bpp === 16 || bpp === 32) && masks) {
        const v = bpp === 16 ? buf.readUInt16LE(row + x * 2) : buf.readUInt32LE(row + x * 4);
        out[o] = channel(v, masks[0]);
        out[o + 1] = channel(v, masks[1]);
        out[o + 2] = channel(v, masks[2]);
      } else {
        throw new Error(`unsupported BMP bit depth ${bpp}`);
      }
    }
  }
  return { data: out, width, height };
}
