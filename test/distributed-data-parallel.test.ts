import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../lib/cli/launcher.js';
import { shardRange } from '../lib/distributed/index.js';
import { runWorkerRanks, spawnWorker } from './helpers/worker-ranks.js';

interface RankResult {
  initial: number[][][];
  final: number[][][];
  history: Record<string, number[]>;
  /** extract: the training features the head read from the cache */
  features: number[];
  /** the epochs this process trained */
  ran: number[];
  /** records its record datasets read while training */
  recordsRead: number;
}

/** Records rank `rank` of `worldSize` reads for global batches of these sizes: its shardRange of each. */
function shardReads(globalBatches: number[], rank: number, worldSize: number): number {
  return globalBatches.reduce((rows, n) => {
    const [from, to] = shardRange(n, rank, worldSize);
    return rows + to - from;
  }, 0);
}

/** Every rank read exactly its rows of the global batches `reads` (one process: all of them). */
function assertShardReads(results: RankResult[], reads: number[], what: string): void {
  results.forEach((r, rank) => {
    assert.equal(r.recordsRead, shardReads(reads, rank, results.length), `${what}: records read by rank ${rank} of ${results.length}`);
  });
  const total = reads.reduce((a, b) => a + b, 0);
  assert.equal(
    results.reduce((a, r) => a + r.recordsRead, 0),
    total,
    `${what}: the ranks read every record once`,
  );
}

/** Runs the worker as `worldSize` ranks on loopback (alone, without torchrun variables, for 1). */
function runRanks(which: string, worldSize: number, out: string, extraEnv: Record<string, string> = {}): Promise<RankResult[]> {
  return runWorkerRanks<RankResult>(worldSize, out, { DP_CASE: which, ...extraEnv }, { alone: worldSize === 1 });
}

/** max |a - b| over each layer's weights, relative to the layer's largest weight (biases start at 0) */
function assertWeightsClose(actual: number[][][], expected: number[][][], rel: number, what: string): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((layer, l) => {
    const scale = Math.max(...expected[l]!.flat().map(Math.abs));
    layer.forEach((a, k) => {
      const e = expected[l]![k]!;
      const diff = Math.max(...a.map((v, i) => Math.abs(v - e[i]!)));
      assert.ok(diff <= rel * scale, `${what}: layer ${l} weight ${k} differs by ${diff} (largest weight of the layer ${scale})`);
    });
  });
}

function assertHistoryClose(actual: Record<string, number[]>, expected: Record<string, number[]>, what: string): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  for (const [key, values] of Object.entries(expected)) {
    values.forEach((v, i) => {
      const a = actual[key]![i]!;
      assert.ok(Math.abs(a - v) <= 1e-5 * Math.abs(v) + 1e-7, `${what}: ${key}[${i}] is ${a}, one process gave ${v}`);
    });
  }
}

