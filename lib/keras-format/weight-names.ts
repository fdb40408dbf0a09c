/**
 * Keras weight naming. Files name weights differently depending on the writer (`block1_conv1_W_1:0`,
 * `block1_conv1/kernel:0`, `block1_conv1/kernel`, Keras 3 `layers/conv2d/vars/0`); TF.js matches
 * weights to layers by `<layer name>/<weight>` (`conv1/kernel`), so names are normalised to that
 * form when a model is written.
 */

/** Old Keras 1 suffixes (the official VGG16 file still uses them) and their Keras 2 names. */
const KERAS1_SUFFIXES: Record<string, string> = { W: 'kernel', b: 'bias' };

/**
 * The short Keras 2 name of a weight (`kernel`, `bias`, `gamma`, `moving_mean`, ...), from any of
 * the spellings above. Names it cannot interpret come back with only the `:0` suffix removed.
 */
export function shortWeightName(layerName: string, rawName: string): string {
  const name = rawName.replace(/:\d+$/, '');
  const slash = name.lastIndexOf('/');
  if (slash >= 0) return name.slice(slash + 1);
  const prefix = `${layerName}_`;
  if (name.startsWith(prefix)) {
    const suffix = name.slice(prefix.length).replace(/_\d+$/, '');
    const mapped = KERAS1_SUFFIXES[suffix];
    if (mapped) return mapped;
  }
  return name;
}

/** `<layer name>/<short name>`, the name TF.js and tf.keras 2 give a layer's weight. */
export function canonicalWeightName(layerName: string, rawName: string): string {
  return `${layerName}/${shortWeightName(layerName, rawName)}`;
}

/** Keras's `naming.to_snake_case`: `MaxPooling2D` → `max_pooling2d`, `Conv2D` → `conv2d`. */
export function kerasSnakeCase(className: string): string {
  return className
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/**
 * The keys under which Keras 3 `.weights.h5` stores each layer: not the layer name but the
 * snake-cased class name, numbered per class in model order (`conv2d`, `conv2d_1`, ...; Keras
 * `saving_lib._save_container_state`). Pass the model's layers in order, InputLayer included
 * when the model has one (Keras 3 functional models list it).
 */
export function keras3LayerKeys(layers: readonly { class_name: string }[]): string[] {
  const used = new Map<string, number>();
  return layers.map(({ class_name }) => {
    const base = kerasSnakeCase(class_name);
    const seen = used.get(base);
    used.set(base, seen === undefined ? 0 : seen + 1);
    return seen === undefined ? base : `${base}_${seen + 1}`;
  });
}
