import { parseArgs } from 'node:util';
import { APPLICATION_WEIGHTS } from '../../applications/weights-registry.js';
import { type CacheEntry, listCache, removeCacheEntry } from '../../data/cache-inventory.js';
import { CATS_VS_DOGS_ARCHIVE } from '../../data/cats-vs-dogs-archive.js';
import { resolveCacheDir } from '../../util/cache-dir.js';
import { formatBytes, formatDuration } from '../../util/progress-bar.js';

const HELP = `transferlab cache: see and clear what the cache holds

Usage: transferlab cache list|clear [--older-than DURATION] [--stale] [--json] [--cache-dir DIR]

  list               each entry (decoded images, features, downloads): size, last use, what it was
                     made from (source, image size, backbone) and its state
  clear              removes the entries chosen (all without a filter) and prints what it freed;
                     an entry being filled by a running process is always kept
  --older-than D     only entries not used for D: 90s, 30m, 12h, 7d, 2w
  --stale            only entries whose source changed or vanished since they were made
  --json             list: the entries as one JSON array (sizes in bytes)
  --cache-dir DIR    the cache (default: TRANSFERLAB_CACHE_DIR, then ~/.cache/transferlab)
  -h, --help         this help

A decoded or feature entry counts as used whenever a run opens it; a download when it was fetched
or last verified. Filters combine: --stale --older-than 7d picks stale entries unused for a week.
`;

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** `7d` → milliseconds; an error naming the value otherwise. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(text.trim());
  if (!m) throw new Error(`--older-than '${text}' is not a duration: give a number and a unit, e.g. 90s, 30m, 12h, 7d or 2w`);
  return Number(m[1]) * UNITS[m[2]!]! * 1000;
}

export async function cacheCommand(argv: string[]): Promise<number> {
  let values;
  let positionals: string[];
  let olderThanMs: number | undefined;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'older-than': { type: 'string' },
        stale: { type: 'boolean' },
        json: { type: 'boolean' },
        'cache-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
    if (values['older-than'] !== undefined) olderThanMs = parseDuration(values['older-than']);
  } catch (error) {
    console.error(`transferlab cache: ${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const [action, ...extra] = positionals;
  if ((action !== 'list' && action !== 'clear') || extra.length > 0) {
    console.error(`transferlab cache: give list or clear${positionals.length ? ` (got '${positionals.join(' ')}')` : ''}\n\n${HELP}`);
    return 2;
  }
  const root = resolveCacheDir(values['cache-dir']);
  const now = Date.now();
  const chosen = (await listCache(root, [...Object.values(APPLICATION_WEIGHTS), CATS_VS_DOGS_ARCHIVE])).filter(
    (e) => (!values.stale || e.stale !== undefined) && (olderThanMs === undefined || now - e.lastUsed.getTime() > olderThanMs),
  );
  if (action === 'list' && values.json) {
    console.log(JSON.stringify(chosen, null, 2));
    return 0;
  }
  if (action === 'list') {
    printList(root, chosen, now);
    return 0;
  }
  let freed = 0;
  let removed = 0;
  for (const entry of chosen) {
    if (!(await removeCacheEntry(entry))) {
      console.log(`kept ${entry.path}: being filled by a running process`);
      continue;
    }
    removed++;
    freed += entry.bytes;
    console.log(`removed ${entry.path} (${formatBytes(entry.bytes)})`);
  }
  console.log(`freed ${formatBytes(freed)} (${freed} bytes) in ${removed} entr${removed === 1 ? 'y' : 'ies'} from ${root}`);
  return 0;
}

function printList(root: string, entries: CacheEntry[], now: number): void {
  if (entries.length === 0) {
    console.log(`no cache entries in ${root}`);
    return;
  }
  const rows = entries.map((e) => [
    e.kind,
    formatBytes(e.bytes),
    `${formatDuration((now - e.lastUsed.getTime()) / 1000)} ago`,
    e.stale ? `stale: ${e.stale}` : e.state,
    [e.source, e.imageSize && `${e.imageSize[0]}x${e.imageSize[1]}`, e.backbone].filter(Boolean).join(', ') || '?',
    e.path,
  ]);
  const all = [['kind', 'size', 'last used', 'state', 'made from', 'entry'], ...rows];
  const widths = all[0]!.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  for (const r of all)
    console.log(
      r
        .map((cell, c) => (c === 1 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    );
  const total = entries.reduce((s, e) => s + e.bytes, 0);
  console.log(`total ${formatBytes(total)} (${total} bytes) in ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, ${root}`);
}
