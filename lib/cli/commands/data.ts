import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_SEED } from '../../config/defaults.js';
import { inspectCatsVsDogs } from '../../data/cats-vs-dogs.js';
import { checkDecode, type DecodeCheck } from '../../data/check-decode.js';
import { FolderSource } from '../../data/folder-source.js';
import { describeIgnored, inspectImageFolder } from '../../data/image-folder.js';
import type { DatasetInfo } from '../../data/open-splits.js';
import type { ImageSource } from '../../data/source.js';
import { unusableError } from '../../data/usable.js';
import { withOptionFlags } from '../option-flags.js';

const HELP = `transferlab data info — what a dataset holds, before any training

Usage:
  transferlab data info --data-dir PATH      cats_vs_dogs from an extracted PetImages folder (or its parent)
  transferlab data info --archive PATH       cats_vs_dogs from kagglecatsanddogs_5340.zip, read in place
  transferlab data info --image-folder PATH  any folder laid out as PATH/<class>/<images>

Options:
  --splits TRAIN,VAL   tfds split syntax (default "train[:80%],train[-20%:]"); also train[:1000], train[10%:20%]
  --limit N            keep the first N examples (in order) before splitting
  --seed N             image folders only: seed of the file order (default ${DEFAULT_SEED}, as compare)
  --check-decode       decode every example and list the ones that fail, with the reason (slow)
  --json               print one JSON object instead of text
  -h, --help           this text

cats_vs_dogs follows tensorflow_datasets 4.0.1 exactly: entries named PetImages/(Cat|Dog)/<n>.jpg,
skipped when "JFIF" is not in their first 512 bytes, ordered by md5("train" + name), labels cat=0,
dog=1. The split is decided before decoding, so images that fail to decode never shift it.

Examples:
  transferlab data info --archive ~/Downloads/kagglecatsanddogs_5340.zip
  transferlab data info --data-dir ./PetImages --check-decode
  transferlab data info --image-folder ./flowers --splits "train[:90%],train[90%:]" --json
`;

/** `transferlab data ...`; returns the exit code (0 ok, 1 failed, 2 bad usage). */
export interface CommandIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

export async function dataCommand(argv: string[], io: CommandIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string' },
        archive: { type: 'string' },
        'image-folder': { type: 'string' },
        splits: { type: 'string' },
        limit: { type: 'string' },
        seed: { type: 'string' },
        'check-decode': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    io.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  if (positionals[0] !== 'info' || positionals.length > 1) {
    io.stderr.write(`Unknown data command "${positionals.join(' ')}"; only "info" exists.\n\n${HELP}`);
    return 2;
  }
  const sources = [values['data-dir'], values.archive, values['image-folder']].filter((v) => v !== undefined);
  if (sources.length !== 1) {
    io.stderr.write(`Give exactly one of --data-dir, --archive or --image-folder (got ${sources.length}).\n\n${HELP}`);
    return 2;
  }
  const usage = (message: string): number => {
    io.stderr.write(`${message}\nRun "transferlab data info --help" for the syntax.\n`);
    return 2;
  };
  let splits: [string, string] | undefined;
  if (values.splits !== undefined) {
    const parts = values.splits.split(',').map((s) => s.trim());
    if (parts.length !== 2) return usage(`--splits needs two splits separated by a comma (got "${values.splits}").`);
    splits = [parts[0]!, parts[1]!];
  }
  const intOption = (name: string, raw: string | undefined): number | undefined | Error => {
    if (raw === undefined) return undefined;
    return /^\d+$/.test(raw) ? Number(raw) : new Error(`--${name} must be a non-negative integer (got "${raw}").`);
  };
  const limit = intOption('limit', values.limit);
  const seed = intOption('seed', values.seed);
  if (limit instanceof Error) return usage(limit.message);
  if (seed instanceof Error) return usage(seed.message);

  let info: DatasetInfo;
  let warnings: DecodeCheck['warnings'] = [];
  let source: ImageSource | undefined;
  let names: string[] = [];
  try {
    if (values['image-folder'] !== undefined) {
      const r = await inspectImageFolder({ root: values['image-folder'], splits, limit, seed });
      info = r.info;
      names = [...r.parts.train, ...r.parts.validation].map((e) => e.name);
      if (values['check-decode']) {
        source = new FolderSource(path.resolve(values['image-folder']));
        await source.entries();
      }
    } else {
      const r = await inspectCatsVsDogs({ dataDir: values['data-dir'], archive: values.archive, splits, limit });
      info = r.info;
      source = r.source;
      names = [...r.parts.train, ...r.parts.validation].map((e) => e.name);
    }
    if (values['check-decode'] && source) {
      const checked = await checkDecode(source, [...new Set(names)], { progress: true });
      info.decodeFailures = checked.failures;
      warnings = checked.warnings;
    }
  } catch (error) {
    io.stderr.write(`data info failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await source?.close();
  }
  if (info.examples === 0) {
    io.stderr.write(`data info: ${withOptionFlags(unusableError(info)!)}\n`);
    return 1;
  }
  if (values.json) {
    const out = { ...info, decodeChecked: values['check-decode'], ...(values['check-decode'] ? { decodeWarnings: warnings } : {}) };
    io.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } else {
    io.stdout.write(formatInfo(info, values['check-decode'], warnings));
  }
  return 0;
}

const n = (v: number): string => v.toLocaleString('en-US');

export function formatInfo(info: DatasetInfo, checked: boolean, warnings: DecodeCheck['warnings'] = []): string {
  const balance = (counts: number[]): string => info.classNames.map((c, i) => `${c} ${n(counts[i] ?? 0)}`).join(', ');
  const imageFolder = info.ignoredFolders !== undefined; // the JFIF rule is cats_vs_dogs's only
  const rows: [string, string][] = [
    ['files seen', n(info.files)],
    ['dropped by name', n(info.skippedByName)],
    ...(imageFolder ? [] : [['skipped by JFIF rule', n(info.skippedByJfif)] as [string, string]]),
    ['examples', n(info.examples)],
    [info.splitSpecs[0], `${n(info.splits.train)}  (${balance(info.classCounts.train)})`],
    [info.splitSpecs[1], `${n(info.splits.validation)}  (${balance(info.classCounts.validation)})`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  const lines = [`${info.name} from ${info.source}`, ...rows.map(([k, v]) => `  ${k.padEnd(width)}${v}`)];
  lines.push(`  classes: ${info.classNames.map((c, i) => `${i}=${c}`).join(', ')}`);
  if (info.ignoredFolders?.length) lines.push(`  not classes: ${describeIgnored(info.ignoredFolders)}`);
  lines.push(`  first keys: ${info.firstKeys.join(', ')}`);
  if (checked) {
    if (info.decodeFailures.length === 0) lines.push('decode check: every example decodes');
    else {
      lines.push(`decode check: ${info.decodeFailures.length} example(s) cannot be decoded and will be left out of training:`);
      for (const f of info.decodeFailures) lines.push(`  ${f.path}: ${f.reason}`);
    }
    if (warnings.length) {
      lines.push(`decode warnings: ${warnings.length} example(s) decode, with warnings from the image decoder:`);
      for (const w of warnings) lines.push(`  ${w.path}: ${w.messages.join('; ')}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
