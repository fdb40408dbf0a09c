import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { capThreads } from './threads.js';

/** Layer description the native interpreter runs (resolved from Keras configs by lib/models). */
export interface EngineLayerSpec {
  kind:
    | 'conv2d'
    | 'maxpool'
    | 'avgpool'
    | 'flatten'
    | 'dense'
    | 'dropout'
    | 'activation'
    | 'batchnorm'
    | 'zeropad'
    | 'gap'
    | 'reshape'
    | 'rescale'
    | 'augment';
  name: string;
  className: string;
  trainable?: boolean;
  /** Keras dtype policy the layer computes under (default float32). */
  dtype?: 'float32' | 'mixed_bfloat16';
  /** Keras shape (without the batch axis) the layer accepts; the engine checks inputs against it. */
  inputShape?: number[];
  activation?: string;
  alpha?: number;
  inChannels?: number;
  filters?: number;
  depthwise?: boolean;
  depthMultiplier?: number;
  useBias?: boolean;
  kernel?: number[];
  strides?: number[];
  dilation?: number[];
  /** top, bottom, left, right */
  pad?: number[];
  pool?: number[];
  inFeatures?: number;
  units?: number;
  rate?: number;
  epsilon?: number;
  momentum?: number;
  center?: boolean;
  scale?: number | boolean;
  targetShape?: number[];
  offset?: number[];
  flipChannels?: boolean;
  /** a Keras random preprocessing layer (kind 'augment'). */
  augment?: AugmentEngineSpec;
}

/** Draw ranges and sampling of one augmentation layer, resolved from its Keras config (lib/models/augmentation.ts). */
export interface AugmentEngineSpec {
  op: 'flip' | 'rotation' | 'zoom' | 'translation' | 'contrast' | 'brightness';
  /** RandomFlip */
  mode?: 'horizontal' | 'vertical' | 'horizontal_and_vertical';
  /** rotation in turns (fraction of 2π), zoom / translation height fractions, contrast or brightness factors */
  lower?: number;
  upper?: number;
  /** zoom / translation width fractions; a zoom without them reuses the height draw */
  widthLower?: number;
  widthUpper?: number;
  fillMode?: 'reflect' | 'wrap' | 'nearest' | 'constant';
  interpolation?: 'bilinear' | 'nearest';
  fillValue?: number;
  rangeLow?: number;
  rangeHigh?: number;
  seed: number;
}

/** Where a model's tensors live: 'auto' is cuda when this build and machine have it, else cpu. */
export type DeviceName = 'cpu' | 'cuda' | `cuda:${number}` | 'auto';

export interface StepOutput {
  loss: number;
  correct: number;
  output?: Float32Array;
  shape?: number[];
}

/** The optimizer's slots per weight: Adam (m, v), SGD (velocity), RMSprop (mean square[, mean gradient][, momentum]). */
export interface OptimizerState {
  optimizer: string;
  iterations: number;
  moments: { layer: number; param: number; slots: Float32Array[] }[];
}

