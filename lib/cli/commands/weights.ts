/**
 * `transferlab weights fetch|path vgg16`: downloads the pretrained VGG16 weights into the cache, or
 * says where they are. Output meant for scripts (the path) goes to stdout, everything else to stderr.
 */
import { parseArgs } from 'node:util';
import { APPLICATION_WEIGHTS } from '../../applications/weights-registry.js';
import {
  type Artifact,
  ArtifactFetchError,
  type ArtifactTable,
  artifactPath,
  fetchArtifact,
  getArtifact,
  locateArtifact,
  MIRROR_ENV,
} from '../../net/artifacts.js';
import { DownloadError } from '../../net/download.js';
import { formatBytes } from '../../util/progress-bar.js';
import { OPTION_FLAGS } from '../option-flags.js';

/** Seams for tests; the CLI dispatcher passes none. */
export interface WeightsCommandDeps {
  artifacts?: ArtifactTable;
  /** Replaces `~/.keras/models` as the other place searched. */
  alsoLookIn?: string[];
  stdout?: { write(text: string): unknown };
  stderr?: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  /** Passed to downloadFile (tests use short retry delays). */
  download?: { retryDelayMs?: number; stallTimeoutMs?: number };
}

function helpText(table: ArtifactTable): string {
  const vgg = table['vgg16-notop'] ?? APPLICATION_WEIGHTS['vgg16-notop']!;
  return `Usage: transferlab weights <fetch|path> vgg16 [options]

Pretrained weights for the transfer model: Keras VGG16 trained on ImageNet, without the
classifier top (${vgg.fileName}, ${formatBytes(vgg.size)}).

Commands:
  fetch vgg16   Download the weights into the cache and check them (size and md5). An
                interrupted download (Ctrl-C, lost connection) resumes where it stopped.
                Does nothing if a verified copy is already there. Prints the file's path.
  path vgg16    Print the path of the verified weights file, without downloading;
                exit status 1 if there is none yet.

Options:
  --cache-dir DIR   Cache folder; files go to DIR/downloads/. Default: $TRANSFERLAB_CACHE_DIR,
                    else $XDG_CACHE_HOME/transferlab, else ~/.cache/transferlab.
  --quiet           No progress bar.
  -h, --help        Show this help.

A copy that Keras already downloaded to ~/.keras/models/ is used as is.

Offline machine? Download the file elsewhere from
  ${vgg.urls[0]}
and put it at the path printed by \`transferlab weights path vgg16\` (DIR/downloads/${vgg.fileName}),
or give it to training directly with --weights PATH.
Set ${MIRROR_ENV}=URL to try URL/${vgg.fileName} first (a local mirror).

Examples:
  transferlab weights fetch vgg16
  transferlab weights fetch vgg16 --cache-dir /data/transferlab
  WEIGHTS=$(transferlab weights path vgg16) && ls -l "$WEIGHTS"
`;
}

/** Runs `transferlab weights ...` (argv after "weights"); returns the exit status. */
export async function weightsCommand(argv: string[], deps: WeightsCommandDeps = {}): Promise<number> {
  const stdout = deps.stdout ?? process.stdout;
  const stderr = deps.stderr ?? process.stderr;
  const table = deps.artifacts ?? APPLICATION_WEIGHTS;

  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    stderr.write(`transferlab weights: ${(error as Error).message}\nRun "transferlab weights --help" for usage.\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    stdout.write(helpText(table));
    return 0;
  }
  const [action, name, ...extra] = positionals;
  if (!action) {
    stderr.write(`transferlab weights: missing command (fetch or path).\n\n${helpText(table)}`);
    return 2;
  }
  if (action !== 'fetch' && action !== 'path') {
    stderr.write(`transferlab weights: unknown command "${action}"; use "fetch" or "path" (see --help).\n`);
    return 2;
  }
  if (!name) {
    stderr.write(`transferlab weights ${action}: say which weights, e.g. "transferlab weights ${action} vgg16".\n`);
    return 2;
  }
  let artifact: Artifact;
  try {
    artifact = getArtifact(name, table);
  } catch {
    stderr.write(`transferlab weights ${action}: unknown weights "${name}"; available: vgg16.\n`);
    return 2;
  }
  if (extra.length) {
    stderr.write(`transferlab weights ${action}: unexpected argument "${extra[0]}" (see --help).\n`);
    return 2;
  }
  const cacheDir = values['cache-dir'];
  const locate = { alsoLookIn: deps.alsoLookIn };

  if (action === 'path') {
    const found = await locateArtifact(artifact, cacheDir, locate);
    if (found) {
      stdout.write(`${found}\n`);
      return 0;
    }
    const destination = artifactPath(artifact, cacheDir);
    stderr.write(
      `No verified ${artifact.fileName} found.\n` +
        `Run "transferlab weights fetch vgg16${cacheDir ? ` --cache-dir ${cacheDir}` : ''}" to download it, or, offline, ` +
        `download it elsewhere from\n  ${artifact.urls[0]}\nand put it at:\n  ${destination}\n` +
        `Alternatively, give the file to training directly with --weights PATH.\n`,
    );
    return 1;
  }

  // Ctrl-C stops the transfer cleanly: the .part stays for a resume, no file appears at the final name.
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    const file = await fetchArtifact(artifact, {
      ...locate,
      cacheDir,
      quiet: values.quiet,
      signal: controller.signal,
      download: { ...deps.download, progressStream: stderr },
    });
    stdout.write(`${file}\n`);
    return 0;
  } catch (error) {
    if (error instanceof DownloadError && error.kind === 'aborted') {
      stderr.write(`\nInterrupted. ${error.message}\n`);
      return 130;
    }
    if (error instanceof ArtifactFetchError || error instanceof DownloadError) {
      const folder = error instanceof DownloadError && error.kind === 'disk' ? `Choose another folder with ${OPTION_FLAGS.cacheDir}. ` : '';
      stderr.write(`${error.message}\n${folder}Alternatively, give the file to training directly with --weights PATH.\n`);
      return 1;
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'cache-dir': { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
