/**
 * Fetching downloadable files into `<cacheDir>/downloads/` and finding copies already on disk. The
 * files themselves are described where they belong (VGG16's weights in lib/applications/vgg16.ts,
 * the cats_vs_dogs archive in lib/data) and passed in as data.
 */

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { resolveCacheDir } from '../util/cache-dir.js';
import { formatBytes } from '../util/progress-bar.js';
import { DownloadError, type DownloadOptions, downloadFile, type Expectation, verifyFile } from './download.js';

export interface Artifact {
  id: string;
  description: string;
  /** Name of the file on disk (also appended to a mirror's base URL). */
  fileName: string;
  /** Other names accepted on the command line (e.g. `vgg16`). */
  aliases?: string[];
  /** Tried in order. */
  urls: string[];
  size: number;
  sha256?: string;
  md5?: string;
  /** True when the size/checksum come from third parties rather than the publisher. */
  unverifiedChecksum?: boolean;
  /** Other folders where a verified copy is accepted as is (e.g. Keras's own cache). */
  alsoLookIn?: () => string[];
}

export type ArtifactTable = Readonly<Record<string, Artifact>>;

/** Env var with a base URL; `<base>/<fileName>` is tried before the artifact's own URLs. */
export const MIRROR_ENV = 'TRANSFERLAB_MIRROR';

/** Looks an artifact up by id or alias in `table`; the error lists the known ids. */
export function getArtifact(id: string, table: ArtifactTable): Artifact {
  const artifact = table[id] ?? Object.values(table).find((a) => a.aliases?.includes(id));
  if (!artifact) {
    const known = Object.values(table).flatMap((a) => [a.id, ...(a.aliases ?? [])]);
    throw new Error(`Unknown artifact "${id}". Known artifacts: ${known.join(', ')}.`);
  }
  return artifact;
}

/** Where fetchArtifact saves an artifact: `<cacheDir>/downloads/<fileName>`. */
export function artifactPath(artifact: Artifact, cacheDir?: string): string {
  return path.join(resolveCacheDir(cacheDir), 'downloads', artifact.fileName);
}

export interface LocateOptions {
  /** Replaces the artifact's size/checksums. */
  expect?: Expectation;
  /** Replaces the artifact's extra folders (tests avoid the real ~/.keras this way). */
  alsoLookIn?: string[];
}

/**
 * The path of a verified copy already on disk (the cache's downloads folder first, then places
 * like `~/.keras/models/`), or undefined. Never touches the network.
 */
export async function locateArtifact(artifact: Artifact, cacheDir?: string, options: LocateOptions = {}): Promise<string | undefined> {
  const expect = expectationOf(artifact, options.expect);
  const own = artifactPath(artifact, cacheDir);
  if (await isFile(own)) {
    // Stamps are written only in our own cache; other folders are hashed each time.
    if ((await verifyFile(own, expect, { useStamp: true })).ok) return own;
  }
  const others = options.alsoLookIn ?? artifact.alsoLookIn?.() ?? [];
  for (const folder of others) {
    const candidate = path.join(folder, artifact.fileName);
    if ((await isFile(candidate)) && (await verifyFile(candidate, expect)).ok) return candidate;
  }
  return undefined;
}

export interface FetchArtifactOptions extends LocateOptions {
  cacheDir?: string;
  /** A base URL tried first as `<base>/<fileName>`; default: the TRANSFERLAB_MIRROR env var. */
  baseUrlOverride?: string;
  quiet?: boolean;
  signal?: AbortSignal;
  /** Passed to downloadFile (tests shorten timeouts and retry delays). */
  download?: Pick<DownloadOptions, 'stallTimeoutMs' | 'maxRedirects' | 'maxResumes' | 'retryDelayMs' | 'progressStream' | 'onProgress'>;
}

/** Error of fetchArtifact when no source worked; `attempts` holds each URL's failure. */
export class ArtifactFetchError extends Error {
  override name = 'ArtifactFetchError';
  constructor(
    message: string,
    readonly artifactId: string,
    readonly destination: string,
    readonly attempts: DownloadError[],
  ) {
    super(message);
  }
}

