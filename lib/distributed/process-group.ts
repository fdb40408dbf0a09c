import { native } from '../engine/native.js';

/** This process's place in the process group, as torchrun describes it. */
export interface ProcessGroupInfo {
  rank: number;
  worldSize: number;
  /** rank among the processes on this machine (torchrun's LOCAL_RANK) */
  localRank: number;
  backend: 'gloo' | 'nccl';
}

export interface InitDistributedOptions {
  /** how long a rendezvous or collective waits for the other ranks before failing (default 5 minutes). */
  timeoutMs?: number;
  /** 'gloo' (CPU, the default); 'nccl' needs an engine built against a CUDA libtorch. */
  backend?: 'gloo' | 'nccl';
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

/** The group torchrun's environment describes; undefined when WORLD_SIZE is unset or 1. */
export function readTorchrunEnv(
  env: NodeJS.ProcessEnv = process.env,
): (Omit<ProcessGroupInfo, 'backend'> & { masterAddr: string; masterPort: number }) | undefined {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === '') return undefined;
  const worldSize = envInt(env, 'WORLD_SIZE', 1, 1 << 20);
  if (worldSize === 1) return undefined;
  const rank = envInt(env, 'RANK', 0, worldSize - 1);
  const localRank = envInt(env, 'LOCAL_RANK', 0, worldSize - 1, rank);
  const masterAddr = env.MASTER_ADDR;
  if (!masterAddr) throw new Error('distributed run: MASTER_ADDR is not set (the address of the machine that runs rank 0, e.g. 127.0.0.1)');
  const masterPort = envInt(env, 'MASTER_PORT', 1, 65535);
  return { rank, worldSize, localRank, masterAddr, masterPort };
}

/**
 * Joins the process group torchrun's environment variables describe (RANK, WORLD_SIZE,
 * LOCAL_RANK, MASTER_ADDR, MASTER_PORT): rank 0 serves the TCPStore rendezvous, every rank
 * connects a Gloo process group. Resolves to undefined (and does nothing) for a single process.
 */
export async function initDistributed(options: InitDistributedOptions = {}): Promise<ProcessGroupInfo | undefined> {
  if (group)
    throw new Error(`initDistributed: this process is already rank ${group.rank} of ${group.worldSize}; call destroyDistributed() first`);
  const env = readTorchrunEnv();
  if (!env) return undefined;
  const backend = options.backend ?? 'gloo';
  if (backend !== 'gloo') {
    throw new Error(`initDistributed: backend '${backend}' is not available in this engine (built for CPU); use backend 'gloo'`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(Number.isInteger(timeoutMs) && timeoutMs > 0))
    throw new Error(`initDistributed: timeoutMs must be a positive integer, got ${timeoutMs}`);
  await native().distributed.init({ rank: env.rank, worldSize: env.worldSize, host: env.masterAddr, port: env.masterPort, timeoutMs });
  group = { rank: env.rank, worldSize: env.worldSize, localRank: env.localRank, backend };
  return group;
}

/** The group this process joined; undefined when it runs alone. */
export function distributedInfo(): ProcessGroupInfo | undefined {
  return group;
}

/** Leaves the process group (closes the Gloo connections and, on rank 0, the store). */
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
