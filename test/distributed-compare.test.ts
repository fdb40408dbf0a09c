/**
 * `compare --nproc-per-node 2` end to end on generated photos: one run folder, the cores shared
 * between the workers, and Ctrl-C reaching only one rank still stopping both at the same batch
 * (no wait for the collective timeout), leaving a run that --resume continues.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { sharedPetImages } from './helpers/pet-images.js';
import { describeRun, readJson, runCli, withTempDir } from './helpers/transfer-helpers.js';

/** The worker of rank `rank` among the launcher's children (Linux: ps and /proc). */
function workerPid(launcherPid: number, rank: number): number | undefined {
  const pids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(launcherPid)], { encoding: 'utf8' })
    .split('\n')
    .map((p) => Number(p.trim()))
    .filter((p) => p > 0);
  return pids.find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`RANK=${rank}`);
    } catch {
      return false;
    }
  });
}

test('compare --nproc-per-node 2: Ctrl-C to rank 1 alone stops both ranks together; the run resumes', { timeout: 600_000 }, async () => {
  const dataDir = await sharedPetImages({ perClass: 24, broken: false });
  await withTempDir('tl-dist-compare-', async (dir) => {
    const out = path.join(dir, 'run');
    const common = ['--data-dir', dataDir, '--models', 'cnn', '--image-size', '94', '--batch-size', '8'];
    let signalled = false;
    const stopped = await runCli(['compare', '--nproc-per-node', '2', ...common, '--epochs', '40', '--dist-timeout', '30', '--out', out], {
      cacheDir: path.join(dir, 'cache'),
      onStdout: (soFar, child) => {
        if (signalled || !soFar.includes('Epoch 2/')) return;
        const pid = workerPid(child.pid!, 1);
        if (pid === undefined) return;
        signalled = true;
        process.kill(pid, 'SIGINT');
      },
    });
    assert.ok(signalled, describeRun(stopped));
    assert.equal(stopped.code, 130, describeRun(stopped));
    assert.doesNotMatch(stopped.stderr, /process group|all-reduce/, 'rank 0 did not wait for rank 1 in a collective');
    const environment = await readJson(path.join(out, 'environment.json'));
    assert.equal(environment.threads, Math.max(1, Math.floor(os.availableParallelism() / 2)), 'the workers share the cores');
    assert.ok(existsSync(path.join(out, 'cnn', 'last')), `a backup to resume from: ${describeRun(stopped)}`);

    const resumed = await runCli(['compare', '--resume', out, '--nproc-per-node', '2', '--epochs', '3'], {
      cacheDir: path.join(dir, 'cache'),
    });
    assert.equal(resumed.code, 0, describeRun(resumed));
    const history = await readJson<{ loss: number[] }>(path.join(out, 'cnn', 'history.json'));
    assert.equal(history.loss.length, 3);
  });
});
