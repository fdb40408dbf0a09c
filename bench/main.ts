/**
 * `npm run bench [-- --json] [-- --quick]`: the engine's speed and memory next to PyTorch's on the
 * same machine, with the project's targets. The engine (bench/serve.ts) and PyTorch
 * (bench/pytorch_serve.py) each run in one warm process and are timed in alternating rounds
 * (bench/interleave.ts); the real runs from real caches run in their own child (bench/worker.ts).
 * Progress goes to stderr; stdout carries the table, or with --json exactly one JSON object.
 * A benchmark, not a test: targets are reported, never asserted.
 */

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { vgg16Layers } from '../lib/applications/vgg16.js';
import { benchAugmentation } from './augment.js';
import { checkPython, KEEP_ALLOCATIONS_ENV, runWorker } from './children.js';
import { benchDistributed } from './distributed.js';
import { seedExperimentSeconds } from './estimate.js';
import { type Interleaved, interleave } from './interleave.js';
import { type BenchOptions, parseArgs } from './options.js';
import type { LayerTime } from './protocol.js';
import { bytesText, fmt, formatTable, type Row, ratioRangeText, ratioText } from './report.js';
import { convFlopsPerLayer, convLayerRates, type RoofRound, roofline } from './roofline.js';
import { Session } from './session.js';
import { cpuInfo } from './system.js';

const SIZE = 300;
const here = path.dirname(fileURLToPath(import.meta.url));

export const TARGETS = {
  cnnImgPerSec: 50,
  cnnVsPytorch: 1.1,
  cnnPeakRssBytes: 6e9,
  vggImgPerSec: 7,
  vggVsPytorch: 1.0,
  cnnBf16VsPytorchBf16: 1.0,
  cnnBf16Speedup: 1.8,
  vggBf16VsPytorchBf16: 1.0,
  vggBf16RooflineFraction: 0.95,
  cnnEpochVsStep: 0.9,
  headEpochVsStep: 2,
  estimateSeconds: 2 * 3600,
  estimateSecondsBf16: 90 * 60,
} as const;

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const div = (a: number | null, b: number | null): number | null => (a !== null && b !== null && b > 0 ? a / b : null);
const atLeast = (v: number | null, t: number): boolean | null => (v === null ? null : v >= t);
const atMost = (v: number | null, t: number): boolean | null => (v === null ? null : v <= t);
const all = (...checks: (boolean | null)[]): boolean | null =>
  checks.some((c) => c === false) ? false : checks.every((c) => c === null) ? null : true;
const spread = (r: Interleaved | null) => (r ? { min: r.ratioMin, max: r.ratioMax, iqr: r.ratioIqr, rounds: r.roundRatios } : null);
const ratioWithSpread = (r: Interleaved | null) => (r ? ratioRangeText(r.ratioMedian, r.roundRatios) : '—');
/** a real run's per-epoch ratios (each epoch against the engine step timed after it) and their range */
const epochSpread = (r: unknown) =>
  Array.isArray(r) && r.length ? { min: Math.min(...(r as number[])), max: Math.max(...(r as number[])), rounds: r as number[] } : null;

