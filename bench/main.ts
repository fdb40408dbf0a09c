/**
 * `npm run bench [-- --json] [-- --quick]`: the engine's speed and memory next to PyTorch's on the
 * same machine, with the project's targets. Each measurement runs in its own child process
 * (engine: bench/worker.ts; PyTorch: bench/*.py with /usr/bin/python3), one after another.
 * Progress goes to stderr; stdout carries the table, or with --json exactly one JSON object.
 * A benchmark, not a test: targets are reported, never asserted.
 */

import { checkPython, runPython, runWorker } from './children.js';
import { benchDistributed } from './distributed.js';
import { type BenchOptions, parseArgs } from './options.js';
import { bytesText, fmt, formatTable, type Row, ratioText } from './report.js';
import { cpuInfo } from './system.js';
import type { WorkerReply } from './worker.js';

const SIZE = 300;

export const TARGETS = {
  cnnImgPerSec: 50,
  cnnVsPytorch: 1.0,
  cnnPeakRssBytes: 6e9,
  vggImgPerSec: 7,
  vggVsPytorch: 1.0,
  bf16Speedup: 1.7,
  cacheRatio: 10,
  cachedDecodeVsCnn: 10,
} as const;

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

interface PyCnn {
  imgPerSec: number;
  stepSeconds: number[];
  peakRssBytes: number;
  torch: string;
  threads: number;
}
interface PyVgg {
  fp32ImgPerSec: number;
  bf16ImgPerSec?: number;
  peakRssBytes: number;
  torch: string;
  threads: number;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const div = (a: number | null, b: number | null): number | null => (a !== null && b !== null && b > 0 ? a / b : null);
const atLeast = (v: number | null, t: number): boolean | null => (v === null ? null : v >= t);
const all = (...checks: (boolean | null)[]): boolean | null =>
  checks.some((c) => c === false) ? false : checks.every((c) => c === null) ? null : true;

async function main(): Promise<void> {
  const opts: BenchOptions = parseArgs(process.argv.slice(2));
  const s = opts.sizes;
  const cpu = cpuInfo();
  const py = opts.noPytorch ? { ok: false, reason: 'skipped (--no-pytorch)' } : checkPython(opts.python);
  const errors: Record<string, string> = {};
  const started = performance.now();
  log(
    `transferlab bench${opts.quick ? ' (--quick: tiny sizes, numbers not meaningful)' : ''}: ${cpu.model}, ${opts.threads} thread(s), ${SIZE}x${SIZE}`,
  );
  log(py.ok ? `PyTorch reference: ${opts.python} (torch ${py.torchVersion})` : `PyTorch reference: ${py.reason}`);

  async function step<T>(label: string, key: string, fn: () => Promise<T>): Promise<T | null> {
    log(`\n[${label}]`);
    const t = performance.now();
    try {
      const r = await fn();
      log(`  done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      return r;
    } catch (error) {
      errors[key] = (error as Error).message;
      log(`  FAILED: ${(error as Error).message}`);
      return null;
    }
  }
  const worker = (name: string) => () => runWorker(name, { sizes: s, threads: opts.threads, bf16: cpu.bf16Supported });

  const cnn = await step('CNN training, engine', 'cnnTrain', worker('cnn-train'));
  const pyCnn = py.ok
    ? await step('CNN training, PyTorch', 'pytorchCnnTrain', () =>
        runPython<PyCnn>(opts.python, 'pytorch_cnn.py', [SIZE, s.cnnBatch, s.cnnSteps, opts.threads, s.cnnWarmup], opts.threads),
      )
    : null;
  const vgg = await step('VGG16 features, engine', 'vgg16Features', worker('vgg16-features'));
  const pyVgg = py.ok
    ? await step('VGG16 features, PyTorch', 'pytorchVgg16Features', () =>
        runPython<PyVgg>(
          opts.python,
          'pytorch_vgg16.py',
          [SIZE, s.vggBatch, s.vggBatches, opts.threads, s.vggWarmup, cpu.bf16Supported ? 1 : 0],
          opts.threads,
        ),
      )
    : null;
  const transfer = await step('transfer training cost, uncached vs cached, engine', 'transferCost', worker('transfer-cost'));
  const decode = await step('decode, cold and cached', 'decode', worker('decode'));
  const distributed = await step('distributed step overhead (2 ranks, Gloo on loopback)', 'distributedStepOverhead', () =>
    benchDistributed(s),
  );

  const r = (w: WorkerReply | null, key: string) => num(w?.result[key]);
  const cnnImg = r(cnn, 'imgPerSec');
  const pyCnnImg = num(pyCnn?.imgPerSec);
  const cnnRss = cnn ? cnn.maxRssBytes : null;
  const vggImg = r(vgg, 'fp32ImgPerSec');
  const vggBf16 = cpu.bf16Supported ? r(vgg, 'bf16ImgPerSec') : null;
  const bf16Err = cpu.bf16Supported ? r(vgg, 'bf16RelativeError') : null;
  const pyVggImg = num(pyVgg?.fp32ImgPerSec);
  const pyVggBf16 = num(pyVgg?.bf16ImgPerSec);
  const cacheRatio = r(transfer, 'ratio');
  const coldImg = r(decode, 'decodeColdImgPerSec');
  const cachedImg = r(decode, 'decodeCachedImgPerSec');
  const threads = cnn?.threads ?? vgg?.threads ?? opts.threads;

  const targetsMet = {
    cnnTrain: all(atLeast(cnnImg, TARGETS.cnnImgPerSec), atLeast(div(cnnImg, pyCnnImg), TARGETS.cnnVsPytorch)),
    cnnTrainPeakRss: cnnRss === null ? null : cnnRss <= TARGETS.cnnPeakRssBytes,
    vgg16Features: all(atLeast(vggImg, TARGETS.vggImgPerSec), atLeast(div(vggImg, pyVggImg), TARGETS.vggVsPytorch)),
    vgg16Bf16: atLeast(div(vggBf16, vggImg), TARGETS.bf16Speedup),
    featureCache: atLeast(cacheRatio, TARGETS.cacheRatio),
    cachedDecode: atLeast(div(cachedImg, cnnImg), TARGETS.cachedDecodeVsCnn),
  };

  const report = {
    cnnTrainImgPerSec: cnnImg,
    pytorchCnnTrainImgPerSec: pyCnnImg,
    cnnTrainRatioToPytorch: div(cnnImg, pyCnnImg),
    cnnTrainPeakRssBytes: cnnRss,
    vgg16FeaturesImgPerSec: vggImg,
    pytorchVgg16FeaturesImgPerSec: pyVggImg,
    vgg16FeaturesRatioToPytorch: div(vggImg, pyVggImg),
    vgg16FeaturesBf16ImgPerSec: vggBf16,
    vgg16Bf16SpeedupOverFp32: div(vggBf16, vggImg),
    vgg16Bf16RelativeError: bf16Err,
    bf16Supported: cpu.bf16Supported,
    bf16Reason: cpu.bf16Reason,
    pytorchVgg16FeaturesBf16ImgPerSec: pyVggBf16,
    transferEpochCostRatioUncachedToCached: cacheRatio,
    decodeColdImgPerSec: coldImg,
    decodeCachedImgPerSec: cachedImg,
    distributedStepOverhead: distributed,
    threads,
    cpuModel: cpu.model,
    cores: cpu.cores,
    quick: opts.quick,
    torchVersion: cnn?.torchVersion ?? vgg?.torchVersion ?? null,
    pytorch: py.ok ? { python: opts.python, torchVersion: py.torchVersion } : { skipped: py.reason },
    targetsMet,
    details: {
      sizes: s,
      cnnTrain: cnn?.result ?? null,
      pytorchCnnTrain: pyCnn,
      vgg16Features: vgg ? { ...vgg.result, peakRssBytes: vgg.maxRssBytes } : null,
      pytorchVgg16Features: pyVgg,
      transferCost: transfer ? { ...transfer.result, peakRssBytes: transfer.maxRssBytes } : null,
      decode: decode ? { ...decode.result, images: s.decodeImages, peakRssBytes: decode.maxRssBytes } : null,
      seconds: (performance.now() - started) / 1000,
    },
    errors,
  };

  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }

  const pyRef = (v: number | null) => (py.ok ? `PyTorch ${fmt(v)}` : 'PyTorch skipped');
  const t = transfer?.result as
    | { uncachedStepSecondsPerImage?: number; featureSecondsPerImage?: number; headStepSecondsPerImage?: number; epochs?: number }
    | undefined;
  const ms = (v: number | undefined) => (v === undefined ? '—' : `${(v * 1000).toFixed(v < 0.01 ? 2 : 0)} ms`);
  const rows: Row[] = [
    {
      metric: 'CNN training (img/s)',
      ours: fmt(cnnImg),
      reference: pyRef(pyCnnImg),
      ratio: ratioText(div(cnnImg, pyCnnImg)),
      target: `>= ${TARGETS.cnnImgPerSec}, >= ${TARGETS.cnnVsPytorch.toFixed(1)}x PyTorch`,
      met: targetsMet.cnnTrain,
    },
    {
      metric: 'CNN training peak RSS',
      ours: bytesText(cnnRss),
      reference: py.ok ? `PyTorch ${bytesText(pyCnn?.peakRssBytes)}` : 'PyTorch skipped',
      ratio: ratioText(div(cnnRss, num(pyCnn?.peakRssBytes))),
      target: `<= ${bytesText(TARGETS.cnnPeakRssBytes)}`,
      met: targetsMet.cnnTrainPeakRss,
    },
    {
      metric: 'VGG16 features fp32 (img/s)',
      ours: fmt(vggImg, 2),
      reference: pyRef(pyVggImg),
      ratio: ratioText(div(vggImg, pyVggImg)),
      target: `>= ${TARGETS.vggImgPerSec}, >= ${TARGETS.vggVsPytorch.toFixed(1)}x PyTorch`,
      met: targetsMet.vgg16Features,
    },
    cpu.bf16Supported
      ? {
          metric: 'VGG16 features bf16 (img/s)',
          ours: fmt(vggBf16, 2),
          reference: `fp32 ${fmt(vggImg, 2)}`,
          ratio: ratioText(div(vggBf16, vggImg)),
          target: `>= ${TARGETS.bf16Speedup}x fp32`,
          met: targetsMet.vgg16Bf16,
        }
      : {
          metric: 'VGG16 features bf16 (img/s)',
          ours: 'n/a',
          reference: cpu.bf16Reason,
          ratio: '—',
          target: `>= ${TARGETS.bf16Speedup}x fp32`,
          met: null,
        },
    {
      metric: 'VGG16 bf16 vs PyTorch bf16',
      ours: fmt(vggBf16, 2),
      reference: pyRef(pyVggBf16),
      ratio: ratioText(div(vggBf16, pyVggBf16)),
      target: '(info)',
      met: null,
    },
    {
      metric: 'VGG16 bf16 relative error',
      ours: bf16Err === null ? '—' : bf16Err.toExponential(2),
      reference: '||bf16-fp32||/||fp32||',
      ratio: '—',
      target: '(info)',
      met: null,
    },
    {
      metric: `transfer, ${t?.epochs ?? 20} epochs: uncached/cached`,
      ours: ratioText(cacheRatio),
      reference: 'cost of cached',
      ratio: ratioText(cacheRatio),
      target: `>= ${TARGETS.cacheRatio}x cheaper`,
      met: targetsMet.featureCache,
    },
    {
      metric: 'decode cold (img/s)',
      ours: fmt(coldImg),
      reference: String(decode?.result.inputs ?? ''),
      ratio: '—',
      target: '(info)',
      met: null,
    },
    {
      metric: 'decode cached (img/s)',
      ours: fmt(cachedImg, 0),
      reference: `CNN training ${fmt(cnnImg)}`,
      ratio: ratioText(div(cachedImg, cnnImg)),
      target: `>= ${TARGETS.cachedDecodeVsCnn}x CNN training`,
      met: targetsMet.cachedDecode,
    },
  ];
  const out: string[] = [];
  out.push(`transferlab bench${opts.quick ? ' --quick (tiny sizes: numbers are NOT meaningful)' : ''}`);
  out.push(
    `CPU: ${cpu.model} (${cpu.cores} cores), threads: ${threads}, libtorch ${report.torchVersion ?? '?'}, ` +
      `PyTorch: ${py.ok ? `${opts.python} torch ${py.torchVersion}` : py.reason}; bf16: ${cpu.bf16Reason}`,
  );
  out.push(
    `sizes: CNN batch ${s.cnnBatch} x ${s.cnnSteps} timed steps (${s.cnnWarmup} warm-up); VGG16 batch ${s.vggBatch} x ${s.vggBatches} timed (${s.vggWarmup} warm-up); ` +
      `inputs ${String(vgg?.result.inputs ?? '?')}, VGG16 weights ${String(vgg?.result.weights ?? '?')}`,
  );
  out.push('');
  out.push(formatTable(rows));
  out.push('');
  if (t) {
    out.push(
      `transfer cost per image: (a) uncached step ${ms(t.uncachedStepSecondsPerImage)}, (b) feature pass ${ms(t.featureSecondsPerImage)}, ` +
        `(c) head step from features ${ms(t.headStepSecondsPerImage)}; ratio = ${t.epochs}a / (b + ${t.epochs}c)`,
    );
  }
  out.push(
    `total ${((performance.now() - started) / 1000).toFixed(0)} s. Figures vary with machine load; targets are reported, not asserted.`,
  );
  if (distributed) {
    out.push(
      `distributed (CNN, Gloo on loopback): data-parallel step overhead ${fmt(num(distributed.stepOverheadMs))} ms for ${String(distributed.gradients)} gradients; ` +
        `2 ranks x 1 thread ${fmt(num(distributed.twoRanksOneThreadImgPerSec))} img/s vs 1 rank x 2 threads ${fmt(num(distributed.oneRankTwoThreadsImgPerSec))} img/s`,
    );
  }
  for (const [k, v] of Object.entries(errors)) out.push(`error in ${k}: ${v}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
