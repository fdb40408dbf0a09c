import os from 'node:os';
import { native } from '../engine/native.js';

/** Where a run happened: CPU, threads, libtorch, precision, device (rank 0's). */
export function describeEnvironment(options: { threads: number; bf16: boolean; device?: string }): Record<string, unknown> {
  const info = native().info();
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryBytes: os.totalmem(),
    threads: info.threads,
    requestedThreads: options.threads || 'all',
    torchVersion: info.torchVersion,
    mkldnn: info.mkldnn,
    device: native().resolveDevice(options.device ?? 'cpu'),
    precision: options.bf16 ? 'float32 training, bfloat16 feature extraction' : 'float32',
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
}
