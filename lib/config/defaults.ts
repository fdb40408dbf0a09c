/**
 * Defaults shared by several commands, in one place so they cannot drift apart: `data info`
 * previews the split that `compare` trains on only if both shuffle with the same seed.
 */
export const DEFAULT_SEED = 42;
