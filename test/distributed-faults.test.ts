/**
 * Faults in a real process group (Gloo on loopback): a rank killed mid-run makes the others stop
 * with an error naming them and the group's address, and `compare` under torchrun's variables
 * joins the group with --dist-timeout, stopping with the rendezvous address when rank 0 never comes.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../lib/cli/launcher.js';
import { workerEnv } from '../lib/distributed/launch-env.js';
import { describeRun, runCli, withTempDir } from './helpers/transfer-helpers.js';

const faultWorker = path.join(path.dirname(new URL(import.meta.url).pathname), 'helpers/fault-worker.js');

function run(env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [faultWorker], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
}

test('a rank killed mid-run stops the others with an error naming their rank and the address', { timeout: 120_000 }, async () => {
  const masterPort = await freePort();
  const spec = { nproc: 3, masterAddr: '127.0.0.1', masterPort };
  const faults = { FAULT_TIMEOUT_MS: '5000', FAULT_KILL_RANK: '1' };
  const [r0, r1, r2] = await Promise.all([0, 1, 2].map((rank) => run({ ...workerEnv(spec, rank), ...faults })));
  assert.equal(r1!.signal, 'SIGKILL');
  for (const [rank, r] of [
    [0, r0!],
    [2, r2!],
  ] as const) {
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`rank ${rank} of 3 .*127\\.0\\.0\\.1:${masterPort}`), `rank ${rank}: ${r.stderr}`);
  }
});

test('compare under torchrun variables joins the group, and stops within --dist-timeout when rank 0 never comes', {
  timeout: 120_000,
}, async () => {
  await withTempDir('tl-dist-timeout-', async (dir) => {
    const masterPort = await freePort();
    const env = workerEnv({ nproc: 2, masterAddr: '127.0.0.1', masterPort }, 1);
    const r = await runCli(['compare', '--dist-timeout', '2', '--out', path.join(dir, 'run')], { cacheDir: dir, env });
    assert.equal(r.code, 1, describeRun(r));
    assert.match(r.stderr, new RegExp(`rank 1 of 2.*127\\.0\\.0\\.1:${masterPort}`));
  });
});
