/**
 * One rank for test/distributed-faults.test.ts: joins the group its torchrun variables describe
 * (timeout $FAULT_TIMEOUT_MS), meets the others once, then rank $FAULT_KILL_RANK dies (SIGKILL)
 * and the others keep reducing; the error they stop with goes to stderr, exit code 1.
 */
import { allreduceSum, barrier, destroyDistributed, initDistributed } from '../../lib/distributed/index.js';

const group = await initDistributed({ timeoutMs: Number(process.env.FAULT_TIMEOUT_MS) });
if (!group) throw new Error('fault-worker needs WORLD_SIZE > 1');
await barrier();
if (String(group.rank) === process.env.FAULT_KILL_RANK) process.kill(process.pid, 'SIGKILL');
try {
  for (;;) await allreduceSum([group.rank]);
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  destroyDistributed();
  process.exitCode = 1;
}
