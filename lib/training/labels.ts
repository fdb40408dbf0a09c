import type { FitModel } from './fit-model.js';

/**
 * Labels the compiled loss cannot use are an error, not a silently wrong loss: binary crossentropy
 * takes one value in [0, 1] per example, sparse categorical crossentropy one integer class index in
 * [0, classes), categorical crossentropy one one-hot row of `classes` values (Keras's forms).
 * `where` names the batch, e.g. "epoch 2, step 5"; `first` is the first example's index in it (a shard's start).
 */
export function checkLabels(model: FitModel, y: Float32Array, examples: number, where: string, first = 0): void {
  const loss = model.compiled?.loss;
  if (!loss) return;
  const snake = loss.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const classes = model.outputShape[model.outputShape.length - 1];
  const prefix = `model '${model.name}', ${where}:`;
  if (snake === 'categorical_crossentropy') {
    if (y.length !== examples * classes) {
      const hint = y.length === examples ? '; for integer class indices use sparseCategoricalCrossentropy' : '';
      throw new Error(
        `${prefix} ${loss} needs one-hot labels, ${classes} values per example, but got ${y.length} values for ${examples} examples${hint}`,
      );
    }
    for (let i = 0; i < examples; i++) {
      const row = y.subarray(i * classes, (i + 1) * classes);
      if (row.every((v) => v === 0 || v === 1) && row.reduce((a, b) => a + b, 0) === 1) continue;
      throw new Error(
        `${prefix} label [${row.join(', ')}] of example ${first + i} is not one-hot: ${loss} needs one 1 and ${classes - 1} zeros per example`,
      );
    }
    return;
  }
  const binary = snake === 'binary_crossentropy';
  if (y.length !== examples) {
    const hint = y.length === examples * classes ? '; for one-hot labels use categoricalCrossentropy' : '';
    throw new Error(`${prefix} ${loss} needs one label per example, but got ${y.length} values for ${examples} examples${hint}`);
  }
  for (let i = 0; i < y.length; i++) {
    const label = y[i];
    if (binary ? label >= 0 && label <= 1 : Number.isInteger(label) && label >= 0 && label < classes) continue;
    const rule = binary
      ? `${loss} needs labels in [0, 1]; for more than two classes use sparseCategoricalCrossentropy with a softmax output of one unit per class`
      : `${loss} needs integer class indices in [0, ${classes}) for the model's ${classes} outputs`;
    throw new Error(`model '${model.name}': label ${label} of example ${first + i} in ${where} is out of range: ${rule}`);
  }
}
