import { type DeviceName, native } from '../engine/native.js';
import { OptionError } from '../util/option-error.js';
import { workerDevice } from './launch-env.js';

export type DistributedBackend = 'gloo' | 'nccl';

/** This process's place in the process group, as torchrun describes it. */
export interface ProcessGroupInfo {
  rank: number;
  worldSize: number;
  /** rank among the processes on this machine (torchrun's LOCAL_RANK) */
  localRank: number;
  backend: DistributedBackend;
}

export interface InitDistributedOptions {
  /** how long a rendezvous or collective waits for the other ranks before failing (default 5 minutes). */
  timeoutMs?: number;
  /**
   * 'auto' (the default): NCCL when this rank's `device` is a CUDA GPU and the engine has NCCL, else
   * Gloo. 'gloo': CPUs (CUDA tensors go through host memory). 'nccl': CUDA GPUs only, and an engine
   * built against a CUDA libtorch with NCCL (docs/distributed.md).
   */
  backend?: 'auto' | DistributedBackend;
  /** the device this rank's model is on, as given to the model (default 'cpu'); 'cuda' means this worker's GPU, cuda:LOCAL_RANK. */
  device?: DeviceName;
  /**
   * Join a group of one when WORLD_SIZE is 1 (as torch.distributed does), e.g. to check a backend on
   * one GPU; by default a single process runs alone, without a group.
   */
  groupOfOne?: boolean;
  /** gradients are all-reduced in buckets of about this many MB, each started once backward has filled it (default 25, as DDP's bucket_cap_mb). */
  bucketCapMb?: number;
}

export const DEFAULT_TIMEOUT_MS = 5 * 60 * 1000;

let group: ProcessGroupInfo | undefined;

function envInt(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback?: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    if (fallback !== undefined) return fallback;
    throw new Error(
      `distributed run: ${name} is not set (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; set them all)`,
    );
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`distributed run: ${name}=${raw} must be an integer from ${min} to ${max}`);
  return n;
}

/** The group torchrun's environment describes; undefined when WORLD_SIZE is unset, or 1 unless `groupOfOne`. */
export function readTorchrunEnv(
  env: NodeJS.ProcessEnv = process.env,
  groupOfOne = false,
): (Omit<ProcessGroupInfo, 'backend'> & { masterAddr: string; masterPort: number }) | undefined {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === '') return undefined;
  const worldSize = envInt(env, 'WORLD_SIZE', 1, 1 << 20);
  if (worldSize === 1 && !groupOfOne) return undefined;
  const rank = envInt(env, 'RANK', 0, worldSize - 1);
  const localRank = envInt(env, 'LOCAL_RANK', 0, worldSize - 1, rank);
  const masterAddr = env.MASTER_ADDR;
  if (!masterAddr) throw new Error('distributed run: MASTER_ADDR is not set (the address of the machine that runs rank 0, e.g. 127.0.0.1)');
  const masterPort = envInt(env, 'MASTER_PORT', 1, 65535);
  return { rank, worldSize, localRank, masterAddr, masterPort };
}

/**
 * The backend for a rank whose model is on `device` ('cpu' or 'cuda:N', as resolved by the
 * engine): see InitDistributedOptions.backend. Throws, saying why and what to do, for 'nccl' where
 * it cannot work.
 */
