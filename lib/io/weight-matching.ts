/**
 * Matches the weights found in a file to the layers a model expects, by layer name, checking
 * the number and shape of every weight. All problems are collected into one error so that a user
 * fixing a file sees everything at once.
 */
import type { LayerWeights, Shape } from '../keras-format/config.js';
import { formatShape, sameShape, shapeSize } from '../keras-format/shape.js';

export interface ExpectedLayerWeights {
  layerName: string;
  /** Shapes in the layer's Keras weight order (kernel, bias, ...); `[]` for layers without weights. */
  shapes: Shape[];
}

export interface MatchOptions {
  /** Named in every message: the file path, usually. */
  source: string;
}

/** Thrown by `matchWeights`; `problems` holds one line per problem. */
export class WeightMismatchError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(
      `${source}: ${problems.length} weight problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'WeightMismatchError';
  }
}

function formatShapes(shapes: readonly Shape[]): string {
  return shapes.length === 0 ? 'none' : shapes.map(formatShape).join(', ');
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/**
 * Returns the found weights in `expected` order (an empty entry for an expected layer without
 * weights that the file does not list, like Keras's pooling layers). Throws a
 * WeightMismatchError listing every missing layer, wrong weight count, wrong shape, and every
 * layer the file has weights for that the model does not have.
 */
export function matchWeights(
  expected: readonly ExpectedLayerWeights[],
  found: readonly LayerWeights[],
  { source }: MatchOptions,
): LayerWeights[] {
  const problems: string[] = [];
  const byName = new Map<string, LayerWeights>();
  for (const layer of found) {
    if (byName.has(layer.layerName)) problems.push(`layer "${layer.layerName}" appears more than once in ${source}`);
    else byName.set(layer.layerName, layer);
  }

  const result: LayerWeights[] = [];
  const expectedNames = new Set<string>();
  for (const { layerName, shapes } of expected) {
    expectedNames.add(layerName);
    const layer = byName.get(layerName);
    if (!layer) {
      if (shapes.length > 0) {
        problems.push(
          `layer "${layerName}": not found in ${source}; the model expects ${plural(shapes.length, 'weight')} with shapes ${formatShapes(shapes)}`,
        );
      }
      result.push({ layerName, weights: [] });
      continue;
    }
    const foundShapes = layer.weights.map((w) => w.shape);
    if (layer.weights.length !== shapes.length) {
      problems.push(
        `layer "${layerName}": ${source} has ${plural(layer.weights.length, 'weight')} with shapes ${formatShapes(foundShapes)}, ` +
          `the model expects ${plural(shapes.length, 'weight')} with shapes ${formatShapes(shapes)}`,
      );
    } else {
      layer.weights.forEach((weight, i) => {
        const want = shapes[i]!;
        if (!sameShape(weight.shape, want)) {
          problems.push(
            `layer "${layerName}" weight ${i} ("${weight.name}"): ${source} has shape ${formatShape(weight.shape)}, the model expects ${formatShape(want)}`,
          );
        } else if (weight.data.length !== shapeSize(want)) {
          problems.push(
            `layer "${layerName}" weight ${i} ("${weight.name}"): shape ${formatShape(want)} needs ${shapeSize(want)} values, the data has ` +
              `${weight.data.length}`,
          );
        }
      });
    }
    result.push(layer);
  }

  for (const layer of found) {
    if (!expectedNames.has(layer.layerName) && layer.weights.length > 0) {
      problems.push(
        `layer "${layer.layerName}": ${source} has ${plural(layer.weights.length, 'weight')} with shapes ${formatShapes(layer.weights.map((w) => w.shape))} ` +
          `but the model has no layer of that name`,
      );
    }
  }

  if (problems.length > 0) throw new WeightMismatchError(source, problems);
  return result;
}
