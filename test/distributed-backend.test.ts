/**
 * The process group's backend: 'auto' is NCCL only for a rank on a CUDA GPU with an engine built
 * with NCCL, else Gloo; 'nccl' where it cannot work is refused, saying why and what to do (here
 * the engine is CPU-only: the NCCL path itself runs only in scripts/gpu-check.sh, on a GPU).
 */

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../lib/cli/launcher.js';
import { withOptionFlags } from '../lib/cli/option-flags.js';
import { chooseBackend, initDistributed } from '../lib/distributed/index.js';
import { workerDevice, workerEnv } from '../lib/distributed/launch-env.js';
import { native } from '../lib/engine/native.js';
import { OptionError } from '../lib/util/option-error.js';
import { describeRun, runCli, withTempDir } from './helpers/transfer-helpers.js';
import { runWorkerRanks } from './helpers/worker-ranks.js';

const ncclBuilt = native().distributed.ncclBuilt;
const withNccl = ncclBuilt ? 'this engine has NCCL: the CPU-only refusals do not apply' : false;

test('auto: NCCL for a rank on a CUDA GPU when the engine has NCCL, Gloo otherwise; gloo is always Gloo', () => {
  assert.equal(chooseBackend('auto', 'cpu', true), 'gloo');
  assert.equal(chooseBackend('auto', 'cpu', false), 'gloo');
  assert.equal(chooseBackend('auto', 'cuda:1', true), 'nccl');
  assert.equal(chooseBackend('auto', 'cuda:1', false), 'gloo', 'a CUDA build without nccl.h: Gloo moves CUDA tensors');
  assert.equal(chooseBackend('gloo', 'cuda:0', true), 'gloo');
  assert.equal(chooseBackend('nccl', 'cuda:0', true), 'nccl');
});

test('nccl where it cannot work, and an unknown backend, are refused with what to do', () => {
  const refusal = (backend: 'nccl', device: string, built: boolean) => {
    try {
      chooseBackend(backend, device, built);
    } catch (error) {
      assert.ok(error instanceof OptionError);
      return error;
    }
    assert.fail(`backend ${backend} on ${device} was accepted`);
  };
  const missing = refusal('nccl', 'cuda:0', false);
  assert.match(missing.message, /^`backend` 'nccl' is not available: this engine was built without NCCL/);
  assert.match(missing.message, /Rebuild it against a CUDA libtorch \(LIBTORCH=.* npm run build:native; .*docs\/distributed\.md/);
  assert.match(missing.message, /or use `backend` 'gloo'$/);
  // the CLI names its flag
  assert.match(withOptionFlags(missing), /^--dist-backend 'nccl' is not available: .* or use --dist-backend 'gloo'$/);
  const onCpu = refusal('nccl', 'cpu', true);
  assert.match(onCpu.message, /'nccl' runs on CUDA GPUs only, but this rank's device is 'cpu'/);
  assert.throws(() => chooseBackend('mpi' as 'gloo', 'cpu', true), /unknown `backend` 'mpi': use 'auto', 'gloo' or 'nccl'/);
});

test('this engine reports NCCL only with CUDA', () => {
  assert.equal(typeof ncclBuilt, 'boolean');
  if (ncclBuilt) assert.equal(native().deviceInfo().cudaBuilt, true);
});

test('workerDevice: auto is each worker its own GPU where the engine sees one, else the CPU', () => {
  const twoRanks = { WORLD_SIZE: '2', LOCAL_RANK: '1' };
  assert.equal(
    workerDevice('auto', twoRanks, () => true),
    'cuda:1',
  );
  assert.equal(
    workerDevice('auto', twoRanks, () => false),
    'auto',
  );
  assert.equal(
    workerDevice('auto', {}, () => true),
    'auto',
    'not distributed',
  );
});

test("initDistributed({ backend: 'nccl' }) on a CPU-only engine fails before any rendezvous", { skip: withNccl }, async () => {
  const saved = { ...process.env };
  // a group of 2 whose rank 0 never comes: only a rendezvous would wait (and time out) for it
  Object.assign(process.env, workerEnv({ nproc: 2, masterAddr: '127.0.0.1', masterPort: await freePort() }, 1));
  try {
    await assert.rejects(
      initDistributed({ backend: 'nccl', device: 'cpu', timeoutMs: 600_000 }),
      /^Error: initDistributed: `backend` 'nccl' is not available: this engine was built without NCCL/,
    );
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
});

test('compare --dist-backend: a bad name, and nccl on a CPU-only engine, exit 2 before any work', {
  skip: withNccl,
  timeout: 120_000,
}, async () => {
  await withTempDir('tl-dist-backend-cli-', async (dir) => {
    const out = path.join(dir, 'run');
    const bad = await runCli(['compare', '--dist-backend', 'mpi', '--out', out], { cacheDir: dir });
    assert.equal(bad.code, 2, describeRun(bad));
    assert.match(bad.stderr, /--dist-backend takes auto, gloo or nccl \(got 'mpi'\)/);
    const launched = await runCli(['compare', '--nproc-per-node', '2', '--dist-backend', 'nccl', '--out', out], { cacheDir: dir });
    assert.equal(launched.code, 2, describeRun(launched));
    assert.match(launched.stderr, /transferlab compare: --dist-backend 'nccl' is not available: this engine was built without NCCL/);
    assert.match(launched.stderr, /rank [01] of 2 \(pid \d+\) exited with code 2/);
  });
});

/** Runs the data-parallel worker's `head` case for one epoch as `nproc` ranks; each rank's backend (undefined: no group). */
async function backendsOfRun(dir: string, nproc: number, extraEnv: NodeJS.ProcessEnv): Promise<(string | undefined)[]> {
  const env = { DP_CASE: 'head', DP_EPOCHS: '1', DP_CACHE: dir, DP_BACKEND: undefined, DP_DEVICE: undefined, ...extraEnv };
  return (await runWorkerRanks<{ backend?: string }>(nproc, path.join(dir, 'out'), env)).map((r) => r.backend);
}

test('a 2-rank run with the default backend (auto) on the CPU joins a Gloo group', { timeout: 120_000 }, async () => {
  await withTempDir('tl-dist-backend-auto-', async (dir) => {
    assert.deepEqual(await backendsOfRun(dir, 2, {}), ['gloo', 'gloo']);
  });
});

test('WORLD_SIZE=1 runs alone, unless groupOfOne asks for a group', { timeout: 120_000 }, async () => {
  await withTempDir('tl-dist-backend-one-', async (dir) => {
    assert.deepEqual(await backendsOfRun(dir, 1, {}), [undefined]);
    assert.deepEqual(await backendsOfRun(dir, 1, { DP_GROUP_OF_ONE: '1' }), ['gloo']);
  });
});
