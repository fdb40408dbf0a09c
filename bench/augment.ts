/**
 * Cost of data augmentation per batch: the default `--augment` policy (RandomFlip, RandomRotation,
 * RandomZoom) on a 64x300x300x3 batch of pixels, as the engine runs it in a training step
 * (features of augmented images, without the model behind). `quick`: an 8x64x64x3 smoke run.
 */
import { augmentationLayers, DEFAULT_AUGMENT } from '../lib/experiment/augment-policy.js';
import { Sequential } from '../lib/models/sequential.js';

export interface AugmentBench {
  augmentMsPerBatch: number;
  batch: number[];
  policy: string;
  batches: number;
}

export async function benchAugmentation(quick: boolean): Promise<AugmentBench> {
  const [n, size, batches] = quick ? [8, 64, 2] : [64, 300, 5];
  const shape = [n, size, size, 3];
  const model = new Sequential(augmentationLayers(DEFAULT_AUGMENT), { inputShape: shape.slice(1), preprocessing: 'none', seed: 1 });
  const pixels = new Uint8Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  await model.predict(pixels, shape, { augment: true }); // warm-up
  const start = performance.now();
  for (let b = 0; b < batches; b++) await model.predict(pixels, shape, { augment: true });
  return { augmentMsPerBatch: (performance.now() - start) / batches, batch: shape, policy: DEFAULT_AUGMENT, batches };
}
