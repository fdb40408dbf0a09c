import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { DatasetInfo } from '../data/open-splits.js';
import { barrier, isChief } from '../distributed/index.js';
import { workerDevice } from '../distributed/launch-env.js';
import { emptyCache } from '../engine/memory.js';
import { native } from '../engine/native.js';
import { bf16Support, type DtypePolicyName, FLAG_POLICY } from '../models/mixed-precision.js';
import { formatResultsTable } from '../reports/terminal.js';
import type { ModelRunSummary, RunSummary } from '../reports/types.js';
import { parseRunSummary } from '../reports/validate.js';
import { writeRunReport } from '../reports/write-report.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { type CompareConfig, faithfulSchedule, MODEL_LABELS } from './config.js';
import { decodeExperimentData } from './data.js';
import { describeEnvironment } from './environment.js';
import { checkDecoded, PreflightError, preflight } from './preflight.js';
import { epochsDone, sameDataReason } from './resume-flags.js';
import { InterruptedError, trainModel } from './train-model.js';
import { trainingProblem } from './verdict.js';

export interface CompareResult {
  runDir: string;
  /** undefined when interrupted before any model started (no run folder was created). */
  summary?: RunSummary;
  interrupted: boolean;
}

/** The default run folder: `runs/<local timestamp>`. */
export function defaultRunDir(now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return path.join(
    'runs',
    `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}_${pad(now.getHours())}-${pad(now.getMinutes())}-${pad(now.getSeconds())}`,
  );
}

export async function readRunConfig(runDir: string): Promise<CompareConfig> {
  const file = path.join(runDir, 'config.json');
  if (!existsSync(file)) throw new Error(`${runDir} is not a run folder: it has no config.json`);
  const { bf16: _featuresOnly, ...config } = JSON.parse(await fs.readFile(file, 'utf8')) as CompareConfig & { bf16?: boolean };
  // runs from before --mixed-precision computed in float32 (their `bf16` applied to features only),
  // runs from before --conv-algorithm with auto
  return { ...config, mixedPrecision: config.mixedPrecision ?? 'fp32', convAlgorithm: config.convAlgorithm ?? 'auto' };
}

/** The engine settings a run's config fixes for the process: intra-op threads, float32's convolution algorithm. */
export function applyEngineConfig(config: CompareConfig): void {
  native().setThreads(config.threads);
  native().setConvAlgorithm(config.convAlgorithm);
}

/** The policy this machine runs the config's `mixedPrecision` with, saying why when it cannot. */
export function runPolicy(config: CompareConfig, log: (line: string) => void): DtypePolicyName {
  if (config.mixedPrecision !== 'bf16') return 'float32';
  const support = bf16Support();
  if (support.supported) return FLAG_POLICY.bf16;
  log(`--mixed-precision bf16: ${support.reason}; this run computes in float32 instead.`);
  return 'float32';
}

/**
 * The experiment end to end: checks, data, each model, summary, plots and report. Everything that
 * can be checked is checked before the run folder is created, so a run that cannot start leaves
 * nothing behind. One model failing leaves the others' results standing; Ctrl-C stops at the next
 * batch and leaves a run folder that `--resume` continues.
 */
