/**
 * One training step of a freshly built model with an engine switch on and then off, on the same
 * batch: what the tests of a switched kernel compare, to show the switch changes the path and not
 * the result.
 */
import type { StepOutput } from '../../lib/engine/native.js';
import type { Sequential } from '../../lib/models/sequential.js';
import { withSetting } from './engine-settings.js';
import { prod, Rng } from './naive.js';

/** One run's loss and the chosen layers' weights (flattened, in getLayerWeights order). */
export interface SwitchedStep {
  loss: number;
  /** after the step */
  weights: number[][];
  /** before minus after the step: SGD with learning rate 1 moves each weight by minus its gradient */
  gradients: number[][];
}

export type StepRunner = (m: Sequential, x: Uint8Array, shape: number[], y: Float32Array) => Promise<StepOutput>;

/**
 * Builds, compiles (SGD, learning rate 1, binary crossentropy) and trains `build()` one step on 4
 * random uint8 images of `image` ([h, w, c], drawn from `seed`) labelled 0, 1, 1, 0: once with
 * `set(true)`, once with `set(false)`, the setting put back afterwards. `step` runs the step.
 */
export async function trainStepOnAndOff(
  set: (on: boolean) => boolean,
  build: () => Sequential,
  { seed, image, layers }: { seed: number; image: [number, number, number]; layers: number[] },
  step: StepRunner = (m, x, shape, y) => m.engine.trainStep(x, shape, y, 0),
): Promise<{ on: SwitchedStep; off: SwitchedStep }> {
  const rng = new Rng(seed);
  const shape = [4, ...image];
  const x = Uint8Array.from({ length: prod(shape) }, () => rng.int(256));
  const y = Float32Array.from([0, 1, 1, 0]);
  const run = (on: boolean) =>
    withSetting(set, on, async (): Promise<SwitchedStep> => {
      const m = build();
      m.compile({ optimizer: { sgd: { learningRate: 1 } }, loss: 'binaryCrossentropy' });
      const weights = () => layers.flatMap((i) => m.getLayerWeights(i).map((t) => Array.from(t.data)));
      const before = weights();
      const { loss } = await step(m, x, shape, y);
      const after = weights();
      return { loss, weights: after, gradients: after.map((w, i) => w.map((v, j) => before[i]![j]! - v)) };
    });
  return { on: await run(true), off: await run(false) };
}
