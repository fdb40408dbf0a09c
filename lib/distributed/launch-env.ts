import { type DeviceName, native } from '../engine/native.js';

/**
 * The environment a launcher gives each worker: the variables `torchrun` sets, so a worker cannot
 * tell the built-in launcher from torchrun (both are read by `initDistributed`).
 */
export interface LaunchSpec {
  /** workers on this machine (torchrun's --nproc-per-node) */
  nproc: number;
  masterAddr: string;
  masterPort: number;
}

/** One machine: ranks are local ranks, and the master is this machine's loopback. */
export function workerEnv(spec: LaunchSpec, localRank: number): Record<string, string> {
  return {
    RANK: String(localRank),
    WORLD_SIZE: String(spec.nproc),
    LOCAL_RANK: String(localRank),
    LOCAL_WORLD_SIZE: String(spec.nproc),
    GROUP_RANK: '0',
    MASTER_ADDR: spec.masterAddr,
    MASTER_PORT: String(spec.masterPort),
  };
}

/** Engine threads per worker: the cores shared evenly, at least one each, so workers do not oversubscribe the CPU. */
export function threadsPerWorker(cores: number, nproc: number): number {
  return Math.max(1, Math.floor(cores / nproc));
}

/**
 * The device a worker uses: plain `cuda` means this worker's own GPU (`cuda:LOCAL_RANK`), as
 * torchrun scripts do, and so does `auto` where the engine sees a GPU (rather than every worker on
 * GPU 0); any other name is used as given.
 */
export function workerDevice(
  device: DeviceName,
  env: NodeJS.ProcessEnv = process.env,
  cudaAvailable: () => boolean = () => native().deviceInfo().cudaAvailable,
): DeviceName {
  const localRank = env.LOCAL_RANK;
  if (localRank === undefined || env.WORLD_SIZE === undefined || env.WORLD_SIZE === '1') return device;
  return device === 'cuda' || (device === 'auto' && cudaAvailable()) ? `cuda:${Number(localRank)}` : device;
}
