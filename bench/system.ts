import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface CpuInfo {
  model: string;
  cores: number;
  /** bf16 can run natively (AVX512-BF16 or AMX-BF16); otherwise it is emulated and slower than fp32. */
  bf16Supported: boolean;
  bf16Reason: string;
}

function cpuinfoText(): string | undefined {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return undefined;
  }
}

/** The CPU's feature flags from /proc/cpuinfo, or null where it cannot be read. */
export function cpuFlags(text = cpuinfoText()): Set<string> | null {
  return text === undefined ? null : new Set((text.match(/^flags\s*:\s*(.+)$/m)?.[1] ?? '').split(/\s+/));
}

export function cpuInfo(): CpuInfo {
  const text = cpuinfoText();
  const model = text?.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  if (text === undefined) {
    return { model, cores, bf16Supported: false, bf16Reason: 'cannot read /proc/cpuinfo to check for avx512_bf16 / amx_bf16' };
  }
  const flags = cpuFlags(text)!;
  const found = ['amx_bf16', 'avx512_bf16'].filter((f) => flags.has(f));
  return found.length > 0
    ? { model, cores, bf16Supported: true, bf16Reason: `CPU has ${found.join(' + ')}` }
    : {
        model,
        cores,
        bf16Supported: false,
        bf16Reason: 'CPU has neither avx512_bf16 nor amx_bf16: bf16 would be emulated (slower than fp32), not measured',
      };
}
