import assert from 'node:assert/strict';
import { test } from 'node:test';
import { convFlopsPerLayer, convLayerRates, roofline } from '../bench/roofline.js';
import { vgg16Layers } from '../lib/applications/vgg16.js';

test('VGG16 convolution FLOPs at 224x224 match the published 15.35 GMAC', () => {
  const flops = convFlopsPerLayer(vgg16Layers([224, 224, 3]), [224, 224, 3]);
  assert.equal(flops.size, 13);
  // block1_conv1: 224 x 224 outputs x 64 filters x 3x3x3 taps, 2 FLOPs each
  assert.equal(flops.get('block1_conv1'), 2 * 224 * 224 * 64 * 27);
  // block5 convolutions run at 14x14 after four pools
  assert.equal(flops.get('block5_conv3'), 2 * 14 * 14 * 512 * 512 * 9);
  const total = [...flops.values()].reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(total / 2 - 15.35e9) < 0.01e9, `total ${total / 2} MAC`);
});

test('per-layer rates: FLOPs x batch over forward seconds, convolutions only', () => {
  const flops = new Map([['c1', 1e9]]);
  const rates = convLayerRates(
    flops,
    [
      { layer: 'c1', forwardMs: 500 },
      { layer: 'pool', forwardMs: 10 },
    ],
    4,
  );
  assert.deepEqual([...rates], [['c1', 8e9]]);
});

test('per-layer rates: a convolution without time of its own counts in the next timed one', () => {
  const flops = new Map([
    ['c1', 1e9],
    ['c2', 3e9],
    ['c3', 2e9],
  ]);
  const rates = convLayerRates(
    flops,
    [
      { layer: 'c1', forwardMs: 0 },
      { layer: 'c2', forwardMs: 1000 },
      { layer: 'pool', forwardMs: 0 },
      { layer: 'c3', forwardMs: 500 },
    ],
    2,
  );
  assert.deepEqual(
    [...rates],
    [
      ['c2', 8e9],
      ['c3', 8e9],
    ],
  );
});

test('roofline: each round against its own roof, the median round reported', () => {
  // 1e9 FLOPs per image, batch 2: a pass of 1 s runs at 2e9 FLOP/s
  const round = (passSeconds: number, best: number) => ({
    rates: new Map([
      ['c1', best / 2],
      ['c2', best],
    ]),
    passSeconds,
  });
  const rounds = [round(1, 4e9), round(2, 2e9), round(0.5, 8e9), round(1, 2.5e9), round(4, 1e9)];
  const r = roofline(rounds, 1e9, 2, null)!;
  // fractions 0.5, 0.5, 0.5, 0.8, 0.5: a slow round slows the pass and its best layer alike
  assert.deepEqual(r.fractions, [0.5, 0.5, 0.5, 0.8, 0.5]);
  assert.equal(r.fraction, 0.5);
  assert.equal(r.source, 'ours, VGG16 c2');
  // a higher external roof sets the denominator where it beats the round's best layer
  const withPytorch = roofline(rounds, 1e9, 2, 5e9)!;
  assert.deepEqual(withPytorch.fractions, [0.4, 0.2, 0.5, 0.4, 0.1]);
  assert.equal(withPytorch.fraction, 0.4);
  assert.equal(withPytorch.roofs[2], 8e9);
  const pytorch = 'PyTorch, one large bf16 3x3 convolution';
  assert.deepEqual(withPytorch.sources, [pytorch, pytorch, 'ours, VGG16 c2', pytorch, pytorch]);
  assert.equal(roofline([], 1e9, 2, 5e9), null);
});
