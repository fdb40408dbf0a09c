/**
 * The built-in launcher on loopback, with tiny workers instead of training: the torchrun
 * environment each worker gets, other ranks' errors prefixed, a dead rank stopping the rest and
 * named, and a port in use refused before anything starts.
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { checkPortFree, LaunchError, launch } from '../lib/cli/launcher.js';
import { threadsPerWorker, workerDevice, workerEnv } from '../lib/distributed/launch-env.js';
import { describeRun, runCli, withTempDir } from './helpers/transfer-helpers.js';

const HANG_GUARD = { timeout: 60_000 };

/** A worker: `node -e SCRIPT`, with the test folder as its first argument. */
const worker = (script: string, dir: string) => [process.execPath, '-e', script, dir];

/** Writes its environment to DIR/rank-RANK.json, then runs `then` (a statement). */
const envWorker = (then = '') =>
  `const fs = require('fs'); fs.writeFileSync(require('path').join(process.argv[1], 'rank-' + process.env.RANK + '.json'), JSON.stringify({ ...process.env, PID: process.pid })); ${then}`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Holds a port on 127.0.0.1 for the duration of `fn`. */
async function withBusyPort<T>(fn: (port: number) => Promise<T>): Promise<T> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1' }, resolve));
  try {
    return await fn((server.address() as net.AddressInfo).port);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

test('each worker gets the variables torchrun sets, with one master address and port', HANG_GUARD, async () => {
  await withTempDir('tl-launch-env-', async (dir) => {
    const lines: string[] = [];
    const result = await launch({ nproc: 3, command: worker(envWorker(), dir), report: (l) => lines.push(l) });
    assert.equal(result.exitCode, 0, lines.join('\n'));
    assert.equal(result.failed, undefined);
    assert.deepEqual((await readdir(dir)).sort(), ['rank-0.json', 'rank-1.json', 'rank-2.json']);
    for (const rank of [0, 1, 2]) {
      const env = JSON.parse(await readFile(path.join(dir, `rank-${rank}.json`), 'utf8')) as Record<string, string>;
      assert.equal(env.RANK, String(rank));
      assert.equal(env.LOCAL_RANK, String(rank));
      assert.equal(env.WORLD_SIZE, '3');
      assert.equal(env.LOCAL_WORLD_SIZE, '3');
      assert.equal(env.MASTER_ADDR, '127.0.0.1');
      assert.equal(env.MASTER_PORT, String(result.masterPort));
      assert.equal(env.PATH, process.env.PATH, 'the rest of the environment is passed on');
    }
  });
});

test('other ranks are quiet on stdout; their stderr comes through prefixed with the rank', HANG_GUARD, async () => {
  await withTempDir('tl-launch-out-', async (dir) => {
    const lines: string[] = [];
    const script = `if (process.env.RANK !== '0') { console.log('chatter from ' + process.env.RANK); console.error('trouble on ' + process.env.RANK); }`;
    const result = await launch({ nproc: 3, command: worker(script, dir), report: (l) => lines.push(l) });
    assert.equal(result.exitCode, 0);
    assert.deepEqual(lines.sort(), ['[rank 1] trouble on 1', '[rank 2] trouble on 2']);
  });
});

test('a rank killed mid-run stops the others at once, and the launcher names it', HANG_GUARD, async () => {
  await withTempDir('tl-launch-kill-', async (dir) => {
    const lines: string[] = [];
    // rank 1 dies once both have started; the others would wait forever (as for a collective)
    const script = envWorker(`
      const others = () => ['0', '1', '2'].every((r) => fs.existsSync(require('path').join(process.argv[1], 'rank-' + r + '.json')));
      setInterval(() => { if (process.env.RANK === '1' && others()) process.kill(process.pid, 'SIGKILL'); }, 20);`);
    const result = await launch({ nproc: 3, command: worker(script, dir), report: (l) => lines.push(l) });
    assert.equal(result.failed?.rank, 1, lines.join('\n'));
    assert.equal(result.failed?.signal, 'SIGKILL');
    assert.notEqual(result.exitCode, 0);
    assert.match(lines.join('\n'), /rank 1 of 3 \(pid \d+\) was killed by SIGKILL; stopping the other 2 rank\(s\)/);
    for (const rank of ['0', '2']) {
      const env = JSON.parse(await readFile(path.join(dir, `rank-${rank}.json`), 'utf8')) as Record<string, string>;
      assert.equal(alive(Number(env.PID)), false, `rank ${rank} was stopped`);
    }
  });
});

test(
  'a rank that fails ends the run with its exit code; one that ignores SIGTERM is killed after the grace period',
  HANG_GUARD,
  async () => {
    await withTempDir('tl-launch-fail-', async (dir) => {
      const lines: string[] = [];
      const script = envWorker(`
      if (process.env.RANK === '0') { process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); }
      else setTimeout(() => process.exit(3), 200);`);
      const result = await launch({ nproc: 2, command: worker(script, dir), report: (l) => lines.push(l), killGraceMs: 300 });
      assert.equal(result.exitCode, 3);
      assert.deepEqual(result.failed && { rank: result.failed.rank, code: result.failed.code }, { rank: 1, code: 3 });
      const rank0 = JSON.parse(await readFile(path.join(dir, 'rank-0.json'), 'utf8')) as Record<string, string>;
      assert.equal(alive(Number(rank0.PID)), false, 'rank 0 was killed despite ignoring SIGTERM');
      assert.match(lines.join('\n'), /rank 1 of 2 \(pid \d+\) exited with code 3/);
    });
  },
);

test('Ctrl-C reaches every worker once; workers that stop for it end the launch with 130, not as a failure', HANG_GUARD, async () => {
  await withTempDir('tl-launch-int-', async (dir) => {
    // the handler is in place before rank-N.json tells the test that the worker is ready
    const script =
      `process.on('SIGINT', () => { require('fs').writeFileSync(require('path').join(process.argv[1], 'sigint-' + process.env.RANK), ''); process.exit(130); });` +
      envWorker('setInterval(() => {}, 1000);');
    const started = launch({ nproc: 2, command: worker(script, dir), report: () => {} });
    while (!['rank-0.json', 'rank-1.json'].every((f) => existsSync(path.join(dir, f)))) await new Promise((r) => setTimeout(r, 20));
    process.kill(process.pid, 'SIGINT'); // as a terminal's Ctrl-C reaches the launcher
    const result = await started;
    assert.equal(result.exitCode, 130);
    assert.equal(result.failed, undefined);
    assert.ok(existsSync(path.join(dir, 'sigint-0')) && existsSync(path.join(dir, 'sigint-1')), 'both workers got SIGINT');
    assert.equal(process.listenerCount('SIGINT'), 0, 'the launcher removed its handler');
  });
});

test('a master port in use is refused before any worker starts, naming the port and the flag', HANG_GUARD, async () => {
  await withTempDir('tl-launch-port-', async (dir) => {
    await withBusyPort(async (port) => {
      await assert.rejects(
        checkPortFree(port),
        (e: Error) => e instanceof LaunchError && e.message.includes(`port ${port} on 127.0.0.1 is in use`),
      );
      await assert.rejects(
        launch({ nproc: 2, masterPort: port, command: worker(envWorker(), dir) }),
        (e: Error) => e instanceof LaunchError && /--master-port/.test(e.message),
      );
    });
    assert.deepEqual(await readdir(dir), [], 'no worker ran');
  });
});

test('compare --nproc-per-node with a busy --master-port exits 2 before training', HANG_GUARD, async () => {
  await withTempDir('tl-launch-cli-port-', async (dir) => {
    await withBusyPort(async (port) => {
      const out = path.join(dir, 'run');
      const r = await runCli(['compare', '--nproc-per-node', '2', '--master-port', String(port), '--out', out], { cacheDir: dir });
      assert.equal(r.code, 2, describeRun(r));
      assert.match(r.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use.*--master-port`));
      assert.equal(existsSync(out), false);
    });
  });
});

test('compare refuses --master-port without --nproc-per-node', HANG_GUARD, async () => {
  await withTempDir('tl-launch-cli-flag-', async (dir) => {
    const r = await runCli(['compare', '--master-port', '29555'], { cacheDir: dir });
    assert.equal(r.code, 2, describeRun(r));
    assert.match(r.stderr, /--master-port is for the built-in launcher: give --nproc-per-node too/);
  });
});

test('workerEnv, threadsPerWorker and workerDevice', () => {
  assert.deepEqual(workerEnv({ nproc: 4, masterAddr: '127.0.0.1', masterPort: 29500 }, 2), {
    RANK: '2',
    WORLD_SIZE: '4',
    LOCAL_RANK: '2',
    LOCAL_WORLD_SIZE: '4',
    GROUP_RANK: '0',
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: '29500',
  });
  assert.equal(threadsPerWorker(16, 4), 4);
  assert.equal(threadsPerWorker(10, 4), 2);
  assert.equal(threadsPerWorker(2, 4), 1, 'at least one thread each');
  const twoRanks = { WORLD_SIZE: '2', LOCAL_RANK: '1' };
  assert.equal(workerDevice('cuda', twoRanks), 'cuda:1', 'plain cuda: each worker its own GPU');
  assert.equal(workerDevice('cuda:0', twoRanks), 'cuda:0', 'an explicit GPU is used as given');
  assert.equal(workerDevice('cpu', twoRanks), 'cpu');
  assert.equal(workerDevice('cuda', {}), 'cuda', 'not distributed');
  assert.equal(workerDevice('cuda', { WORLD_SIZE: '1', LOCAL_RANK: '0' }), 'cuda');
});
