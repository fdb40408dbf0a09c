import type { LayerConfig } from '../keras-format/config.js';
import { layers } from '../models/layers.js';

/**
 * `compare --augment`: a comma-separated list of augmentations, each `name` or `name=value`,
 * turned into Keras augmentation layers placed before each model. `default` is
 * DEFAULT_AUGMENT, close to Chollet's cats-vs-dogs recipe (Deep Learning with Python, ch. 8).
 */
export const DEFAULT_AUGMENT = 'flip,rotation=0.1,zoom=0.1';

const ITEMS: Record<string, { help: string; build: (value: string | undefined, name: string) => LayerConfig }> = {
  flip: {
    help: 'flip[=horizontal|vertical|horizontal_and_vertical] (default horizontal)',
    build: (v) => {
      const mode = v ?? 'horizontal';
      if (!['horizontal', 'vertical', 'horizontal_and_vertical'].includes(mode)) {
        throw new Error(`--augment: flip takes horizontal, vertical or horizontal_and_vertical (got '${mode}')`);
      }
      return layers.randomFlip({ mode: mode as 'horizontal' });
    },
  },
  rotation: { help: 'rotation=F (fraction of a full turn)', build: (v, n) => layers.randomRotation({ factor: factor(v, n) }) },
  zoom: { help: 'zoom=F (fraction of the size)', build: (v, n) => layers.randomZoom({ heightFactor: factor(v, n) }) },
  translation: {
    help: 'translation=F (fraction of height and width)',
    build: (v, n) => layers.randomTranslation({ heightFactor: factor(v, n), widthFactor: factor(v, n) }),
  },
  contrast: { help: 'contrast=F', build: (v, n) => layers.randomContrast({ factor: factor(v, n) }) },
  brightness: { help: 'brightness=F (fraction of 0-255)', build: (v, n) => layers.randomBrightness({ factor: factor(v, n) }) },
};

function factor(value: string | undefined, name: string): number {
  const f = Number(value);
  if (value === undefined || !Number.isFinite(f) || f < 0)
    throw new Error(`--augment: ${name} needs a non-negative number, e.g. ${name}=0.1 (got '${value ?? ''}')`);
  return f;
}

/** The layers of a policy; errors name the bad item and list the valid ones. */
export function augmentationLayers(policy: string): LayerConfig[] {
  const text = policy.trim() === 'default' ? DEFAULT_AUGMENT : policy;
  return text.split(',').map((item) => {
    const [name, value] = item.trim().split('=', 2) as [string, string | undefined];
    const entry = Object.hasOwn(ITEMS, name) ? ITEMS[name] : undefined;
    if (!entry) {
      throw new Error(
        `--augment: unknown augmentation '${name}' (use default, or a list of: ${Object.values(ITEMS)
          .map((i) => i.help)
          .join(', ')})`,
      );
    }
    return entry.build(value, name);
  });
}