export async function runCompare(
  config: CompareConfig,
  options: { resume?: boolean; log?: (line: string) => void } = {},
): Promise<CompareResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const resume = options.resume ?? false;
  const runDir = path.resolve(config.out);
  applyEngineConfig(config);

  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('\nInterrupted: stopping after this batch (Ctrl-C again to quit at once). Continue later with --resume.');
  };
  process.on('SIGINT', onSigint);
  try {
    log('Checking before training: run folder, data, transfer model, disk space');
    const checked = await preflight(config, { resume, log });
    if (resume) await checkResumedData(runDir, config, checked.data.info);
    const dataStart = performance.now();
    // ranks decode one after the other (rank 0 first) so the others read the cache rank 0 filled
    // and every rank sees the same decoded files (their identity keys the features cache)
    if (!isChief()) await barrier();
    const data = await decodeExperimentData(checked.data, config);
    if (isChief()) await barrier();
    const dataSeconds = (performance.now() - dataStart) / 1000;
    checkDecoded(data);
    const info = data.info;
    if (interrupted) {
      log(`Interrupted before training: no run folder was created. Run the same command again (decoded images stay cached).`);
      return { runDir, interrupted };
    }

    const dtypePolicy = runPolicy(config, log);
    const environment = describeEnvironment({
      threads: config.threads,
      dtypePolicy,
      device: workerDevice(config.device ?? 'cpu'),
      convAlgorithm: config.convAlgorithm,
    });
    // in a data-parallel run, only rank 0 writes the run folder
    if (isChief()) {
      await fs.mkdir(runDir, { recursive: true });
      await writeJsonAtomic(path.join(runDir, 'config.json'), config);
      await writeJsonAtomic(path.join(runDir, 'environment.json'), environment);
      await writeJsonAtomic(path.join(runDir, 'dataset.json'), info);
    }
    log(
      `${data.datasetName}: ${info.examples} examples, train ${data.train.size} / validation ${data.validation.size}` +
        (info.decodeFailures.length ? `, ${info.decodeFailures.length} could not be decoded` : ''),
    );

    const models: ModelRunSummary[] = [];
    for (const kind of config.models) {
      if (interrupted) break;
      log(`\n== ${MODEL_LABELS[kind]} ==`);
      emptyCache(); // the previous model's buffers have other sizes
      try {
        const model = await trainModel({
          runDir,
          config,
          data,
          kind,
          resume,
          dataSeconds,
          dtypePolicy,
          backbone: checked.backbone,
          interrupted: () => interrupted,
          log,
        });
        const problem = trainingProblem(model);
        if (problem) log(`${MODEL_LABELS[kind]} failed: ${problem}`);
        models.push(problem ? { ...model, error: problem } : model);
      } catch (error) {
        if (error instanceof InterruptedError) {
          interrupted = true;
          break;
        }
        const message = error instanceof Error ? error.message : String(error);
        log(`${MODEL_LABELS[kind]} failed: ${message}`);
        models.push(failedModel(kind, message));
      }
    }
    const summary: RunSummary = {
      title: `${config.models.map((m) => MODEL_LABELS[m]).join(' vs ')} on ${data.datasetName}`,
      createdAt: new Date().toISOString(),
      config: { ...config },
      environment,
      dataset: { ...info, name: data.datasetName, source: data.source },
      validation: {
        examples: data.validation.size,
        ...(config.faithful
          ? {
              window: {
                steps: faithfulSchedule(data.train.size, data.validation.size, config.batchSize).validationSteps,
                batchSize: config.batchSize,
              },
            }
          : {}),
      },
      models,
    };
    if (!interrupted) {
      if (isChief()) await writeSummaryAndReport(runDir, summary);
      log(`\n${formatResultsTable(summary)}`);
      log(`\nRun folder: ${runDir} (report.html, val_loss.png, val_accuracy.png, summary.json)`);
    } else {
      log(`Run folder: ${runDir}. Continue with: transferlab compare --resume ${config.out}`);
    }
    return { runDir, summary, interrupted };
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** On --resume, data given anew (a moved folder) must be the data the models already trained on. */
async function checkResumedData(runDir: string, config: CompareConfig, now: DatasetInfo): Promise<void> {
  const file = path.join(runDir, 'dataset.json');
  if (!existsSync(file) || Object.keys(await epochsDone(runDir, config.models)).length === 0) return;
  const reason = sameDataReason(JSON.parse(await fs.readFile(file, 'utf8')) as DatasetInfo, now);
  if (reason) throw new PreflightError(`data: ${reason}`);
}

/**
 * Writes summary.json, then renders the report from what that file holds (not from the object in
 * memory, whose undefined values and NaN JSON cannot keep), so `transferlab report` later
 * regenerates the identical page.
 */
export async function writeSummaryAndReport(runDir: string, summary: RunSummary): Promise<void> {
  const file = path.join(runDir, 'summary.json');
  const text = `${JSON.stringify(summary, null, 2)}\n`;
  await writeFileAtomic(file, text);
  await writeRunReport(runDir, parseRunSummary(JSON.parse(text), file));
}

function failedModel(kind: keyof typeof MODEL_LABELS, error: string): ModelRunSummary {
  return {
    name: kind,
    label: MODEL_LABELS[kind],
    history: { loss: [], accuracy: [], val_loss: [], val_accuracy: [] },
    best: { epoch: 0, val_loss: NaN, val_accuracy: NaN },
    final: { val_loss: NaN, val_accuracy: NaN },
    params: { total: 0, trainable: 0, nonTrainable: 0 },
    epochSeconds: [],
    summaryText: '',
    error,
  };
}
