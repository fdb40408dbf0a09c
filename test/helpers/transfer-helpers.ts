/**
 * Shared pieces of the transfer-workflow and `compare` tests: temp folders, the compiled CLI in a
 * child process, a transfer model on a TF.js backbone, and small file checks.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Backbone } from '../../lib/applications/backbone.js';
import { fromTfjs } from '../../lib/applications/tfjs.js';
import { transferModel } from '../../lib/applications/transfer-model.js';
import type { LayerConfig, Shape } from '../../lib/keras-format/config.js';
import { layers } from '../../lib/models/layers.js';
import type { Sequential } from '../../lib/models/sequential.js';
import { repoRoot } from './paths.js';
import { sharedPetImages } from './pet-images.js';
import { sharedTinyBackbone } from './tiny-backbone.js';

export const cliPath = path.join(repoRoot, 'dist/lib/cli/main.js');
const helpersDir = path.dirname(fileURLToPath(import.meta.url));

/** Runs `fn` in a fresh temp folder that is removed afterwards. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), `transferlab-${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * `node dist/lib/cli/main.js ...args` with the cache pointed at `cacheDir` (env as well as any
 * `--cache-dir` the caller passes), never at the user's cache.
 */
export function runCli(
  args: string[],
  options: {
    cacheDir: string;
    cwd?: string;
    env?: Record<string, string>;
    onStdout?: (soFar: string, child: ChildProcess) => void;
    /** interrupt the run after this epoch, as Ctrl-C would (a test hook, see helpers/stop-after-epoch.ts). */
    stopAfterEpoch?: number;
  },
): Promise<CliResult> {
  const hook = options.stopAfterEpoch === undefined ? [] : ['--import', pathToFileURL(path.join(helpersDir, 'stop-after-epoch.js')).href];
  const hookEnv = options.stopAfterEpoch === undefined ? {} : { TRANSFERLAB_TEST_STOP_AFTER_EPOCH: String(options.stopAfterEpoch) };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...hook, cliPath, ...args], {
      cwd: options.cwd ?? repoRoot,
      env: { ...process.env, TRANSFERLAB_CACHE_DIR: options.cacheDir, TERM: 'dumb', ...hookEnv, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      options.onStdout?.(stdout, child);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** A readable explanation of a CLI run for assertion messages. */
export function describeRun(r: CliResult): string {
  const tail = (s: string) => (s.length > 4000 ? `…${s.slice(-4000)}` : s);
  return `exit ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}\n--- stdout ---\n${tail(r.stdout)}\n--- stderr ---\n${tail(r.stderr)}`;
}

// biome-ignore lint/suspicious/noExplicitAny: tests read many JSON shapes and assert on them field by field
export async function readJson<T = any>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

/** Signature, IHDR first, positive size, IEND last: a structurally valid PNG. */
export async function assertPng(file: string): Promise<{ width: number; height: number }> {
  const bytes = await readFile(file);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (bytes.length < 45 || !bytes.subarray(0, 8).equals(signature)) throw new Error(`${file} is not a PNG (bad signature)`);
  if (bytes.toString('latin1', 12, 16) !== 'IHDR') throw new Error(`${file}: first chunk is not IHDR`);
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  if (!(width > 0 && height > 0)) throw new Error(`${file}: empty image ${width}x${height}`);
  if (bytes.toString('latin1', bytes.length - 8, bytes.length - 4) !== 'IEND')
    throw new Error(`${file}: does not end with IEND (truncated?)`);
  return { width, height };
}

/** |a - b| <= rel * max(|a|, |b|, tiny), element by element, with a message naming the key. */
export function assertClose(actual: readonly number[], expected: readonly number[], rel: number, what: string): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length} vs ${expected.length}`);
  actual.forEach((a, i) => {
    const b = expected[i]!;
    const scale = Math.max(Math.abs(a), Math.abs(b), 1e-12);
    if (!(Math.abs(a - b) <= rel * scale)) {
      throw new Error(
        `${what}[${i}]: ${a} vs ${b} (relative difference ${Math.abs(a - b) / scale} > ${rel})\nactual:   ${JSON.stringify(actual)}\nexpected: ` +
          `${JSON.stringify(expected)}`,
      );
    }
  });
}

export interface TransferModel {
  model: Sequential;
  /** layers [0, baseLayers) are the frozen pretrained base. */
  baseLayers: number;
  backbone: Backbone;
}

/**
 * The TF.js model at `modelJson` cut at `outputLayer`, frozen, with a head, its pretrained
 * weights loaded and compiled with Adam / binary crossentropy.
 */
export async function tfjsTransferModel(options: {
  modelJson: string;
  outputLayer: string;
  inputShape: Shape;
  head: LayerConfig[];
  seed: number;
  backbone?: Backbone;
}): Promise<TransferModel> {
  const backbone =
    options.backbone ?? (await fromTfjs(options.modelJson, { inputShape: options.inputShape, outputLayer: options.outputLayer }));
  const model = transferModel({ base: backbone, head: options.head, inputShape: options.inputShape, seed: options.seed });
  model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  return { model, baseLayers: model.baseLayers, backbone };
}

/** Flatten → Dense `hidden` relu (none when 0) → Dense 1 sigmoid. */
export function smallHead(hidden: number): LayerConfig[] {
  const head: LayerConfig[] = [layers.flatten()];
  if (hidden > 0) head.push(layers.dense({ units: hidden, activation: 'relu' }));
  head.push(layers.dense({ units: 1, activation: 'sigmoid' }));
  return head;
}

/**
 * What the `compare` tests run on: 120 generated photos (96 train / 24 validation by the default
 * split) and the generated MobileNet-like backbone, cut at its feature layer.
 */
export async function generatedCompareInputs(): Promise<{ dataDir: string; backboneArgs: string[]; outputLayer: string }> {
  const [dataDir, tiny] = await Promise.all([sharedPetImages({ perClass: 60, broken: false }), sharedTinyBackbone()]);
  return { dataDir, backboneArgs: ['--backbone', tiny.modelJson, '--backbone-output', tiny.outputLayer], outputLayer: tiny.outputLayer };
}
