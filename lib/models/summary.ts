import type { DtypePolicyName } from './mixed-precision.js';
import type { ResolvedLayer } from './resolve.js';

export interface ParamCounts {
  total: number;
  trainable: number;
  nonTrainable: number;
}

const count = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

export function countParams(layers: ResolvedLayer[]): ParamCounts {
  let total = 0;
  let trainable = 0;
  for (const layer of layers) {
    const layerTrainable = layer.config.config.trainable !== false;
    for (const w of layer.weights) {
      const n = count(w.shape);
      total += n;
      if (layerTrainable && w.variable) trainable += n;
    }
  }
  return { total, trainable, nonTrainable: total - trainable };
}

const thousands = (n: number): string => n.toLocaleString('en-US');

/**
 * Keras's `model.summary()` table: layer (type), output shape, parameter count, then totals and the
 * dtype policy; a layer whose policy differs from the model's shows its own after its type.
 */
export function formatSummary(
  modelName: string,
  layers: ResolvedLayer[],
  policy: DtypePolicyName,
  layerPolicies: DtypePolicyName[],
): string {
  // Keras's 65-column layout, with the first columns widened (not wrapped) for long names.
  const names = layers.map(
    (l, i) => `${l.config.config.name} (${l.config.class_name})${layerPolicies[i] === policy ? '' : ` [${layerPolicies[i]}]`}`,
  );
  const shapes = layers.map((l) => `(None, ${l.outputShape.join(', ')})`);
  const width = [Math.max(29, ...names.map((n) => n.length + 2)), Math.max(26, ...shapes.map((t) => t.length + 2)), 10];
  const cell = (text: string, w: number) => text.padEnd(w);
  const total = Math.max(65, width[0] + width[1] + width[2]);
  const rule = (ch: string) => ch.repeat(total);
  const lines = [
    `Model: "${modelName}"`,
    rule('_'),
    ` ${cell('Layer (type)', width[0] - 1)}${cell('Output Shape', width[1])}Param #`,
    rule('='),
  ];
  layers.forEach((layer, i) => {
    const params = layer.weights.reduce((a, w) => a + count(w.shape), 0);
    lines.push(` ${cell(names[i], width[0] - 1)}${cell(shapes[i], width[1])}${String(params)}`);
    if (i < layers.length - 1) lines.push('');
  });
  const totals = countParams(layers);
  lines.push(
    rule('='),
    `Total params: ${thousands(totals.total)}`,
    `Trainable params: ${thousands(totals.trainable)}`,
    `Non-trainable params: ${thousands(totals.nonTrainable)}`,
    `Dtype policy: ${policy}`,
    rule('_'),
  );
  return lines.join('\n');
}
