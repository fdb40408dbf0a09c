/**
 * Test hook, loaded with `node --import` into a CLI child process (see `runCli`'s `stopAfterEpoch`):
 * every fit gets one more callback that interrupts the run, as Ctrl-C would, after epoch N (1-based,
 * counted over the model's whole training) of the first model to reach it. N comes from
 * TRANSFERLAB_TEST_STOP_AFTER_EPOCH, read here only.
 */

import { InterruptedError } from '../../lib/experiment/train-model.js';
import { Sequential } from '../../lib/models/sequential.js';
import type { FitOptions } from '../../lib/training/fit.js';

const stopAfter = Number(process.env.TRANSFERLAB_TEST_STOP_AFTER_EPOCH);
if (!Number.isInteger(stopAfter) || stopAfter < 1)
  throw new Error(`TRANSFERLAB_TEST_STOP_AFTER_EPOCH must be an integer >= 1, got '${process.env.TRANSFERLAB_TEST_STOP_AFTER_EPOCH}'`);

const fit = Sequential.prototype.fit;
Sequential.prototype.fit = function (this: Sequential, data, options: FitOptions = {}) {
  const stop = {
    onEpochEnd(epoch: number): void {
      if (epoch + 1 >= stopAfter) throw new InterruptedError(`stopped after epoch ${epoch + 1} (TRANSFERLAB_TEST_STOP_AFTER_EPOCH)`);
    },
  };
  return fit.call(this, data, { ...options, callbacks: [...(options.callbacks ?? []), stop] });
};
