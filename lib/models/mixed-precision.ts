import { native } from '../engine/native.js';

/**
 * Keras dtype policies (`keras.mixed_precision`): 'float32', or 'mixed_bfloat16' (variables and
 * the optimizer's updates in float32, computations in bfloat16). A layer's policy is, first, its
 * own (`dtype` in its config as a Keras policy, or the string 'mixed_bfloat16'), then its model's
 * `dtype` option, then the global policy at the model's construction. A plain 'float32' string in a
 * config does not count as a choice: Keras writes it into every layer it serialises.
 */
export type DtypePolicyName = 'float32' | 'mixed_bfloat16';

export interface DtypePolicy {
  name: DtypePolicyName;
  computeDtype: 'float32' | 'bfloat16';
  variableDtype: 'float32';
}

const POLICIES: readonly DtypePolicyName[] = ['float32', 'mixed_bfloat16'];

let global: DtypePolicyName = 'float32';

export function dtypePolicy(name: DtypePolicyName): DtypePolicy {
  return { name, computeDtype: name === 'mixed_bfloat16' ? 'bfloat16' : 'float32', variableDtype: 'float32' };
}

export function checkPolicyName(name: unknown, where: string): DtypePolicyName {
  if (typeof name === 'string' && (POLICIES as string[]).includes(name)) return name as DtypePolicyName;
  throw new Error(`${where}: unknown dtype policy ${JSON.stringify(name)}; use one of ${POLICIES.map((p) => `'${p}'`).join(', ')}`);
}

/** A Keras layer config's `dtype` as a policy choice, or undefined when it makes none. */
export function configPolicy(dtype: unknown, where: string): DtypePolicyName | undefined {
  if (dtype === undefined || dtype === null || dtype === 'float32') return undefined;
  // Keras 2 `{class_name: 'Policy', config: {name}}`, Keras 3 `{class_name: 'DTypePolicy', config: {name}}`
  if (typeof dtype === 'object' && 'config' in dtype) return checkPolicyName((dtype.config as { name?: unknown })?.name, where);
  return checkPolicyName(dtype, where);
}

/** The Keras serialisation of an explicit per-layer policy. */
export function policyConfig(name: DtypePolicyName): { class_name: 'Policy'; config: { name: DtypePolicyName } } {
  return { class_name: 'Policy', config: { name } };
}

export interface Bf16Support {
  supported: boolean;
  /** what the CPU has or lacks (avx512_bf16 / amx_bf16). */
  reason: string;
}

export function bf16Support(): Bf16Support {
  const info = native().info();
  return { supported: info.bf16Supported, reason: info.bf16Reason };
}

let warned = false;

/**
 * The policy a model can run: 'mixed_bfloat16' falls back to 'float32', with a warning once per
 * process, where the CPU has no native bfloat16 (emulated bf16 is slower than float32).
 */
export function runnablePolicy(name: DtypePolicyName): DtypePolicyName {
  if (name === 'float32') return name;
  const support = bf16Support();
  if (support.supported) return name;
  if (!warned) {
    warned = true;
    process.emitWarning(`dtype policy 'mixed_bfloat16' computes in float32 here: ${support.reason}`, { code: 'TRANSFERLAB_BF16' });
  }
  return 'float32';
}

/** Keras's `keras.mixed_precision` module. */
export const mixedPrecision = {
  /** Policy of the layers of models built from now on that choose none themselves (Keras `set_global_policy`). */
  setGlobalPolicy(name: DtypePolicyName): void {
    global = checkPolicyName(name, 'mixedPrecision.setGlobalPolicy');
  },
  globalPolicy(): DtypePolicy {
    return dtypePolicy(global);
  },
  bf16Support,
};

/** The CLI's `--mixed-precision` values. */
export type MixedPrecisionFlag = 'fp32' | 'bf16';

/** `--mixed-precision bf16|fp32` (default fp32), with `--bf16` as its alias. */
export function mixedPrecisionFlag(value: string | undefined, bf16: boolean | undefined): MixedPrecisionFlag {
  if (bf16 && value === 'fp32') throw new Error('--bf16 contradicts --mixed-precision fp32: give one of them');
  if (bf16 || value === 'bf16') return 'bf16';
  if (value === undefined || value === 'fp32') return 'fp32';
  throw new Error(`--mixed-precision takes bf16 or fp32 (got '${value}')`);
}

export const FLAG_POLICY: Record<MixedPrecisionFlag, DtypePolicyName> = { fp32: 'float32', bf16: 'mixed_bfloat16' };
