/**
 * Keras layer configurations, as stored in Keras `model.json` / TF.js layers models:
 * `{ class_name, config }` per layer. The project describes every model this way, so one format
 * serves built-in models, imported TF.js models, HDF5 weights (matched by layer name), summaries and
 * export. Field names are Keras's snake_case on purpose: these objects round-trip to JSON unchanged.
 */
export type Shape = number[];

export interface LayerConfig {
  class_name: string;
  config: { name: string; trainable?: boolean; [key: string]: unknown };
}

/** `model_config` of a Keras Sequential model. */
export interface SequentialConfig {
  class_name: 'Sequential';
  config: { name: string; layers: LayerConfig[] };
}

/** One weight of a layer in Keras layout (Conv2D kernel HWIO, Dense kernel [in, out], ...). */
export interface WeightTensor {
  /** Keras weight name, e.g. `block1_conv1/kernel`. */
  name: string;
  shape: Shape;
  data: Float32Array;
}

/** Weights grouped by layer name, in the layer's Keras weight order (kernel, bias, ...). */
export interface LayerWeights {
  layerName: string;
  weights: WeightTensor[];
}
