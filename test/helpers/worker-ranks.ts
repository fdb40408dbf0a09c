/**
 * Runs test/helpers/data-parallel-worker as `worldSize` ranks on loopback with torchrun's
 * environment (lib/distributed/launch-env, as the launcher sets it), or alone without it, and
 * resolves to each rank's result (`<out>.rank<R>.json`); rejects with a failing rank's output.
 * `spawnWorker` runs one worker process with an environment of the caller's.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, LOOPBACK } from '../../lib/cli/launcher.js';
import { workerEnv } from '../../lib/distributed/launch-env.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'data-parallel-worker.js');

/** Runs the worker with `env` as its whole environment; resolves to its exit code and its output (stdout, then stderr, as they came). */
export function spawnWorker(env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WORKER], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** `env`: the worker's DP_* settings; a key set to undefined is removed from this process's environment. */
export async function runWorkerRanks<T>(
  worldSize: number,
  out: string,
  env: NodeJS.ProcessEnv,
  options: { alone?: boolean } = {},
): Promise<T[]> {
  const spec = { nproc: worldSize, masterAddr: LOOPBACK, masterPort: await freePort() };
  const base: NodeJS.ProcessEnv = { ...process.env, ...env, DP_OUT: out };
  for (const key of Object.keys(workerEnv(spec, 0))) delete base[key];
  for (const [key, value] of Object.entries(base)) if (value === undefined) delete base[key];
  const runs = Array.from({ length: worldSize }, async (_, rank) => {
    const { code, output } = await spawnWorker(options.alone ? base : { ...base, ...workerEnv(spec, rank) });
    if (code !== 0) throw new Error(`rank ${rank} of ${worldSize} exited with ${code}:\n${output}`);
  });
  await Promise.all(runs);
  return Promise.all(Array.from({ length: worldSize }, async (_, r) => JSON.parse(await readFile(`${out}.rank${r}.json`, 'utf8')) as T));
}
