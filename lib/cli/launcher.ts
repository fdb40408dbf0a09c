/**
 * The built-in launcher (`--nproc-per-node N`): N workers on this machine with torchrun's
 * environment. Rank 0's output is the run's output; other ranks only show errors, prefixed with
 * their rank. Ctrl-C reaches every worker once; when a worker fails, the others are stopped at once
 * rather than waiting for their collective timeout.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import readline from 'node:readline';
import { workerEnv } from '../distributed/launch-env.js';

export const LOOPBACK = '127.0.0.1';

export class LaunchError extends Error {}

export interface LaunchOptions {
  nproc: number;
  /** checked free before spawning; absent: a free port chosen by the system */
  masterPort?: number;
  /** one worker's program and arguments, e.g. [process.execPath, 'main.js', 'compare', ...] */
  command: string[];
  /** base environment of the workers (default: this process's) */
  env?: NodeJS.ProcessEnv;
  /** the launcher's messages and other ranks' error output (default: stderr) */
  report?: (line: string) => void;
  /** how long a stopped worker gets to exit before SIGKILL */
  killGraceMs?: number;
}

export interface LaunchResult {
  exitCode: number;
  masterPort: number;
  /** the first worker that failed, which stopped the others */
  failed?: { rank: number; pid: number; code: number | null; signal: NodeJS.Signals | null };
}

/** Throws a LaunchError naming the port when it cannot be bound on `host`. */
export async function checkPortFree(port: number, host = LOOPBACK): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      const why =
        error.code === 'EADDRINUSE' ? 'is in use (another run, or another program)' : `cannot be used (${error.code ?? error.message})`;
      reject(new LaunchError(`port ${port} on ${host} ${why}: pass a free port with --master-port, or leave it out to pick one`));
    });
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve()));
  });
}

/** A port the system says is free now (the workers' store binds it moments later). */
export async function freePort(host = LOOPBACK): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ port: 0, host }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

export async function launch(options: LaunchOptions): Promise<LaunchResult> {
  const report = options.report ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (options.masterPort !== undefined) await checkPortFree(options.masterPort);
  const masterPort = options.masterPort ?? (await freePort());
  const [program, ...args] = options.command;
  if (!program) throw new LaunchError('launch: no worker command given');
  const spec = { nproc: options.nproc, masterAddr: LOOPBACK, masterPort };

  const children: ChildProcess[] = [];
  let failed: LaunchResult['failed'];
  let interrupted = false;
  let killTimer: NodeJS.Timeout | undefined;

  const live = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
  const signalAll = (signal: NodeJS.Signals) => {
    for (const child of live()) child.kill(signal);
  };
  const stopOthers = () => {
    signalAll('SIGTERM');
    killTimer = setTimeout(() => signalAll('SIGKILL'), options.killGraceMs ?? 5000);
  };
  // the workers run in their own process group (detached), so a terminal's Ctrl-C reaches them
  // once, from here: the first asks them to stop after the batch, a second to quit at once
  const onSigint = () => {
    interrupted = true;
    signalAll('SIGINT');
  };
  const onSigterm = () => signalAll('SIGTERM');
  const onExit = () => signalAll('SIGKILL');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  process.on('exit', onExit);

  try {
    const exits = Array.from({ length: options.nproc }, (_, rank) => {
      const child = spawn(program, args, {
        env: { ...(options.env ?? process.env), ...workerEnv(spec, rank) },
        stdio: rank === 0 ? 'inherit' : ['ignore', 'ignore', 'pipe'],
        detached: true,
      });
      children.push(child);
      if (child.stderr) {
        readline.createInterface({ input: child.stderr }).on('line', (line) => report(`[rank ${rank}] ${line}`));
      }
      return new Promise<void>((resolve) => {
        child.once('error', (error) => {
          report(`transferlab: could not start rank ${rank}: ${error.message}`);
          child.emit('exit', 127, null);
        });
        child.once('exit', (code, signal) => {
          // 130: the worker stopped for Ctrl-C (sent to it alone, or to all); the others stop at the same batch
          if (code === 130) interrupted = true;
          if (code !== 0 && code !== 130 && !failed) {
            failed = { rank, pid: child.pid ?? -1, code, signal };
            const others = live().length;
            report(
              `transferlab: rank ${rank} of ${options.nproc} (pid ${child.pid}) ${describeExit(code, signal)}` +
                (others ? `; stopping the other ${others} rank(s)` : ''),
            );
            stopOthers();
          }
          resolve();
        });
      });
    });
    await Promise.all(exits);
  } finally {
    clearTimeout(killTimer);
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    process.off('exit', onExit);
  }
  if (failed) return { exitCode: failed.code || 1, masterPort, failed };
  return { exitCode: interrupted ? 130 : 0, masterPort };
}
