/**
 * The engine's warm bench process: `node dist/bench/serve.js`, one JSON command per stdin line,
 * one JSON reply per stdout line (progress on stderr). bench/pytorch_serve.py speaks the same
 * protocol for PyTorch, so bench/interleave.ts can alternate rounds of steps between the two.
 *   {"op":"setup","workload":"cnn"|"cnn-predict"|"vgg16","batch":64,"size":300,"threads":2,"precision":"fp32"|"bf16"}
 *   {"op":"run","steps":2}          -> {"seconds":[...]}          (a train step, or a predict batch)
 *   {"op":"layerTimes","steps":2}   -> {"layers":[{layer,forwardMs,backwardMs}],"seconds":[...]}  (means per step; each step's wall seconds)
 *   {"op":"fusion","on":false}     -> {"previous":true}  (the fused first conv block on/off, for A/B rounds)
 *   {"op":"amx","on":false}        -> {"previous":true}  (the AMX kernels on/off: native().setAmx)
 *   {"op":"dnnl","on":false}       -> {"previous":true}  (oneDNN called directly on/off: native().setDnnlConv)
 *   {"op":"stretch","on":false}    -> {"previous":true}  (float32 Winograd layers kept blocked on/off: native().setBlockedStretch)
 *   {"op":"amxPeak"}               -> {"flops":...}      (the AMX tiles' own bf16 rate on every thread, 0 without AMX)
 *   {"op":"stats"}                  -> {"peakRssBytes":...,"torchVersion":...,"threads":...}
 * A failed command replies {"error":"..."} and the process stays up for the next one.
 */
import { createInterface } from 'node:readline';
import { vgg16Layers } from '../lib/applications/vgg16.js';
import { native } from '../lib/engine/native.js';
import { Sequential } from '../lib/models/sequential.js';
import { experimentCnn } from '../lib/models/zoo.js';
import { cnnTrainStep, syntheticPixels } from './engine.js';
import { layerTimesOf, timedSteps } from './measure.js';
import type { LayerTime, ServeCommand } from './protocol.js';

type Step = () => Promise<unknown>;
let step: Step | undefined;

/** One training step (cnn) or one feature batch (vgg16) on synthetic pixels, at `precision`. */
function setup(cmd: ServeCommand): Record<string, unknown> {
  const size = cmd.size ?? 300;
  const batch = cmd.batch ?? 64;
  const shape = [batch, size, size, 3];
  const x = syntheticPixels(batch * size * size * 3);
  // Keras's mixed precision policy: float32 weights, bfloat16 convolutions and matrix products
  const dtype = cmd.precision === 'bf16' ? 'mixed_bfloat16' : 'float32';
  native().setThreads(cmd.threads ?? 0);
  if (cmd.workload === 'cnn') {
    step = cnnTrainStep(x, shape, dtype);
  } else if (cmd.workload === 'cnn-predict') {
    const model = experimentCnn([size, size, 3], { seed: 1, dtype });
    step = () => model.predict(x, shape);
  } else if (cmd.workload === 'vgg16') {
    const model = new Sequential(vgg16Layers([size, size, 3]), { name: 'vgg16', preprocessing: 'scale01', seed: 1, dtype });
    step = () => model.predict(x, shape);
  } else throw new Error(`unknown workload '${String(cmd.workload)}': use cnn, cnn-predict or vgg16`);
  return { ok: true };
}

async function run(steps: number): Promise<number[]> {
  if (!step) throw new Error('send a setup command before run');
  return timedSteps(0, steps, step);
}

async function layerTimes(steps: number): Promise<{ layers: LayerTime[]; seconds: number[] }> {
  let seconds: number[] = [];
  const rows = await layerTimesOf(async () => {
    seconds = await run(steps);
  });
  const layers = rows.map((r) => ({
    layer: r.layer,
    forwardMs: (r.forwardSeconds * 1000) / steps,
    backwardMs: (r.backwardSeconds * 1000) / steps,
  }));
  return { layers, seconds };
}

async function handle(cmd: ServeCommand): Promise<Record<string, unknown>> {
  switch (cmd.op) {
    case 'setup':
      return setup(cmd);
    case 'run':
      return { seconds: await run(cmd.steps ?? 1) };
    case 'layerTimes':
      return layerTimes(cmd.steps ?? 1);
    case 'fusion':
      return { previous: native().setFirstBlockFusion(cmd.on ?? true) };
    case 'amx':
      return { previous: native().setAmx(cmd.on ?? true) };
    case 'dnnl':
      return { previous: native().setDnnlConv(cmd.on ?? true) };
    case 'stretch':
      return { previous: native().setBlockedStretch(cmd.on ?? true) };
    case 'amxPeak':
      return { flops: native().amxPeakFlops() };
    case 'stats': {
      const info = native().info();
      return { peakRssBytes: process.resourceUsage().maxRSS * 1024, torchVersion: info.torchVersion, threads: info.threads };
    }
    default:
      throw new Error(`unknown op '${String(cmd.op)}'`);
  }
}

async function main(): Promise<void> {
  // commands are handled one at a time, in order: the caller waits for each reply
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    let reply: Record<string, unknown>;
    try {
      reply = await handle(JSON.parse(line) as ServeCommand);
    } catch (error) {
      reply = { error: (error as Error).message };
    }
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