async function main(): Promise<void> {
  const opts: BenchOptions = parseArgs(process.argv.slice(2));
  const s = opts.sizes;
  const cpu = cpuInfo();
  const py = opts.noPytorch ? { ok: false, reason: 'skipped (--no-pytorch)' } : checkPython(opts.python);
  const errors: Record<string, string> = {};
  const notes: Record<string, string> = {};
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

  const ours = new Session('engine', process.execPath, [path.join(here, 'serve.js')], process.env);
  const theirs = py.ok
    ? new Session('PyTorch', opts.python, [path.resolve(here, '../../bench/pytorch_serve.py')], {
        ...process.env,
        ...KEEP_ALLOCATIONS_ENV,
        OMP_NUM_THREADS: String(opts.threads),
        MKL_NUM_THREADS: String(opts.threads),
      })
    : null;
  const cnnSizes = { warmup: s.cnnWarmup, rounds: s.cnnRounds, steps: s.cnnStepsPerRound };
  const vggSizes = { warmup: s.vggWarmup, rounds: s.vggRounds, steps: s.vggStepsPerRound };
  const setup = (workload: 'cnn' | 'vgg16', precision: 'fp32' | 'bf16') => ({
    workload,
    precision,
    size: SIZE,
    batch: workload === 'cnn' ? s.cnnBatch : s.vggBatch,
    threads: opts.threads,
  });
  const log2 = (m: string) => log(`  ${m}`);

  /** Interleaved with PyTorch when it runs; otherwise ours alone, reported with no ratio. */
  async function measure(workload: 'cnn' | 'vgg16', precision: 'fp32' | 'bf16'): Promise<Interleaved> {
    const sizes = workload === 'cnn' ? cnnSizes : vggSizes;
    const batch = workload === 'cnn' ? s.cnnBatch : s.vggBatch;
    await ours.setup(setup(workload, precision));
    if (theirs) {
      await theirs.setup(setup(workload, precision));
      return interleave(ours, theirs, batch, sizes, log2);
    }
    await ours.run(sizes.warmup);
    const each = await ours.run(sizes.rounds * sizes.steps);
    const median = [...each].sort((a, b) => a - b)[each.length >> 1]!;
    return {
      oursImgPerSec: batch / median,
      theirsImgPerSec: NaN,
      ratioMedian: NaN,
      ratioMin: NaN,
      ratioMax: NaN,
      ratioIqr: [NaN, NaN],
      roundRatios: [],
      oursSeconds: each,
      theirsSeconds: [],
    };
  }

  /** PyTorch alone (when our side cannot run the workload): median img/s. */
  async function theirsAlone(workload: 'cnn' | 'vgg16', precision: 'fp32' | 'bf16'): Promise<number | null> {
    if (!theirs) return null;
    const sizes = workload === 'cnn' ? cnnSizes : vggSizes;
    await theirs.setup(setup(workload, precision));
    await theirs.run(sizes.warmup);
    const each = (await theirs.run(sizes.rounds * sizes.steps)).sort((a, b) => a - b);
    return (workload === 'cnn' ? s.cnnBatch : s.vggBatch) / each[each.length >> 1]!;
  }

  let cnnRss: number | null = null;
  let torchVersion: string | null = null;
  let threads = opts.threads;
  const cnn = await step('CNN training fp32, interleaved with PyTorch', 'cnnTrain', async () => {
    const r = await measure('cnn', 'fp32');
    const st = await ours.stats(); // first workload of this process: its peak is the CNN loop's own
    cnnRss = st.peakRssBytes;
    torchVersion = st.torchVersion;
    threads = st.threads;
    return r;
  });
  const pyCnnRss = theirs && cnn ? num((await theirs.stats().catch(() => null))?.peakRssBytes) : null;
  const layerTimes = await step('CNN training, per-layer times', 'layerTimes', async () => ({
    ours: await ours.layerTimes(s.layerSteps),
    pytorch: theirs ? await theirs.layerTimes(s.layerSteps) : null,
  }));
  let cnnBf16: Interleaved | null = null;
  let pyCnnBf16: number | null = null;
  if (cpu.bf16Supported) {
    await step('CNN training bf16 (mixed precision)', 'cnnTrainBf16', async () => {
      try {
        cnnBf16 = await measure('cnn', 'bf16');
        pyCnnBf16 = num(cnnBf16.theirsImgPerSec);
      } catch (error) {
        if (!(error as Error).message.startsWith('engine:')) throw error;
        notes.cnnTrainBf16 = (error as Error).message;
        log(`  ours: ${notes.cnnTrainBf16}; PyTorch alone`);
        pyCnnBf16 = await theirsAlone('cnn', 'bf16');
      }
    });
  } else notes.cnnTrainBf16 = cpu.bf16Reason;
  const vgg = await step('VGG16 features fp32, interleaved with PyTorch', 'vgg16Features', () => measure('vgg16', 'fp32'));
  const vggBf16 = cpu.bf16Supported
    ? await step('VGG16 features bf16, interleaved with PyTorch', 'vgg16FeaturesBf16', () => measure('vgg16', 'bf16'))
    : null;
  // the compute roof VGG16 bf16 is set against: the best rate reached here on a bf16 3x3 convolution,
  // either PyTorch's on one large convolution or ours on VGG16's fastest layer (whichever is higher)
  const vggConvFlops = convFlopsPerLayer(vgg16Layers([SIZE, SIZE, 3]), [SIZE, SIZE, 3]);
  const vggFlops = [...vggConvFlops.values()].reduce((a, b) => a + b, 0);
  // per-layer rates and the whole pass from the same batches (the warm process still holds
  // measure('vgg16', 'bf16')'s workload, warmed up: keep these together)
  const vggBf16RoofRounds = vggBf16
    ? await step('VGG16 bf16 per-layer convolution rates and the pass, timed together (ours)', 'vgg16Bf16LayerRates', async () => {
        // a failed round loses only itself, and says so
        const rounds: RoofRound[] = [];
        const failures: string[] = [];
        for (let r = 0; r < s.roofRounds; r++) {
          try {
            const { layers, seconds } = await ours.timedLayerTimes(1);
            rounds.push({ rates: convLayerRates(vggConvFlops, layers, s.vggBatch), passSeconds: seconds[0]! });
          } catch (error) {
            failures.push((error as Error).message);
          }
        }
        if (!rounds.length) throw new Error(`every round failed: ${failures[0]}`);
        if (failures.length) notes.vgg16Bf16LayerRates = `${failures.length} of ${s.roofRounds} rounds failed: ${failures[0]}`;
        return rounds;
      })
    : null;
  const pytorchRoof =
    theirs && vggBf16
      ? await step('bf16 compute roof (a large bf16 convolution in PyTorch)', 'bf16RoofFlops', () => theirs.roofFlops(s.roofBatch, 5))
      : null;
  // the hardware ceiling beside it: the AMX tiles' own rate, no memory traffic (informational; 0 without AMX)
  const amxPeak =
    vggBf16 && cpu.bf16Supported
      ? await step('AMX tile peak (bf16 FLOP/s of the tiles alone)', 'amxPeakFlops', () => ours.amxPeakFlops())
      : null;
  const roof = vggBf16RoofRounds ? roofline(vggBf16RoofRounds, vggFlops, s.vggBatch, pytorchRoof) : null;
  const bf16Roof = roof?.roof ?? null;
  const bf16RoofSource = roof?.source ?? null;
  const vggBf16LayerRates = roof?.rates ?? null;
  ours.close();
  theirs?.close();
  const real = await step('real runs from real caches (decode, CNN epoch, feature cache, head epochs)', 'realRuns', () =>
    runWorker('real-runs', { sizes: s, threads: opts.threads, bf16: cpu.bf16Supported }),
  );
  const distributed = await step('distributed step overhead (2 ranks, Gloo on loopback)', 'distributedStepOverhead', () =>
    benchDistributed(s),
  );

  const rr = (key: string) => num(real?.result[key]);
  const headSpread = epochSpread(real?.result.headEpochRatios);
  const cnnEpochSpread = epochSpread(real?.result.cnnEpochRatios);
  const cnnImg = num(cnn?.oursImgPerSec);
  const pyCnnImg = num(cnn?.theirsImgPerSec);
  const cnnRatio = num(cnn?.ratioMedian);
  const cnnBf16Img = num((cnnBf16 as Interleaved | null)?.oursImgPerSec);
  const vggImg = num(vgg?.oursImgPerSec);
  const pyVggImg = num(vgg?.theirsImgPerSec);
  const vggBf16Img = num(vggBf16?.oursImgPerSec);
  const pyVggBf16Img = num(vggBf16?.theirsImgPerSec);
  const vggBf16Roofline = roof?.fraction ?? null;
  if (vggBf16 && !roof) notes.vgg16Bf16RooflineFraction = 'no VGG16 bf16 batch was timed layer by layer (see errors)';
  // our interleaved VGG16 bf16 rate's share of a FLOP rate
  const vggBf16Share = (rate: number | null) => (vggBf16Img === null || !rate ? null : (vggBf16Img * vggFlops) / rate);
  const vggBf16AmxPeakFraction = vggBf16Share(amxPeak);
  const cnnEpochImg = rr('cnnEpochImgPerSec');
  const rates = {
    decodeImgPerSec: rr('decodeColdImgPerSec'),
    cnnTrainImgPerSec: cnnEpochImg,
    cnnEvalImgPerSec: rr('cnnEvalImgPerSec'),
    vggFeaturesImgPerSec: vggImg,
    headStepMs: rr('headEpochStepMs'),
    headEvalImgPerSec: rr('headEvalImgPerSec'),
  };
  const cnnBf16Speedup = div(cnnBf16Img, cnnImg);
  const estimate = seedExperimentSeconds(rates);
  const cnnEpochBf16 = cnnBf16Speedup === null || cnnEpochImg === null ? null : cnnEpochImg * cnnBf16Speedup;
  const estimateBf16 = seedExperimentSeconds({ ...rates, cnnTrainImgPerSec: cnnEpochBf16, vggFeaturesImgPerSec: vggBf16Img });
  if (estimateBf16 === null) notes.seedExperimentEstimateSecondsBf16 = 'needs our bf16 CNN training and VGG16 bf16 rates';

  // the largest of the real runs' loops (CNN epoch + evaluation, uncached transfer epoch, feature pass, head epochs)
  const loopPeaks = Object.values((real?.result.peakRssBytesByLoop ?? {}) as Record<string, number | null>);
  const realLoopsPeakRss = loopPeaks.length && loopPeaks.every((v) => typeof v === 'number') ? Math.max(...(loopPeaks as number[])) : null;
  if (real && realLoopsPeakRss === null) notes.realLoopsPeakRssBytes = 'no per-loop peak memory (needs /proc/self/clear_refs)';

  const targetsMet = {
    cnnTrain: all(atLeast(cnnImg, TARGETS.cnnImgPerSec), atLeast(cnnRatio, TARGETS.cnnVsPytorch)),
    cnnTrainPeakRss: atMost(cnnRss, TARGETS.cnnPeakRssBytes),
    realLoopsPeakRss: atMost(realLoopsPeakRss, TARGETS.cnnPeakRssBytes),
    cnnTrainBf16: all(
      atLeast(num((cnnBf16 as Interleaved | null)?.ratioMedian), TARGETS.cnnBf16VsPytorchBf16),
      atLeast(cnnBf16Speedup, TARGETS.cnnBf16Speedup),
    ),
    vgg16Features: all(atLeast(vggImg, TARGETS.vggImgPerSec), atLeast(num(vgg?.ratioMedian), TARGETS.vggVsPytorch)),
    vgg16Bf16: atLeast(num(vggBf16?.ratioMedian), TARGETS.vggBf16VsPytorchBf16),
    vgg16Bf16Roofline: atLeast(vggBf16Roofline, TARGETS.vggBf16RooflineFraction),
    cnnEpoch: atLeast(rr('cnnEpochVsEngineStep'), TARGETS.cnnEpochVsStep),
    headEpochStep: atMost(rr('headEpochStepVsEngineStep'), TARGETS.headEpochVsStep),
    seedExperiment: atMost(estimate, TARGETS.estimateSeconds),
    seedExperimentBf16: atMost(estimateBf16, TARGETS.estimateSecondsBf16),
  };

  const augment = await benchAugmentation(opts.quick).catch((e: Error) => void (errors.augment = e.message));
  const report = {
    augmentMsPerBatch: augment?.augmentMsPerBatch ?? null,
    cnnTrainImgPerSec: cnnImg,
    pytorchCnnTrainImgPerSec: pyCnnImg,
    cnnTrainRatioToPytorch: cnnRatio,
    cnnTrainRatioSpread: spread(cnn),
    cnnTrainPeakRssBytes: cnnRss,
    realLoopsPeakRssBytes: realLoopsPeakRss,
    cnnTrainBf16ImgPerSec: cnnBf16Img,
    pytorchCnnTrainBf16ImgPerSec: pyCnnBf16,
    cnnTrainBf16SpeedupOverFp32: cnnBf16Speedup,
    cnnTrainBf16RatioToPytorch: num((cnnBf16 as Interleaved | null)?.ratioMedian),
    vgg16FeaturesImgPerSec: vggImg,
    pytorchVgg16FeaturesImgPerSec: pyVggImg,
    vgg16FeaturesRatioToPytorch: num(vgg?.ratioMedian),
    vgg16FeaturesRatioSpread: spread(vgg),
    vgg16FeaturesBf16ImgPerSec: vggBf16Img,
    pytorchVgg16FeaturesBf16ImgPerSec: pyVggBf16Img,
    vgg16FeaturesBf16RatioToPytorch: num(vggBf16?.ratioMedian),
    vgg16FeaturesBf16RatioSpread: spread(vggBf16),
    vgg16Bf16RooflineFraction: vggBf16Roofline,
    bf16RoofTflops: bf16Roof === null ? null : bf16Roof / 1e12,
    bf16RoofSource,
    pytorchBf16ConvTflops: pytorchRoof === null ? null : pytorchRoof / 1e12,
    amxPeakTflops: amxPeak ? amxPeak / 1e12 : null,
    vgg16Bf16AmxPeakFraction: vggBf16AmxPeakFraction,
    vgg16Bf16LayerTflops: vggBf16LayerRates ? Object.fromEntries([...vggBf16LayerRates].map(([k, v]) => [k, v / 1e12])) : null,
    vgg16Bf16SpeedupOverFp32: div(vggBf16Img, vggImg),
    bf16Supported: cpu.bf16Supported,
    bf16Reason: cpu.bf16Reason,
    layerTimes: layerTimes ?? null,
    cnnEpochImgPerSec: cnnEpochImg,
    cnnEpochVsEngineStep: rr('cnnEpochVsEngineStep'),
    cnnEpochVsEngineStepSpread: cnnEpochSpread,
    headEpochStepMs: rr('headEpochStepMs'),
    headEngineStepMs: rr('headEngineStepMs'),
    headEpochStepVsEngineStep: rr('headEpochStepVsEngineStep'),
    headEpochStepVsEngineStepSpread: headSpread,
    transferEpochCostRatioUncachedToCached: rr('transferCostRatioUncachedToCached'),
    decodeColdImgPerSec: rates.decodeImgPerSec,
    decodeCachedImgPerSec: rr('decodeCachedImgPerSec'),
    seedExperimentEstimateSeconds: estimate,
    seedExperimentEstimateSecondsBf16: estimateBf16,
    distributedStepOverhead: distributed,
    threads,
    cpuModel: cpu.model,
    cores: cpu.cores,
    quick: opts.quick,
    torchVersion,
    pytorch: py.ok ? { python: opts.python, torchVersion: py.torchVersion, cnnTrainPeakRssBytes: pyCnnRss } : { skipped: py.reason },
    targetsMet,
    notes,
    details: {
      sizes: s,
      cnnTrain: cnn,
      cnnTrainBf16: cnnBf16,
      vgg16Features: vgg,
      vgg16FeaturesBf16: vggBf16,
      // every round's fraction and roof; `unpaired`: the interleaved bf16 rate over the median round's
      // roof (how the fraction was computed before 2026-12-02)
      vgg16Bf16Roofline: roof
        ? {
            fractions: roof.fractions,
            roofTflops: roof.roofs.map((r) => r / 1e12),
            roofSources: roof.sources,
            unpaired: vggBf16Share(roof.roof),
          }
        : null,
      realRuns: real ? { ...real.result, peakRssBytes: real.maxRssBytes } : null,
      augment: augment ?? null,
      seconds: (performance.now() - started) / 1000,
    },
    errors,
  };

  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }

  const pyRef = (v: number | null) => (py.ok ? `PyTorch ${fmt(v)}` : 'PyTorch skipped');
  const minutes = (v: number | null) => (v === null ? '—' : `${(v / 60).toFixed(0)} min`);
  const rows: Row[] = [
    {
      metric: 'CNN training fp32 (img/s)',
      ours: fmt(cnnImg),
      reference: pyRef(pyCnnImg),
      ratio: ratioWithSpread(cnn),
      target: `>= ${TARGETS.cnnImgPerSec}, >= ${TARGETS.cnnVsPytorch.toFixed(1)}x PyTorch`,
      met: targetsMet.cnnTrain,
    },
    {
      metric: 'CNN training peak RSS',
      ours: bytesText(cnnRss),
      reference: py.ok ? `PyTorch ${bytesText(pyCnnRss)}` : 'PyTorch skipped',
      ratio: ratioText(div(cnnRss, pyCnnRss)),
      target: `<= ${bytesText(TARGETS.cnnPeakRssBytes)}`,
      met: targetsMet.cnnTrainPeakRss,
    },
    {
      metric: 'CNN training bf16 (img/s)',
      ours: cnnBf16Img === null ? 'n/a' : fmt(cnnBf16Img),
      reference: pyRef(pyCnnBf16),
      ratio: ratioWithSpread(cnnBf16),
      target: `>= ${TARGETS.cnnBf16VsPytorchBf16.toFixed(1)}x PyTorch, >= ${TARGETS.cnnBf16Speedup}x our fp32`,
      met: targetsMet.cnnTrainBf16,
    },
    {
      metric: 'VGG16 features fp32 (img/s)',
      ours: fmt(vggImg, 2),
      reference: pyRef(pyVggImg),
      ratio: ratioWithSpread(vgg),
      target: `>= ${TARGETS.vggImgPerSec}, >= ${TARGETS.vggVsPytorch.toFixed(1)}x PyTorch`,
      met: targetsMet.vgg16Features,
    },
    {
      metric: 'VGG16 features bf16 (img/s)',
      ours: cpu.bf16Supported ? fmt(vggBf16Img, 2) : 'n/a',
      reference: cpu.bf16Supported ? pyRef(pyVggBf16Img) : cpu.bf16Reason,
      ratio: ratioWithSpread(vggBf16),
      target: `>= ${TARGETS.vggBf16VsPytorchBf16.toFixed(1)}x PyTorch bf16`,
      met: targetsMet.vgg16Bf16,
    },
    {
      metric: 'VGG16 bf16 share of the bf16 compute roof',
      ours: vggBf16Roofline === null ? 'n/a' : `${(vggBf16Roofline * 100).toFixed(0)}%`,
      reference: bf16Roof === null ? 'not measured' : `${(bf16Roof / 1e12).toFixed(2)} TFLOP/s (${bf16RoofSource})`,
      ratio: '—',
      target: `>= ${TARGETS.vggBf16RooflineFraction * 100}%`,
      met: targetsMet.vgg16Bf16Roofline,
    },
    {
      metric: 'VGG16 bf16 share of the AMX tile peak',
      ours: vggBf16AmxPeakFraction === null ? 'n/a' : `${(vggBf16AmxPeakFraction * 100).toFixed(0)}%`,
      reference: amxPeak ? `${(amxPeak / 1e12).toFixed(2)} TFLOP/s (the tiles alone, no memory traffic)` : 'no AMX here',
      ratio: '—',
      target: '(info)',
      met: null,
    },
    {
      metric: 'CNN real epoch (img/s)',
      ours: fmt(cnnEpochImg),
      reference: `engine step ${fmt(rr('cnnEngineStepImgPerSec'))}`,
      ratio: ratioRangeText(rr('cnnEpochVsEngineStep'), cnnEpochSpread?.rounds),
      target: `>= ${TARGETS.cnnEpochVsStep}x engine step`,
      met: targetsMet.cnnEpoch,
    },
    {
      metric: 'head step, real feature cache (ms)',
      ours: fmt(rr('headEpochStepMs')),
      reference: `engine step ${fmt(rr('headEngineStepMs'))}`,
      ratio: ratioRangeText(rr('headEpochStepVsEngineStep'), headSpread?.rounds),
      target: `<= ${TARGETS.headEpochVsStep}x engine step`,
      met: targetsMet.headEpochStep,
    },
    {
      metric: 'real runs: largest loop peak RSS',
      ours: bytesText(realLoopsPeakRss),
      reference: 'CNN epoch, uncached transfer epoch, features, head',
      ratio: '—',
      target: `<= ${bytesText(TARGETS.cnnPeakRssBytes)}`,
      met: targetsMet.realLoopsPeakRss,
    },
    {
      metric: `transfer, ${s.headEpochs} epochs: uncached/cached`,
      ours: ratioText(rr('transferCostRatioUncachedToCached')),
      reference: 'measured real epochs',
      ratio: '—',
      target: '(info)',
      met: null,
    },
    {
      metric: 'decode cold / cached (img/s)',
      ours: `${fmt(rates.decodeImgPerSec)} / ${fmt(rr('decodeCachedImgPerSec'), 0)}`,
      reference: String(real?.result.inputs ?? ''),
      ratio: '—',
      target: '(info)',
      met: null,
    },
    {
      metric: 'seed experiment estimate fp32 / bf16',
      ours: `${minutes(estimate)} / ${minutes(estimateBf16)}`,
      reference: 'formula in bench/estimate.ts',
      ratio: '—',
      target: `<= ${TARGETS.estimateSeconds / 60} / ${TARGETS.estimateSecondsBf16 / 60} min`,
      met: all(targetsMet.seedExperiment, targetsMet.seedExperimentBf16),
    },
  ];
  const out: string[] = [];
  out.push(`transferlab bench${opts.quick ? ' --quick (tiny sizes: numbers are NOT meaningful)' : ''}`);
  out.push(
    `CPU: ${cpu.model} (${cpu.cores} cores), threads: ${threads}, libtorch ${torchVersion ?? '?'}, ` +
      `PyTorch: ${py.ok ? `${opts.python} torch ${py.torchVersion}` : py.reason}; bf16: ${cpu.bf16Reason}`,
  );
  out.push(
    `interleaved: CNN batch ${s.cnnBatch}, ${s.cnnRounds} rounds x ${s.cnnStepsPerRound} steps per engine (${s.cnnWarmup} warm-up); ` +
      `VGG16 batch ${s.vggBatch}, ${s.vggRounds} rounds x ${s.vggStepsPerRound}; ratio = PyTorch s/step over ours, median (min-max) of rounds`,
  );
  out.push('');
  out.push(formatTable(rows));
  if (layerTimes) out.push('', layerTable(layerTimes.ours, layerTimes.pytorch));
  out.push('');
  for (const [k, v] of Object.entries(notes)) out.push(`note on ${k}: ${v}`);
  out.push(
    `total ${((performance.now() - started) / 1000).toFixed(0)} s. Figures vary with machine load; targets are reported, not asserted.`,
  );
  if (distributed) {
    out.push(
      `distributed (CNN, Gloo on loopback): all-reduce of ${String(distributed.gradients)} gradients ${fmt(num(distributed.allreduceMs))} ms, ` +
        `data-parallel step overhead ${fmt(num(distributed.stepOverheadMs))} ms; ` +
        `2 ranks x 1 thread ${fmt(num(distributed.twoRanksOneThreadImgPerSec))} img/s vs 1 rank x 2 threads ${fmt(num(distributed.oneRankTwoThreadsImgPerSec))} img/s`,
    );
  }
  for (const [k, v] of Object.entries(errors)) out.push(`error in ${k}: ${v}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

/** Per-layer milliseconds per CNN training step, ours next to PyTorch's, rows by layer name. */
function layerTable(ours: LayerTime[], theirs: LayerTime[] | null): string {
  const names = [...ours.map((r) => r.layer), ...(theirs ?? []).map((r) => r.layer).filter((n) => !ours.some((r) => r.layer === n))];
  const find = (rows: LayerTime[] | null, n: string) => rows?.find((r) => r.layer === n);
  const ms = (v: number | undefined) => (v === undefined ? '—' : v.toFixed(1));
  const cells = [['layer (ms/step)', 'fwd', 'bwd', 'PyTorch fwd', 'PyTorch bwd']];
  for (const n of names) {
    const o = find(ours, n);
    const t = find(theirs, n);
    cells.push([n, ms(o?.forwardMs), ms(o?.backwardMs), ms(t?.forwardMs), ms(t?.backwardMs)]);
  }
  const widths = cells[0]!.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  return cells.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
