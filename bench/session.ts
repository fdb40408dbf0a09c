import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import type { LayerTime, ServeCommand } from './protocol.js';

/**
 * A warm bench process (bench/serve.ts or bench/pytorch_serve.py) driven over stdin/stdout, one
 * command at a time. Its stderr passes through to ours.
 */
export class Session {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private readonly reader: Interface;
  private exited?: string;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'inherit'] }) as unknown as ChildProcessWithoutNullStreams;
    this.child.on('error', (e) => {
      this.exited = e.message;
    });
    this.child.on('exit', (code, signal) => {
      this.exited = `exited (${signal ?? `code ${code}`})`;
    });
    this.reader = createInterface({ input: this.child.stdout });
    this.lines = this.reader[Symbol.asyncIterator]();
  }

  async send<T>(cmd: ServeCommand): Promise<T> {
    if (this.exited) throw new Error(`${this.name} bench process ${this.exited}`);
    this.child.stdin.write(`${JSON.stringify(cmd)}\n`);
    const { value, done } = await this.lines.next();
    if (done) throw new Error(`${this.name} bench process ${this.exited ?? 'closed its output'} during '${cmd.op}'`);
    const reply = JSON.parse(value) as T & { error?: string };
    if (reply.error) throw new Error(`${this.name}: ${reply.error}`);
    return reply;
  }

  setup(cmd: Omit<ServeCommand, 'op'>): Promise<unknown> {
    return this.send({ op: 'setup', ...cmd });
  }

  async run(steps: number): Promise<number[]> {
    return (await this.send<{ seconds: number[] }>({ op: 'run', steps })).seconds;
  }

  async layerTimes(steps: number): Promise<LayerTime[]> {
    return (await this.timedLayerTimes(steps)).layers;
  }

  /** layerTimes, and each step's wall seconds (the same steps). */
  timedLayerTimes(steps: number): Promise<{ layers: LayerTime[]; seconds: number[] }> {
    return this.send<{ layers: LayerTime[]; seconds: number[] }>({ op: 'layerTimes', steps });
  }

  /** FLOP/s of a large bf16 3x3 convolution of batch n (PyTorch's process only: oneDNN's reachable bf16 rate). */
  async roofFlops(n: number, steps: number): Promise<number> {
    return (await this.send<{ flops: number }>({ op: 'roof', n, steps })).flops;
  }

  /** The AMX tiles' own bfloat16 FLOP/s on every thread (our process only; 0 without AMX). */
  async amxPeakFlops(): Promise<number> {
    return (await this.send<{ flops: number }>({ op: 'amxPeak' })).flops;
  }

  stats(): Promise<{ peakRssBytes: number; torchVersion: string; threads: number }> {
    return this.send({ op: 'stats' });
  }

  close(): void {
    this.reader.close();
    this.child.stdin.end();
  }
}
