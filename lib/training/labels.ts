import type { FitModel } from './fit-model.js';

/**
 * Labels the compiled loss cannot use are an error, not a silently wrong loss: binary crossentropy
 * takes values in [0, 1], (sparse) categorical crossentropy integer class indices in [0, classes).
 * `where` names the batch, e.g. "epoch 2, step 5".
 */
export function checkLabels(model: FitModel, y: Float32Array, where: string): void {
  const loss = model.compiled?.loss;
  if (!loss) return;
  const binary = loss === 'binaryCrossentropy' || loss === 'binary_crossentropy';
  const classes = model.outputShape[model.outputShape.length - 1];
  for (let i = 0; i < y.length; i++) {
    const label = y[i];
    if (binary ? label >= 0 && label <= 1 : Number.isInteger(label) && label >= 0 && label < classes) continue;
    const rule = binary
      ? `${loss} needs labels in [0, 1]; for more than two classes use categoricalCrossentropy with a softmax output of one unit per class`
      : `${loss} needs integer class indices in [0, ${classes}) for the model's ${classes} outputs`;
    throw new Error(`model '${model.name}': label ${label} of example ${i} in ${where} is out of range: ${rule}`);
  }
}
