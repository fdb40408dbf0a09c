import sharp, { type FailOnOptions, type Metadata, type Sharp } from 'sharp';
import { bmpDimensions, decodeBmp, isBmp } from './bmp.js';
import { readImageBytes } from './read-file.js';
import { resizeBilinearTf } from './resize.js';
import { describeSourceRef, type SourceRef } from './source.js';
import { readZipEntry } from './zip-source.js';

/** Refuse images above this many pixels (sharp's own default, 0x3FFF²): decompression bombs. */
export const LIMIT_INPUT_PIXELS = 0x3fff * 0x3fff;
/**
 * Up to this size an image is decoded at full resolution and resized exactly as TF does; above it
 * (e.g. a 12000x12000 photo, 432 MB as RGB) sharp resizes in the decoding pipeline, which lets
 * libjpeg shrink on load (DCT scaling), so memory stays bounded; the pixels then differ slightly
 * from TF's (libvips antialiases).
 */
export const FULL_DECODE_MAX_PIXELS = 4096 * 4096;

export class DecodeError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'DecodeError';
  }
}

/** Options of one decode. */
export interface DecodeOptions {
  /** libvips warnings (e.g. JPEG data it tolerated), as sharp reports them. */
  onWarning?: (message: string) => void;
}

/**
 * libvips' message, on one line: its error buffer repeats a loader's complaint once per attempt
 * ("VipsJpeg: premature end of JPEG image" on three lines), and a warning comes with a count line.
 */
export function vipsMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const kept: string[] = [];
  for (const line of message.split('\n').map((l) => l.trim())) {
    if (line && !/^read gave \d+ warnings?$/.test(line) && !kept.some((k) => k.includes(line))) kept.push(line);
  }
  return kept.join('; ');
}

const TRUNCATED = /premature end of JPEG image|premature end of data segment|truncated|unexpected end/i;

/** What fills a decoded cache: bytes in, packed RGB uint8 of `height` x `width` out. */
export type ImageDecoder = (input: Buffer, height: number, width: number) => Promise<Uint8Array>;

/** Decodes any supported image to packed RGB uint8 of exactly `height` x `width` (aspect ratio not kept). */
export async function decodeImage(input: Buffer, height: number, width: number, options: DecodeOptions = {}): Promise<Uint8Array> {
  if (input.length === 0) throw new DecodeError('empty file (0 bytes)');
  if (isBmp(input)) {
    let raw;
    try {
      raw = decodeBmp(input, LIMIT_INPUT_PIXELS);
    } catch (error) {
      throw new DecodeError(`BMP: ${(error as Error).message}`);
    }
    return resizeBilinearTf(raw.data, raw.height, raw.width, 3, height, width);
  }
  let meta: Metadata;
  try {
    // Header only: no pixels are decoded here, so no limit is needed yet.
    meta = await watched(sharp(input, { limitInputPixels: false }), options).metadata();
  } catch (error) {
    throw new DecodeError(`not a readable image: ${vipsMessage(error)}`);
  }
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (w * h > LIMIT_INPUT_PIXELS) {
    throw new DecodeError(
      `refused: ${w}x${h} (${Math.round((w * h) / 1e6)} Mpx) exceeds the ${Math.round(LIMIT_INPUT_PIXELS / 1e6)} Mpx limit ` +
        `(limitInputPixels); likely a decompression bomb`,
    );
  }
  const full = w * h <= FULL_DECODE_MAX_PIXELS;
  if (meta.format !== 'jpeg') {
    return run(input, full, height, width, 'truncated', options).catch((error: Error) => {
      throw new DecodeError(
        TRUNCATED.test(error.message) ? `truncated file: ${vipsMessage(error)}` : `decode failed: ${vipsMessage(error)}`,
      );
    });
  }
  // Lenient with JPEG warnings ("extraneous bytes" etc.), as TF and tfds are.
  if (hasJpegEnd(input)) {
    return run(input, full, height, width, 'none', options).catch((error: Error) => {
      throw new DecodeError(`decode failed: ${vipsMessage(error)}`);
    });
  }
  return decodeJpegWithoutEnd(input, full, height, width, options);
}

/**
 * True when an EOI marker follows the last SOS marker. Entropy-coded data never contains FF D9
 * or FF DA (0xFF bytes are stuffed), and embedded EXIF thumbnails come before the main scan.
 */
export function hasJpegEnd(buf: Buffer): boolean {
  return buf.lastIndexOf(EOI) > buf.lastIndexOf(SOS);
}
const EOI = Buffer.from([0xff, 0xd9]);
const SOS = Buffer.from([0xff, 0xda]);

