import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkerReply, WorkerRequest } from './worker.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** glibc settings that keep freed memory in the process, as the addon's mallopt does at load. */
export const KEEP_ALLOCATIONS_ENV = {
  MALLOC_MMAP_MAX_: '0',
  MALLOC_TRIM_THRESHOLD_: String(2 ** 50),
  MALLOC_TOP_PAD_: String(256 * 1024 * 1024),
};

/** Runs a command; stderr (progress) passes through to ours, the last stdout line is parsed as JSON. */
function runJson<T>(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0) {
        reject(
          new Error(
            `${path.basename(command)} ${args
              .map((a) => path.basename(a))
              .slice(0, 2)
              .join(' ')} failed (${signal ?? `exit ${code}`})${last ? `: ${last}` : ''}`,
          ),
        );
        return;
      }
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${path.basename(command)} printed no JSON result (stdout: ${JSON.stringify(stdout.slice(-300))})`));
      }
    });
  });
}

/** One engine measurement in a fresh node process (bench/worker.ts). */
export function runWorker(name: string, req: WorkerRequest): Promise<WorkerReply> {
  return runJson<WorkerReply>(process.execPath, [path.join(here, 'worker.js'), name, JSON.stringify(req)], process.env);
}

export interface PythonCheck {
  ok: boolean;
  torchVersion?: string;
  reason?: string;
}

/** Whether `python` exists and imports torch. */
export function checkPython(python: string): PythonCheck {
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) return { ok: false, reason: `${python} not runnable (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})` };
  if (r.status !== 0) return { ok: false, reason: `${python} cannot import torch (python3-torch not installed?)` };
  return { ok: true, torchVersion: r.stdout.trim() };
}
