import sharp from 'sharp';
import { decodeImage, readSourceRef } from '../data/decode.js';
import type { SourceRef } from '../data/index.js';
import { gradCam } from '../models/grad-cam.js';
import type { Sequential } from '../models/sequential.js';

/** Side of the overlay PNGs, as the gallery's thumbnails. */
const OVERLAY_SIZE = 128;
/** Heat map opacity over the image. */
const HEAT_ALPHA = 0.45;
/** Images per engine call: a pretrained base keeps every activation of the batch for the gradient. */
const BATCH = 8;

/**
 * Grad-CAM overlays (PNG) of images for a class each: the image as the model saw it (decoded and
 * resized to its input), under the heat map upsampled bilinearly and coloured from blue (0) to red (1).
 */
export async function gradCamOverlays(model: Sequential, picks: { ref: SourceRef; cls: number }[], layer?: number): Promise<Buffer[]> {
  const [height, width] = model.inputShape as [number, number, number];
  const out: Buffer[] = [];
  for (let start = 0; start < picks.length; start += BATCH) {
    const batch = picks.slice(start, start + BATCH);
    const images = await Promise.all(batch.map(async (p) => decodeImage(await readSourceRef(p.ref), height, width)));
    const x = new Uint8Array(images.length * height * width * 3);
    images.forEach((image, i) => x.set(image, i * image.length));
    const cams = gradCam(
      model,
      x,
      [images.length, height, width, 3],
      batch.map((p) => p.cls),
      layer,
    );
    for (const [i, image] of images.entries()) out.push(await overlay(image, height, width, cams.maps[i]!, cams.height, cams.width));
  }
  return out;
}

async function overlay(
  image: Uint8Array,
  height: number,
  width: number,
  map: Float32Array,
  mapHeight: number,
  mapWidth: number,
): Promise<Buffer> {
  const base = await sharp(image, { raw: { width, height, channels: 3 } })
    .resize(OVERLAY_SIZE, OVERLAY_SIZE, { fit: 'fill' })
    .raw()
    .toBuffer();
  const grey = Uint8Array.from(map, (v) => Math.round(v * 255));
  const heat = await sharp(grey, { raw: { width: mapWidth, height: mapHeight, channels: 1 } })
    .resize(OVERLAY_SIZE, OVERLAY_SIZE, { fit: 'fill', kernel: 'linear' })
    .extractChannel(0)
    .raw()
    .toBuffer();
  const rgb = Buffer.alloc(OVERLAY_SIZE * OVERLAY_SIZE * 3);
  for (let p = 0; p < OVERLAY_SIZE * OVERLAY_SIZE; p++) {
    const colour = jet(heat[p]! / 255);
    for (let c = 0; c < 3; c++) rgb[p * 3 + c] = Math.round(base[p * 3 + c]! * (1 - HEAT_ALPHA) + colour[c]! * HEAT_ALPHA);
  }
  return sharp(rgb, { raw: { width: OVERLAY_SIZE, height: OVERLAY_SIZE, channels: 3 } })
    .png()
    .toBuffer();
}

/** The jet colour map (blue, cyan, yellow, red), as Grad-CAM figures are usually drawn. */
function jet(t: number): [number, number, number] {
  const channel = (centre: number) => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * t - centre))));
  return [channel(3), channel(2), channel(1)];
}
