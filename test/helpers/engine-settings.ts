/**
 * The engine's process-wide switches, set for one piece of work and put back afterwards (the test
 * files share one engine per process), and the skip reason for tests that need native bfloat16.
 */
import { type LayerTimeRow, layerTimesOf } from '../../bench/measure.js';
import { cpuFlags } from '../../bench/system.js';
import { native } from '../../lib/engine/native.js';
import { bf16Support } from '../../lib/models/mixed-precision.js';

/** Runs `work` with a setting at `value`; `set` returns the previous value, restored afterwards, also on a throw. */
export async function withSetting<V, R>(set: (value: V) => V, value: V, work: () => Promise<R>): Promise<R> {
  const previous = set(value);
  try {
    return await work();
  } finally {
    set(previous);
  }
}

/** Runs `work` with layer timing on and returns its result and the timing rows it produced; timing is off afterwards. */
export async function withLayerTimes<R>(work: () => Promise<R>): Promise<{ result: R; rows: LayerTimeRow[] }> {
  let result: R | undefined;
  const rows = await layerTimesOf(async () => {
    result = await work();
  });
  return { result: result as R, rows };
}

const bf16 = bf16Support();
/** node:test `skip` option for tests that need native bfloat16: false when the CPU has it, else the reason. */
export const needsBf16: false | string = bf16.supported ? false : `bfloat16 is emulated here (${bf16.reason})`;
/** node:test `skip` option for the mixed_bfloat16 kernels' AMX variants: false when they run on AMX tiles here, else the reason. */
export const needsAmx: false | string = needsBf16 || (native().info().amx ? false : `no AMX tiles here (${native().info().amxReason})`);

export { cpuFlags };

/** node:test `skip` option for what calls oneDNN directly: false when the engine was built with its headers, else the reason. */
export const needsDnnl: false | string = native().info().dnnl
  ? false
  : 'the engine was built without oneDNN headers (apt-get install libdnnl-dev, rebuild)';

/**
 * node:test `skip` option for what needs oneDNN's AVX-512 kernels (Winograd, the 16-channel blocked
 * layouts): false where the CPU has AVX-512 and ONEDNN_MAX_CPU_ISA does not cap it below, else the reason.
 */
export const needsAvx512: false | string = (() => {
  const capped = /^(sse41|avx|avx2)$/i.test(process.env.ONEDNN_MAX_CPU_ISA ?? process.env.DNNL_MAX_CPU_ISA ?? '');
  return cpuFlags()?.has('avx512f') && !capped
    ? false
    : "oneDNN's Winograd and blocked kernels need AVX-512, which this CPU (or ONEDNN_MAX_CPU_ISA) lacks";
})();