/** `reads`: the sizes of the global batches the run reads from record datasets, in order. */
async function compareWorldSizes(
  which: string,
  worldSize: number,
  env: Record<string, string> = {},
  reads?: number[],
): Promise<RankResult[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-dp-'));
  try {
    const [alone] = await runRanks(which, 1, path.join(dir, 'one'), { ...env, DP_CACHE: path.join(dir, 'cache-one') });
    const ranks = await runRanks(which, worldSize, path.join(dir, 'many'), { ...env, DP_CACHE: path.join(dir, 'cache-many') });
    // training moved the weights, so agreement below is not the initial values agreeing
    assert.ok(
      alone!.final.flat(2).some((v, i) => v !== alone!.initial.flat(2)[i]),
      'training changed the weights',
    );
    for (const [r, result] of ranks.entries()) {
      // rank r > 0 was initialised with another seed: only the broadcast from rank 0 can make it agree
      if (r === 0) assert.deepEqual(result.initial, alone!.initial);
      else assert.notDeepEqual(result.initial, alone!.initial, `rank ${r} was initialised differently`);
      assert.deepEqual(result.final, ranks[0]!.final, `rank ${r} ends with rank 0's weights`);
      assert.deepEqual(result.history, ranks[0]!.history, `rank ${r} reports rank 0's numbers`);
    }
    assertWeightsClose(ranks[0]!.final, alone!.final, 1e-5, `${worldSize} ranks vs one`);
    assertHistoryClose(ranks[0]!.history, alone!.history, `${worldSize} ranks vs one`);
    if (reads) {
      assertShardReads([alone!], reads, 'one process');
      assertShardReads(ranks, reads, `${worldSize} ranks`);
    }
    if (which === 'extract') {
      // the per-rank parts were merged into one entry per dataset and removed
      assert.equal((await readdir(path.join(dir, 'cache-many', 'features'))).length, 2);
    }
    return [alone!, ...ranks];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('shards split every global batch in rank order, remainders one example at a time', () => {
  assert.deepEqual(
    [0, 1, 2].map((r) => shardRange(32, r, 3)),
    [
      [0, 10],
      [10, 21],
      [21, 32],
    ],
  );
  assert.deepEqual(
    [0, 1, 2].map((r) => shardRange(1, r, 3)),
    [
      [0, 0],
      [0, 0],
      [0, 1],
    ],
  );
});

test('the CNN: two ranks with a global batch of 32 give the weights and history of one process', { timeout: 600_000 }, async () => {
  await compareWorldSizes('cnn', 2);
});

test('a transfer head on cached features: two and three ranks (empty shards) give the results of one process', {
  timeout: 300_000,
}, async () => {
  await compareWorldSizes('head', 2);
  await compareWorldSizes('head', 3);
  // 1 KB buckets: each of the head's four weights all-reduced on its own, started during backward
  await compareWorldSizes('head', 2, { DP_BUCKET_MB: String(1 / 1024) });
});

test('frozen-base features extracted by three ranks form the cache one process writes; the head trains on all of them', {
  timeout: 300_000,
}, async () => {
  // the head reads only its rows of the cached features: 37 in batches of 8, 11 in batches of 8, two epochs
  const epoch = [8, 8, 8, 8, 5, 8, 3];
  const [alone, ...ranks] = await compareWorldSizes('extract', 3, {}, [...epoch, ...epoch]);
  assert.equal(alone!.features.length, 37 * 3 * 3 * 4);
  for (const r of ranks) assertWeightsClose([[r.features]], [[alone!.features]], 1e-6, 'cached features');
});

test('record datasets: each of two and three ranks reads only its rows (empty shards too), with the results of one process', {
  timeout: 300_000,
}, async () => {
  // 65 training examples in batches of 32 (the last one 1: empty shards on all ranks but the last), 33 for validation
  const epoch = [32, 32, 1, 32, 1];
  await compareWorldSizes('head', 2, { DP_RECORDS: '1' }, [...epoch, ...epoch]);
  await compareWorldSizes('head', 3, { DP_RECORDS: '1' }, [...epoch, ...epoch]);
  // repeating streams: two training batches and one validation batch per epoch, crossing into the next pass
  await compareWorldSizes('head', 3, { DP_RECORDS: '1', DP_STEPS: '1' }, [32, 32, 32, 1, 32, 1]);
});

test('a run backed up by two ranks resumes on one (and one on three) as if never stopped', { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-dp-'));
  try {
    const [whole] = await runRanks('head', 1, path.join(dir, 'whole'));
    for (const [before, after] of [
      [2, 1],
      [1, 3],
    ] as const) {
      const backup = path.join(dir, `backup-${before}-${after}`);
      await runRanks('head', before, path.join(dir, `first-${before}`), { DP_BACKUP: backup, DP_EPOCHS: '1' });
      const resumed = await runRanks('head', after, path.join(dir, `resumed-${after}`), { DP_BACKUP: backup, DP_EPOCHS: '2' });
      for (const r of resumed) {
        assert.deepEqual(r.ran, [1], 'the resumed run trains only the epoch the backup lacks');
        assertWeightsClose(r.final, whole!.final, 1e-5, `${before} ranks, resumed on ${after}`);
        assertHistoryClose(r.history, whole!.history, `${before} ranks, resumed on ${after}`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('record datasets with repeating streams: a run of three ranks resumes on two, and one of two on three, each rank reading only its rows', {
  timeout: 300_000,
}, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-dp-'));
  const env = { DP_RECORDS: '1', DP_STEPS: '1' };
  try {
    const [whole] = await runRanks('head', 1, path.join(dir, 'whole'), env);
    for (const [before, after] of [
      [3, 2],
      [2, 3],
    ] as const) {
      const backup = path.join(dir, `backup-${before}-${after}`);
      await runRanks('head', before, path.join(dir, `first-${before}-${after}`), { ...env, DP_BACKUP: backup, DP_EPOCHS: '1' });
      const resumed = await runRanks('head', after, path.join(dir, `resumed-${before}-${after}`), {
        ...env,
        DP_BACKUP: backup,
        DP_EPOCHS: '2',
      });
      for (const r of resumed) {
        assert.deepEqual(r.ran, [1], 'the resumed run trains only the epoch the backup lacks');
        assertWeightsClose(r.final, whole!.final, 1e-5, `${before} ranks, resumed on ${after}`);
        assertHistoryClose(r.history, whole!.history, `${before} ranks, resumed on ${after}`);
      }
      // skipping epoch 0's stream windows reads their shards (training 32, 32; validation 32), then epoch 1 reads its own
      assertShardReads(resumed, [32, 32, 32, 1, 32, 1], `${before} ranks, resumed on ${after}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a rank whose rank 0 never comes stops within the timeout, naming its rank and the address', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const { code, output } = await spawnWorker({
    ...process.env,
    DP_CASE: 'head',
    DP_OUT: '/nonexistent',
    DP_TIMEOUT_MS: '2000',
    RANK: '1',
    LOCAL_RANK: '1',
    WORLD_SIZE: '2',
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(port),
  });
  assert.notEqual(code, 0);
  assert.match(output, new RegExp(`rank 1 of 2: the rendezvous at 127\\.0\\.0\\.1:${port} failed`));
});

test('a rank that dies mid-training stops the other with an error naming its rank and the address', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-dp-'));
  try {
    const env = {
      ...process.env,
      DP_CASE: 'head',
      DP_OUT: path.join(dir, 'out'),
      WORLD_SIZE: '2',
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
    };
    const ranks = [0, 1].map((rank) => {
      const extra = rank === 1 ? { DP_DIE_AT_EPOCH: '1' } : {};
      return spawnWorker({ ...env, ...extra, RANK: String(rank), LOCAL_RANK: String(rank) });
    });
    const [survivor, dead] = await Promise.all(ranks);
    assert.equal(dead!.code, 3);
    assert.notEqual(survivor!.code, 0);
    assert.match(survivor!.output, new RegExp(`rank 0 of 2 \\(process group at 127\\.0\\.0\\.1:${port}\\): all-reduce of [a-z]+ failed`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
