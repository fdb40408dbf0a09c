/** The line protocol of the warm bench processes (bench/serve.ts, bench/pytorch_serve.py). */

export interface ServeCommand {
  op: 'setup' | 'run' | 'layerTimes' | 'stats' | 'roof' | 'fusion' | 'amx' | 'dnnl' | 'stretch' | 'amxPeak';
  workload?: 'cnn' | 'cnn-predict' | 'vgg16';
  batch?: number;
  size?: number;
  threads?: number;
  precision?: 'fp32' | 'bf16';
  steps?: number;
  /** roof: the batch of the bf16 convolution that measures the compute roof */
  n?: number;
  /**
   * fusion: the fused first conv block (src/few-channel-block.h) on or off; amx: the AMX kernels (src/amx.h) on or off;
   * dnnl: convolutions through oneDNN directly (src/dnnl-conv.h, src/dnnl-conv-train.h) on or off
   */
  on?: boolean;
}

/** Mean milliseconds per step of one layer (Keras name), or of "(input)", "(loss)", "(optimizer)". */
export interface LayerTime {
  layer: string;
  forwardMs: number;
  backwardMs: number;
}
