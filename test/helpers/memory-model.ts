/**
 * The caching allocator tests' model: Conv2D(32, 3x3, relu) on SIZE x SIZE x 3 -> 2x2 max pool ->
 * dense sigmoid, compiled with Adam and binary crossentropy. Its conv output (32 x 62 x 62 floats,
 * 0.5 MB, per example) is a large block for the allocator already at a batch of a few.
 */
import { native } from '../../lib/engine/native.js';
import { layers } from '../../lib/models/layers.js';
import { Sequential } from '../../lib/models/sequential.js';

export const SIZE = 64;

// these tests need the first conv's output as a large block: the fused first block
// (few-channel-block.h) never allocates it, so it is switched off in the importing test's process
native().setFirstBlockFusion(false);

export function memoryModel(): Sequential {
  const m = new Sequential(
    [
      layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', inputShape: [SIZE, SIZE, 3] }),
      layers.maxPooling2d({ poolSize: 2 }),
      layers.flatten(),
      layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
    { seed: 1 },
  );
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  return m;
}
