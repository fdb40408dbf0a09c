import { existsSync, promises as fs, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import type { Backbone } from '../applications/backbone.js';
import { checkDecode } from '../data/check-decode.js';
import { unusableError } from '../data/usable.js';
import { resolveChain } from '../models/resolve.js';
import { experimentCnnLayers } from '../models/zoo.js';
import { resolveCacheDir } from '../util/cache-dir.js';
import { loadBackbone } from './backbone.js';
import type { CompareConfig } from './config.js';
import { type ExperimentData, type InspectedData, inspectExperimentData } from './data.js';

/** Images decoded per split before anything is cached: enough to catch a folder of junk. */
const SAMPLE_PER_SPLIT = 8;

/** A problem found before any model trained: the run folder is not created. */
export class PreflightError extends Error {}

export interface CacheEstimate {
  decodedBytes: number;
  featureBytes: number;
  freeBytes: number;
  dir: string;
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 0)} MB`;

/**
 * Everything that can be checked before training, cheapest first: the run folder, the data (a
 * decoded sample), the transfer model's backbone and weights, and disk space for the caches.
 * Nothing is written to the run folder; the returned data is ready to decode.
 */
export async function preflight(
  config: CompareConfig,
  options: { resume: boolean; log: (line: string) => void },
): Promise<{ data: InspectedData; estimate: CacheEstimate; backbone?: Backbone }> {
  const { log } = options;
  await checkRunFolder(config.out, options.resume);
  const data = await inspectExperimentData(config).catch((error: unknown) => {
    throw new PreflightError(`data: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  });
  try {
    const { info } = data;
    const unusable = unusableError(info);
    if (unusable) throw new PreflightError(`data: ${unusable.message}`, { cause: unusable });
    await checkDecodeSample(data, log);
    log(
      `data: ${info.examples} examples, train ${info.splits.train} / validation ${info.splits.validation}, classes ${info.classNames.join(', ')}`,
    );
    if (config.models.includes('cnn')) checkCnnInput(config);
    // loaded once here, and handed on to training (a VGG16 HDF5 file takes seconds to read)
    const transfer = config.models.includes('transfer') ? await checkBackbone(config, log) : undefined;
    const featureSize = transfer?.featureSize ?? 0;
    const examples = info.splits.train + info.splits.validation;
    const [h, w] = config.imageSize;
    const dir = resolveCacheDir(config.cacheDir);
    const estimate: CacheEstimate = {
      decodedBytes: examples * h * w * 3,
      featureBytes: config.featureCache ? examples * featureSize * 4 : 0,
      freeBytes: await freeSpace(dir),
      dir,
    };
    log(
      `disk: decoded images ${mb(estimate.decodedBytes)} (${examples} × ${h}×${w}×3 bytes)` +
        (estimate.featureBytes ? `, features ${mb(estimate.featureBytes)} (${examples} × ${featureSize} × 4 bytes)` : '') +
        `; ${mb(estimate.freeBytes)} free in ${dir}`,
    );
    if (estimate.decodedBytes + estimate.featureBytes > estimate.freeBytes) {
      throw new PreflightError(
        `disk: the caches need about ${mb(estimate.decodedBytes + estimate.featureBytes)} and ${dir} has ${mb(estimate.freeBytes)} free. ` +
          `Free some space, put the cache elsewhere (--cache-dir), or use less data (--limit, --image-size).`,
      );
    }
    return { data, estimate, backbone: transfer?.backbone };
  } catch (error) {
    await data.imageSource.close();
    throw error;
  }
}

/** The run folder must be creatable (or, for --resume, exist) and writable; a finished or started run is not overwritten. */
async function checkRunFolder(out: string, resume: boolean): Promise<void> {
  const dir = path.resolve(out);
  const stat = await fs.stat(dir).catch(() => undefined);
  if (stat && !stat.isDirectory()) throw new PreflightError(`--out ${out} is a file, not a folder; choose another --out.`);
  if (!resume && existsSync(path.join(dir, 'config.json'))) {
    throw new PreflightError(`${dir} already holds a run; continue it with --resume ${out}, or choose another --out`);
  }
  let existing = dir;
  while (!existsSync(existing)) existing = path.dirname(existing);
  try {
    await fs.access(existing, fsConstants.W_OK);
  } catch {
    throw new PreflightError(`cannot write the run folder ${dir}: ${existing} is not writable. Choose another --out.`);
  }
}

