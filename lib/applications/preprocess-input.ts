import { type Preprocessing, preprocessingSpec } from '../models/preprocessing.js';

/**
 * Keras `preprocess_input` for a backbone: raw 0-255 RGB pixels in NHWC layout to model inputs,
 * computed as the engine's first step computes it (`caffe` for VGG16, `tf` for MobileNet-style
 * models, `scale01`, `none`). Models apply this themselves; this is for inputs used elsewhere.
 */
export function preprocessInput(pixels: Uint8Array | Float32Array, mode: Preprocessing): Float32Array {
  const spec = preprocessingSpec(mode);
  if (!spec) return Float32Array.from(pixels);
  if (pixels.length % 3 !== 0) throw new Error(`preprocessInput: ${pixels.length} values are not whole RGB pixels (a multiple of 3)`);
  const scale = typeof spec.scale === 'number' ? spec.scale : 1;
  const offset = spec.offset ?? [0, 0, 0];
  const out = new Float32Array(pixels.length);
  for (let p = 0; p < pixels.length; p += 3) {
    for (let c = 0; c < 3; c++) {
      const from = spec.flipChannels ? 2 - c : c;
      out[p + c] = pixels[p + from]! * scale + offset[c]!;
    }
  }
  return out;
}
