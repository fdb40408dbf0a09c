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

/** Keras's `model.summary()` table: layer (type), output shape, parameter count, then totals. */
export function formatSummary(modelName: string, layers: ResolvedLayer[]): string {
  const width = [29, 26, 10];
  const cell = (text: string, w: number) => (text.length >= w ? text + ' ' : text.padEnd(w));
  const rule = (ch: string) => ch.repeat(65);
  const lines = [`Model: "${modelName}"`, rule('_'), ' ' + cell('Layer (type)', width[0] - 1) + cell('Output Shape', width[1]) + 'Param #', rule('=')];
  layers.forEach((layer, i) => {
    const shape = `(None, ${layer.outputShape.join(', ')})`;
    const params = layer.weights.reduce((a, w) => a + count(w.shape), 0);
    lines.push(' ' + cell(`${layer.config.config.name} (${layer.config.class_name})`, width[0] - 1) + cell(shape, width[1]) + String(params));
    if (i < layers.length - 1) lines.push('');
  });
  const totals = countParams(layers);
  lines.push(rule('='), `Total params: ${thousands(totals.total)}`, `Trainable params: ${thousands(totals.trainable)}`,
    `Non-trainable params: ${thousands(totals.nonTrainable)}`, rule('_'));
  return lines.join('\n');
}