export interface NativeModel {
  getWeights(layer: number): Float32Array[];
  setWeights(layer: number, weights: Float32Array[]): void;
  setTrainable(layer: number, trainable: boolean): void;
  setDtypePolicy(layer: number, policy: 'float32' | 'mixed_bfloat16'): void;
  compile(options: { loss: string; optimizer?: string } & Record<string, number | boolean | string>): void;
  /** dataParallel: average the step over the process group (loss and correct count come back global). */
  trainStep(x: Uint8Array | Float32Array, shape: number[], y: Float32Array, fromLayer: number, dataParallel?: boolean): Promise<StepOutput>;
  evaluate(x: Uint8Array | Float32Array, shape: number[], y: Float32Array, fromLayer: number): Promise<Required<StepOutput>>;
  predict(
    x: Uint8Array | Float32Array,
    shape: number[],
    fromLayer: number,
    toLayer: number,
    /** augmentation layers draw as in training (the rest infers): features of augmented images */
    augment?: boolean,
  ): Promise<{ output: Float32Array; shape: number[] }>;
  getOptimizerState(): OptimizerState;
  setOptimizerState(state: OptimizerState): void;
  /**
   * Grad-CAM's engine half: the output of engine layers [0, toLayer) on x (NHWC) and the gradient of
   * each example's class score (the last layer before its activation; -z for class 0 of one sigmoid
   * unit) with respect to it. Synchronous, for a few images.
   */
  gradCam(
    x: Uint8Array | Float32Array,
    shape: number[],
    toLayer: number,
    classes: number[],
  ): { featureMap: Float32Array; gradient: Float32Array; shape: number[] };
  /** the optimizer's rate for the next steps (schedules and ReduceLROnPlateau set it). */
  setLearningRate(rate: number): void;
  /** the optimizer's update count (Keras `optimizer.iterations`), which schedules are evaluated at. */
  iterations(): number;
}