/** Decodes a few images of each split (small, nothing cached): a folder of junk stops here. */
async function checkDecodeSample(data: InspectedData, log: (line: string) => void): Promise<void> {
  const spread = <T>(xs: T[]) =>
    Array.from(
      { length: Math.min(SAMPLE_PER_SPLIT, xs.length) },
      (_, i) => xs[Math.floor((i * xs.length) / Math.min(SAMPLE_PER_SPLIT, xs.length))]!,
    );
  const names = [...new Set([...spread(data.parts.train), ...spread(data.parts.validation)].map((e) => e.name))];
  const { failures } = await checkDecode(data.imageSource, names, { progress: false });
  if (failures.length === names.length) {
    throw new PreflightError(
      `data: none of ${names.length} sampled images from ${data.source} could be decoded, e.g. ` +
        failures
          .slice(0, 3)
          .map((f) => `${f.path}: ${f.reason}`)
          .join('; ') +
        `. Check the files (transferlab data info --check-decode lists every failure).`,
    );
  }
  if (failures.length > 0)
    log(`data: ${failures.length} of ${names.length} sampled images cannot be decoded; such images are left out of training`);
}

/** The CNN's five conv/pool blocks need a minimum input size. */
function checkCnnInput(config: CompareConfig): void {
  const fits = (h: number, w: number) => {
    try {
      resolveChain(experimentCnnLayers([h, w, 3]), [h, w, 3]);
      return true;
    } catch {
      return false;
    }
  };
  const [h, w] = config.imageSize;
  if (fits(h, w)) return;
  let side = Math.min(h, w);
  while (!fits(side, side)) side++;
  throw new PreflightError(
    `--image-size ${h}x${w} is too small for the CNN's five conv/pool blocks: use at least ${side} pixels per side.`,
  );
}

/** Loads the transfer model's pretrained base at the run's input size (fetching VGG16 weights when allowed), and its feature size. */
async function checkBackbone(config: CompareConfig, log: (line: string) => void): Promise<{ backbone: Backbone; featureSize: number }> {
  const inputShape = [...config.imageSize, 3];
  try {
    const backbone = await loadBackbone(config, inputShape);
    const shape = resolveChain(backbone.layers, inputShape).at(-1)!.outputShape;
    log(`transfer: ${backbone.name} cut at ${backbone.outputLayer}, features ${shape.join('×')} (${backbone.source})`);
    return { backbone, featureSize: shape.reduce((a, b) => a * b, 1) };
  } catch (error) {
    throw new PreflightError(`transfer model: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

async function freeSpace(dir: string): Promise<number> {
  let existing = path.resolve(dir);
  while (!existsSync(existing)) existing = path.dirname(existing);
  const stats = await fs.statfs(existing);
  return stats.bavail * stats.bsize;
}

/** After the full decode: images that failed may leave a split empty or a class missing. */
export function checkDecoded(data: ExperimentData): void {
  const failed = data.info.decodeFailures.length;
  for (const [split, d] of [
    [data.info.splitSpecs[0], data.train],
    [data.info.splitSpecs[1], data.validation],
  ] as const) {
    if (d.size === 0) {
      throw new PreflightError(
        `data: no image of the split ${split} could be decoded (${failed} failures in all, e.g. ` +
          `${data.info.decodeFailures
            .slice(0, 2)
            .map((f) => `${f.path}: ${f.reason}`)
            .join('; ')}).`,
      );
    }
  }
  const present = new Set(data.train.labels);
  if (present.size < 2) {
    throw new PreflightError(
      `data: after decoding, the training split holds images of ${present.size} class(es) ` +
        `(${[...present].map((l) => data.train.classNames[l]).join(', ') || 'none'}); a classifier needs at least two. ${failed} image(s) failed to decode.`,
    );
  }
}
