import os from 'node:os';
import path from 'node:path';

/**
 * Where downloads, decoded images and cached features live: `--cache-dir`, then
 * `TRANSFERLAB_CACHE_DIR`, then `$XDG_CACHE_HOME/transferlab`, then `~/.cache/transferlab`.
 */
export function resolveCacheDir(explicit?: string): string {
  if (explicit) return path.resolve(explicit);
  const fromEnv = process.env.TRANSFERLAB_CACHE_DIR;
  if (fromEnv) return path.resolve(fromEnv);
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg ? path.resolve(xdg) : path.join(os.homedir(), '.cache'), 'transferlab');
}
