import os from 'node:os';
import { type ConvAlgorithm, native } from '../engine/native.js';
import type { DtypePolicyName } from '../models/mixed-precision.js';

/** Where a run happened: CPU, threads, libtorch, oneDNN convolutions, precision, device (rank 0's). */
export function describeEnvironment(options: {
  threads: number;
  dtypePolicy: DtypePolicyName;
  device?: string;
  convAlgorithm: ConvAlgorithm;
}): Record<string, unknown> {
  const info = native().info();
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryBytes: os.totalmem(),
    threads: info.threads,
    requestedThreads: options.threads || 'all',
    torchVersion: info.torchVersion,
    mkldnn: info.mkldnn,
    // convolutions through oneDNN directly (inference, and float32 training), and float32's algorithm
    dnnlConvolutions: info.dnnl ? `oneDNN ${info.dnnlVersion}, ${options.convAlgorithm}` : 'no (libtorch conv2d)',
    dtypePolicy: options.dtypePolicy,
    bf16: info.bf16Reason,
    device: native().resolveDevice(options.device ?? 'cpu'),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
}