export interface NativeBinding {
  /** `device`: 'cpu', 'cuda', 'cuda:N' or 'auto' (src/device.cc); weights are initialised on the CPU, then moved. */
  NativeModel: new (
    layers: EngineLayerSpec[],
    options: { seed?: number; device?: string },
  ) => NativeModel;
  info(): {
    torchVersion: string;
    threads: number;
    parallelInfo: string;
    mkldnn: boolean;
    cuda: boolean;
    /** the caching CPU allocator: bytes kept for reuse, and large allocations served from / not from the cache */
    allocatorCachedBytes: number;
    allocatorHits: number;
    allocatorMisses: number;
    /** whether inference convolutions call oneDNN directly (src/dnnl-conv.cc; built with libdnnl-dev), and its version ('' without) */
    dnnl: boolean;
    dnnlVersion: string;
    /** forward convolutions run through oneDNN directly so far, inference and training (0 without it) */
    dnnlCalls: number;
    /** whether the CPU computes bfloat16 natively (avx512_bf16 / amx_bf16), and what it has or lacks */
    bf16Supported: boolean;
    bf16Reason: string;
    /** whether the hand-written mixed_bfloat16 kernels may use AMX tiles here (src/amx.h), and why not */
    amx: boolean;
    amxReason: string;
    /** Conv2D(relu) + MaxPooling2D pairs run on AMX tiles so far (mixed_bfloat16 inference, src/conv-pool-amx.cc) */
    amxConvPoolCalls: number;
    /** few-channel Conv2Ds run straight into the Conv2D(relu) + MaxPooling2D pair after them (VGG16's block 1, src/conv-pool-amx.cc) */
    amxConvIntoPairCalls: number;
    /** few-channel Conv2Ds without a pool run on AMX tiles so far (mixed_bfloat16 inference, src/few-channel-block.cc) */
    amxFewChannelConvCalls: number;
    /** float32 stretches (inference or training) of Winograd convolutions and pools run in oneDNN's blocked layout so far (src/blocked-stretch.cc) */
    blockedStretches: number;
  };
  /** Returns the caching allocator's kept blocks to the system (a new workload needs other sizes). */
  emptyCache(): void;
  /** Intra-op threads (0 = all cores); more than the machine's cores are capped, with a process warning. */
  setThreads(threads: number): void;
  manualSeed(seed: number): void;
  /** Bench only: record per-layer forward/backward times of train steps (and predicts) from now on. */
  setLayerTiming(enabled: boolean): void;
  /** The times recorded since the last call, in model order, then cleared. */
  takeLayerTimes(): { layer: string; forwardSeconds: number; backwardSeconds: number; forwardCalls: number; backwardCalls: number }[];
  /**
   * Bench and tests only: the budget for the largest activation of a chunk of rows where layers run
   * without gradients (inference, a frozen base while training); Infinity runs whole batches.
   * Returns the previous budget (default 512 MiB).
   */
  setForwardChunkBytes(bytes: number): number;
  /**
   * Bench and tests only: whether a model's first Conv2D(relu) + 2x2 MaxPooling2D on a few-channel
   * input runs as one fused kernel (src/few-channel-block.h; on by default) or as today's conv then
   * pool. Returns the previous setting.
   */
  setFirstBlockFusion(on: boolean): boolean;
  /**
   * Bench and tests only: whether the hand-written mixed_bfloat16 kernels use AMX tiles where the
   * CPU has them (`info().amx`; on by default) or their AVX-512 / AVX2 code. Returns the previous setting.
   */
  setAmx(on: boolean): boolean;
  /** Bench only: the bfloat16 FLOP/s of the AMX tiles alone on every thread (no memory traffic), 0 without AMX. */
  amxPeakFlops(): number;
  /**
   * The algorithm float32 convolutions ask oneDNN for (process-wide): 'auto' (the default: Winograd
   * for 3x3 layers with >= 16 channels in and out, inference and training, where oneDNN has it),
   * 'direct' (inference direct, training through libtorch), or 'winograd' (inference with any channel
   * count too). Returns the previous one. No effect without oneDNN (`info().dnnl`) or on
   * mixed_bfloat16 layers (always direct).
   */
  setConvAlgorithm(algorithm: ConvAlgorithm): ConvAlgorithm;
  /** Tests and bench only: false runs every convolution through libtorch's conv2d (as before oneDNN was called directly). Returns the previous setting. */
  setDnnlConv(enabled: boolean): boolean;
  /** Tests and bench only: false runs float32 Winograd convolutions one by one, converting around each (src/blocked-stretch.cc). Returns the previous setting. */
  setBlockedStretch(enabled: boolean): boolean;
  /**
   * Tests and bench only: the most bytes of Winograd's blocked copies and scratchpad one oneDNN call
   * may use (default 256 MiB); a batch over it runs in slices of rows. Returns the previous one.
   */
  setWinogradCallBytes(bytes: number): number;
  /**
   * Reads record i (`recordBytes` bytes at byte `offsets[i]` of open file `fd`) into record slot i of
   * `out`, all on one libuv worker; rejects with "ended early (at byte N)" or the read error.
   */
  gatherRecords(fd: number, offsets: Float64Array, recordBytes: number, out: Uint8Array | Float32Array): Promise<void>;
  /**
   * Internal (the record reader's): `bytes` of uninitialized memory, which may still hold an earlier
   * batch's or tensor's bytes, so it must be written in full before anything reads it (gatherRecords
   * fills a batch whole or rejects). From the engine's block cache: a block of 1 MiB or more freed
   * by a collected batch is reused with its pages mapped.
   */
  batchBuffer(bytes: number): ArrayBuffer;
  /** Whether this build links CUDA and sees GPUs: what `device: 'auto'` picks from. */
  deviceInfo(): { cudaBuilt: boolean; cudaAvailable: boolean; cudaDevices: number };
  /** 'cpu' or 'cuda:N' for a device name; throws an error that says what to do when it cannot be used. */
  resolveDevice(name: string): string;
  /** torch.distributed's c10d: one Gloo or NCCL process group per process (lib/distributed wraps it). */
  distributed: NativeDistributed;
}

/** How float32 convolutions are computed (native().setConvAlgorithm). */
export type ConvAlgorithm = 'auto' | 'direct' | 'winograd';

