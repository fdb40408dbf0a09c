/**
 * Child process for one measurement: `node dist/bench/worker.js <name> <json options>`.
 * Progress goes to stderr; the last stdout line is one JSON object with the result and this
 * process's peak resident memory (so each figure's peak is its own loop's, not the sum of all).
 */
import { native } from '../lib/engine/native.js';
import type { BenchSizes } from './options.js';
import { benchRealRuns } from './real-runs.js';

export interface WorkerRequest {
  sizes: BenchSizes;
  threads: number;
  bf16: boolean;
}

export interface WorkerReply {
  result: Record<string, unknown>;
  maxRssBytes: number;
  threads: number;
  torchVersion?: string;
  parallelInfo?: string;
}

async function main(): Promise<void> {
  const [name, json] = process.argv.slice(2);
  const req = JSON.parse(json ?? '{}') as WorkerRequest;
  const n = native();
  n.setThreads(req.threads);
  const info = n.info();
  const engineInfo = { threads: info.threads, torchVersion: info.torchVersion, parallelInfo: info.parallelInfo };
  let result: Record<string, unknown>;
  switch (name) {
    case 'real-runs':
      result = await benchRealRuns({ images: req.sizes.realImages, batch: req.sizes.realBatch, headEpochs: req.sizes.headEpochs });
      break;
    default:
      throw new Error(`unknown benchmark '${name}'`);
  }
  const reply: WorkerReply = { result, maxRssBytes: process.resourceUsage().maxRSS * 1024, ...engineInfo };
  process.stdout.write(`${JSON.stringify(reply)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