export function chooseBackend(backend: 'auto' | DistributedBackend, device: string, ncclBuilt: boolean): DistributedBackend {
  const onGpu = device.startsWith('cuda');
  if (backend === 'auto') return onGpu && ncclBuilt ? 'nccl' : 'gloo';
  if (backend === 'gloo') return 'gloo';
  if (backend !== 'nccl') throw new OptionError('backend', (name) => `unknown ${name} '${backend}': use 'auto', 'gloo' or 'nccl'`);
  if (!ncclBuilt) {
    throw new OptionError(
      'backend',
      (name) =>
        `${name} 'nccl' is not available: this engine was built without NCCL (against a CPU-only libtorch, or without ` +
        'nccl.h). Rebuild it against a CUDA libtorch (LIBTORCH=/path/to/libtorch npm run build:native; `node ' +
        `scripts/find-libtorch.mjs --explain\` shows what is found; see docs/distributed.md), or use ${name} 'gloo'`,
    );
  }
  if (!onGpu) {
    throw new OptionError(
      'backend',
      (name) =>
        `${name} 'nccl' runs on CUDA GPUs only, but this rank's device is '${device}': put the model on a CUDA ` +
        `device ('cuda': each rank its own GPU), or use ${name} 'gloo'`,
    );
  }
  return 'nccl';
}

/** This rank's device ('cpu' or 'cuda:N') and backend, checked; the same checks initDistributed makes. */
export function resolveBackend(
  options: Pick<InitDistributedOptions, 'backend' | 'device'>,
  env: NodeJS.ProcessEnv = process.env,
): { backend: DistributedBackend; device: string } {
  const engine = native();
  const device = engine.resolveDevice(workerDevice(options.device ?? 'cpu', env));
  return { backend: chooseBackend(options.backend ?? 'auto', device, engine.distributed.ncclBuilt), device };
}

/**
 * Joins the process group torchrun's environment variables describe (RANK, WORLD_SIZE,
 * LOCAL_RANK, MASTER_ADDR, MASTER_PORT): rank 0 serves the TCPStore rendezvous, every rank
 * connects a Gloo or NCCL process group (`backend`). Resolves to undefined (and does nothing) for a
 * single process.
 */
export async function initDistributed(options: InitDistributedOptions = {}): Promise<ProcessGroupInfo | undefined> {
  if (group)
    throw new Error(`initDistributed: this process is already rank ${group.rank} of ${group.worldSize}; call destroyDistributed() first`);
  const env = readTorchrunEnv(process.env, options.groupOfOne);
  if (!env) return undefined;
  let backend: DistributedBackend;
  let device: string;
  try {
    ({ backend, device } = resolveBackend(options));
  } catch (error) {
    throw new Error(`initDistributed: ${(error as Error).message}`, { cause: error });
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(Number.isInteger(timeoutMs) && timeoutMs > 0))
    throw new Error(`initDistributed: timeoutMs must be a positive integer, got ${timeoutMs}`);
  const bucketCapMb = options.bucketCapMb ?? 25;
  if (!(bucketCapMb > 0)) throw new Error(`initDistributed: bucketCapMb must be a positive number of MB, got ${bucketCapMb}`);
  const bucketBytes = Math.max(1, Math.round(bucketCapMb * 1024 * 1024));
  await native().distributed.init({
    rank: env.rank,
    worldSize: env.worldSize,
    host: env.masterAddr,
    port: env.masterPort,
    timeoutMs,
    bucketBytes,
    backend,
    device,
  });
  group = { rank: env.rank, worldSize: env.worldSize, localRank: env.localRank, backend };
  return group;
}

/** The group this process joined; undefined when it runs alone. */
export function distributedInfo(): ProcessGroupInfo | undefined {
  return group;
}

/** Leaves the process group (closes its connections and, on rank 0, the store). */
export function destroyDistributed(): void {
  if (!group) return;
  native().distributed.destroy();
  group = undefined;
}

/** Whether this process writes run folders, checkpoints and reports: rank 0, or a single process. */
export function isChief(): boolean {
  return (group?.rank ?? 0) === 0;
}

/** Waits until every rank has called it (e.g. before reading what rank 0 wrote). No-op alone. */
export async function barrier(): Promise<void> {
  if (group) await native().distributed.barrier();
}

/** Element-wise sums of `values` over all ranks (the values themselves when alone). */
export async function allreduceSum(values: number[]): Promise<number[]> {
  if (!group) return values;
  return [...(await native().distributed.allreduceSum(Float64Array.from(values)))];
}