export interface NativeDistributed {
  /** rendezvous on the TCPStore at host:port (rank 0 serves it), then connects the group; nccl: `device` is this rank's GPU, 'cuda:N'. */
  init(options: {
    rank: number;
    worldSize: number;
    host: string;
    port: number;
    timeoutMs: number;
    bucketBytes: number;
    backend: 'gloo' | 'nccl';
    device: string;
  }): Promise<void>;
  destroy(): void;
  /** element-wise sums over all ranks */
  allreduceSum(values: Float64Array): Promise<Float64Array>;
  /** element-wise sums over all ranks, written into `values` (leave it alone until settled) */
  allreduceSumInPlace(values: Float32Array): Promise<void>;
  barrier(): Promise<void>;
  /** every weight of the model (moving statistics too) from rank 0 */
  broadcastModel(model: NativeModel): Promise<void>;
  /** whether this engine was built with NCCL (a CUDA libtorch and nccl.h: scripts/find-libtorch.mjs) */
  ncclBuilt: boolean;
}

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Where the addon is looked for: TRANSFERLAB_NATIVE overrides, then the node-gyp build. */
export function nativeAddonPath(): string {
  return process.env.TRANSFERLAB_NATIVE ?? path.join(packageRoot, 'build/Release/transferlab.node');
}

/** Turns a failed `require` of the addon into a message that says what to do. */
export function explainLoadFailure(addonPath: string, error: unknown): string {
  const reason = error instanceof Error ? error.message : String(error);
  const lines = [`the native engine could not be loaded from ${addonPath}.`];
  if (!existsSync(addonPath)) {
    lines.push(
      'It has not been built. Build it with `npm run build:native` (needs libtorch: `apt-get install libtorch-dev`,',
      'or LIBTORCH=/path/to/libtorch, or LIBTORCH_USE_PYTORCH=1; `node scripts/find-libtorch.mjs --explain` shows what is found).',
    );
  } else if (/lib(torch|c10)[^:]*\.so/.test(reason) || /cannot open shared object/.test(reason)) {
    lines.push(
      `libtorch's shared libraries were not found at run time (${reason.split('\n')[0]}).`,
      'Install them with `apt-get install libtorch-dev`, or set LIBTORCH to the libtorch the addon was built against and',
      'rebuild with `npm run build:native`.',
    );
  } else if (/NODE_MODULE_VERSION|invalid ELF|wrong ELF class/.test(reason)) {
    lines.push(`It was built for another Node.js or platform (${reason.split('\n')[0]}). Rebuild with \`npm run build:native\`.`);
  } else {
    lines.push(`Reason: ${reason}`);
  }
  return lines.join('\n');
}

let binding: NativeBinding | undefined;

/** The native engine, loaded once; throws an error that explains what is missing. */
export function native(): NativeBinding {
  if (binding) return binding;
  const addonPath = nativeAddonPath();
  let loaded: NativeBinding;
  try {
    loaded = createRequire(import.meta.url)(addonPath) as NativeBinding;
  } catch (error) {
    throw new Error(explainLoadFailure(addonPath, error), { cause: error });
  }
  const setThreads = (threads: number): void => {
    const capped = capThreads(threads);
    if (capped.warning) process.emitWarning(capped.warning, { code: 'TRANSFERLAB_THREADS' });
    loaded.setThreads(capped.threads);
  };
  binding = {
    NativeModel: loaded.NativeModel,
    info: loaded.info,
    manualSeed: loaded.manualSeed,
    emptyCache: loaded.emptyCache,
    setThreads,
    setLayerTiming: loaded.setLayerTiming,
    takeLayerTimes: loaded.takeLayerTimes,
    setForwardChunkBytes: loaded.setForwardChunkBytes,
    setFirstBlockFusion: loaded.setFirstBlockFusion,
    setAmx: loaded.setAmx,
    amxPeakFlops: loaded.amxPeakFlops,
    setConvAlgorithm: loaded.setConvAlgorithm,
    setDnnlConv: loaded.setDnnlConv,
    setBlockedStretch: loaded.setBlockedStretch,
    setWinogradCallBytes: loaded.setWinogradCallBytes,
    gatherRecords: loaded.gatherRecords,
    batchBuffer: loaded.batchBuffer,
    deviceInfo: loaded.deviceInfo,
    resolveDevice: loaded.resolveDevice,
    distributed: loaded.distributed,
  };
  return binding;
}