/**
 * The JPEG data stops without an EOI marker. Harmless when only the marker is missing; but when
 * the scan itself was cut, libjpeg paints the missing rows grey. The two are told apart by the
 * pixels, not by libvips' messages (its error buffer is shared by all threads, so under
 * concurrency a message can belong to another image): padding the data with filler bytes before
 * the marker changes nothing when the scan is complete (the filler is skipped as extraneous
 * bytes), but changes the decoded pixels when the filler is consumed as scan data.
 */
async function decodeJpegWithoutEnd(
  input: Buffer,
  full: boolean,
  height: number,
  width: number,
  options: DecodeOptions,
): Promise<Uint8Array> {
  const variants = [Buffer.alloc(0), Buffer.alloc(256, 0x55), Buffer.alloc(256, 0xaa)].map((fill) => Buffer.concat([input, fill, EOI]));
  let decoded: Uint8Array[];
  try {
    decoded = await Promise.all(variants.map((v) => run(v, full, height, width, 'none', options)));
  } catch (error) {
    throw new DecodeError(`decode failed: ${vipsMessage(error)}`);
  }
  const [plain, a, b] = decoded as [Uint8Array, Uint8Array, Uint8Array];
  if (!Buffer.from(plain).equals(Buffer.from(a)) || !Buffer.from(plain).equals(Buffer.from(b))) {
    throw new DecodeError('truncated JPEG: the image data stops before the last rows (file cut short); only part of it would decode');
  }
  return plain;
}

function watched(pipeline: Sharp, options: DecodeOptions): Sharp {
  if (options.onWarning) {
    pipeline.on('warning', (message: string) => {
      const text = vipsMessage(message);
      if (text) options.onWarning!(text);
    });
  }
  return pipeline;
}

async function run(
  input: Buffer,
  full: boolean,
  height: number,
  width: number,
  failOn: FailOnOptions,
  options: DecodeOptions,
): Promise<Uint8Array> {
  // No autoOrient: TF's decoders ignore EXIF orientation. First frame only for GIF/TIFF/WebP.
  let pipeline = watched(sharp(input, { failOn, limitInputPixels: LIMIT_INPUT_PIXELS }), options);
  if (!full) pipeline = pipeline.resize(width, height, { fit: 'fill', kernel: 'linear' });
  // Alpha is dropped, not composited (TF decode with channels=3); grey and CMYK become sRGB.
  const { data, info } = await pipeline.removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
    throw new Error(`unexpected decoder output: ${info.width}x${info.height}x${info.channels}`);
  }
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.length);
  return full ? resizeBilinearTf(pixels, info.height, info.width, 3, height, width) : pixels;
}

/** Decodes a user's image file (e.g. for `predict`) to RGB uint8 height x width x 3. */
export async function decodeImageFile(file: string, height: number, width: number): Promise<Uint8Array> {
  const bytes = await readImageBytes(file);
  try {
    return await decodeImage(bytes, height, width);
  } catch (error) {
    if (error instanceof DecodeError) throw new DecodeError(`${file}: ${error.reason}`);
    throw error;
  }
}

export async function readSourceRef(ref: SourceRef): Promise<Buffer> {
  return ref.kind === 'file' ? readImageBytes(ref.path) : readZipEntry(ref.archive, ref.entry);
}

/**
 * A small JPEG (longest side `size`, aspect ratio kept, EXIF orientation applied for humans) for a
 * report gallery. `source` is a file path or a SourceRef (file or archive entry).
 */
export async function thumbnailJpeg(source: SourceRef | string, size: number): Promise<Buffer> {
  const ref: SourceRef = typeof source === 'string' ? { kind: 'file', path: source } : source;
  const bytes = await readSourceRef(ref);
  if (bytes.length === 0) throw new DecodeError(`${describeSourceRef(ref)}: empty file (0 bytes)`);
  try {
    if (isBmp(bytes)) {
      const { width, height } = bmpDimensions(bytes);
      const raw = decodeBmp(bytes, LIMIT_INPUT_PIXELS);
      return await sharp(raw.data, { raw: { width, height, channels: 3 } })
        .resize(size, size, { fit: 'inside' })
        .jpeg({ quality: 80 })
        .toBuffer();
    }
    return await sharp(bytes, { failOn: 'none', limitInputPixels: LIMIT_INPUT_PIXELS })
      .autoOrient()
      .resize(size, size, { fit: 'inside' })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .jpeg({ quality: 80 })
      .toBuffer();
  } catch (error) {
    throw new DecodeError(`${describeSourceRef(ref)}: cannot make a thumbnail (${(error as Error).message})`);
  }
}