/**
 * Returns the path of a verified copy of the artifact, downloading it into
 * `<cacheDir>/downloads/` when no verified copy is found. Sources: the mirror override, then the
 * artifact's URLs in order; a failing source (offline, 404, bad bytes) moves on to the next.
 */
export async function fetchArtifact(artifact: Artifact, options: FetchArtifactOptions = {}): Promise<string> {
  const found = await locateArtifact(artifact, options.cacheDir, options);
  if (found) return found;

  const destination = artifactPath(artifact, options.cacheDir);
  const expect = expectationOf(artifact, options.expect);
  const urls = sourceUrls(artifact, options.baseUrlOverride ?? process.env[MIRROR_ENV]);
  const failures: DownloadError[] = [];
  for (const [index, url] of urls.entries()) {
    try {
      return await downloadFile({
        ...options.download,
        url,
        destination,
        expectedSize: expect.size,
        sha256: expect.sha256,
        md5: expect.md5,
        label: artifact.fileName,
        quiet: options.quiet,
        signal: options.signal,
      });
    } catch (error) {
      if (!(error instanceof DownloadError)) throw error;
      // Another mirror cannot fix a full disk or a user's Ctrl-C.
      if (error.kind === 'disk' || error.kind === 'aborted' || error.kind === 'input') throw error;
      failures.push(error);
      if (!options.quiet && index < urls.length - 1) {
        (options.download?.progressStream ?? process.stderr).write(`warning: ${url}: ${error.reason}; trying the next source.\n`);
      }
    }
  }
  const others = options.alsoLookIn ?? artifact.alsoLookIn?.() ?? [];
  const message = fetchFailureMessage(artifact, expect, destination, others, failures);
  throw new ArtifactFetchError(message, artifact.id, destination, failures);
}

/** The URLs fetchArtifact tries, in order. */
export function sourceUrls(artifact: Artifact, mirrorBase?: string): string[] {
  const urls: string[] = [];
  if (mirrorBase) {
    let base: URL;
    try {
      base = new URL(mirrorBase.endsWith('/') ? mirrorBase : `${mirrorBase}/`);
    } catch {
      throw new Error(`${MIRROR_ENV} / baseUrlOverride "${mirrorBase}" is not a valid URL; use e.g. http://mirror.example/files/.`);
    }
    urls.push(new URL(encodeURIComponent(artifact.fileName), base).href);
  }
  return [...urls, ...artifact.urls];
}

function expectationOf(artifact: Artifact, override?: Expectation): Expectation {
  if (override) return override;
  return { size: artifact.size, sha256: artifact.sha256, md5: artifact.md5 };
}

function fetchFailureMessage(
  artifact: Artifact,
  expect: Expectation,
  destination: string,
  others: string[],
  failures: DownloadError[],
): string {
  const lines = [`Could not download ${artifact.id} (${artifact.fileName}) from any source:`];
  for (const failure of failures) lines.push(`  - ${failure.url}: ${failure.reason}`);
  const offline = failures.some((f) => f.kind === 'network' || f.kind === 'http');
  if (offline) lines.push('This machine may be offline, or the servers unreachable (firewall, proxy).');
  const facts: string[] = [];
  if (expect.size !== undefined) facts.push(`${expect.size.toLocaleString('en-US')} bytes (${formatBytes(expect.size)})`);
  if (expect.sha256) facts.push(`sha256 ${expect.sha256}`);
  if (expect.md5) facts.push(`md5 ${expect.md5}`);
  lines.push(
    `To continue without network, download ${artifact.urls[0] ?? artifact.fileName} on another machine and put it at:`,
    `  ${destination}`,
  );
  if (others.length) lines.push(`(a verified copy in ${others.join(' or ')} is also used)`);
  if (facts.length) lines.push(`It is checked before use: ${facts.join(', ')}.`);
  if (artifact.unverifiedChecksum) {
    lines.push('Note: the recorded checksum of this artifact is unverified (from third-party sources).');
  }
  lines.push(`Or set ${MIRROR_ENV} to a base URL that serves ${artifact.fileName}.`);
  return lines.join('\n');
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}
