/**
 * The TensorFlow.js layers-model format (`model.json` + binary weight shards), as written by
 * `tensorflowjs_converter` and read by `tf.loadLayersModel`. It is also this project's own save
 * format: JSON plus raw little-endian float32, nothing executable.
 */

export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  /** Present on quantized weights (`--quantize_uint8` etc.): not supported here. */
  quantization?: { dtype?: string; [key: string]: unknown };
}

export interface TfjsWeightsGroup {
  /** Shard files, relative to model.json; a group's tensors are concatenated across its shards. */
  paths: string[];
  weights: TfjsWeightSpec[];
}

export interface TfjsModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  /** Either the Keras model config itself or `{ model_config, keras_version, backend, ... }`. */
  modelTopology: Record<string, unknown>;
  weightsManifest: TfjsWeightsGroup[];
}

export const MODEL_JSON = 'model.json';

/** The TF.js converter's default shard size (`--weight_shard_size_bytes`): 4 MiB. */
export const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;

/** TF.js converter shard naming: `group1-shard1of3.bin`. */
export function shardFileName(group: number, shard: number, shardCount: number): string {
  return `group${group}-shard${shard}of${shardCount}.bin`;
}
