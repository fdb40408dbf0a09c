/**
 * Resumable, verified downloads over http/https with node built-ins only.
 *
 * Invariants: bytes go to `<destination>.part`; the final name appears only after the size and
 * checksum checks pass (a rename in the same folder), so an interrupted or bad transfer never
 * leaves a file that looks finished. A `.part` left behind (Ctrl-C, lost connection, full disk) is
 * resumed with an HTTP Range request next time.
 */

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { writeJsonAtomic } from '../util/atomic.js';
import { formatBytes, ProgressBar, type ProgressStream } from '../util/progress-bar.js';

export interface DownloadOptions {
  url: string;
  /** Final path of the file; `<destination>.part` holds the bytes until they verify. */
  destination: string;
  /** Expected size in bytes; checked before the rename, and early against the server's size. */
  expectedSize?: number;
  /** Expected SHA-256, hex. */
  sha256?: string;
  /** Expected MD5, hex. */
  md5?: string;
  /** Shown on the progress bar; default: the file name. */
  label?: string;
  /** No progress bar and no warnings. */
  quiet?: boolean;
  /** Abort the transfer (the .part is kept for a later resume); the promise rejects with kind 'aborted'. */
  signal?: AbortSignal;
  /** A connection that sends nothing for this long fails. Default 30 000 ms. */
  stallTimeoutMs?: number;
  /** Redirects followed per request. Default 10. */
  maxRedirects?: number;
  /** Automatic resumes after a transfer that broke off having made progress. Default 5. */
  maxResumes?: number;
  /** Pause before an automatic resume, multiplied by the attempt number. Default 1000 ms. */
  retryDelayMs?: number;
  /** Called as bytes arrive (including bytes already in the .part). */
  onProgress?: (done: number, total: number | undefined) => void;
  /** Where the progress bar and warnings go. Default process.stderr. */
  progressStream?: ProgressStream;
}

export type DownloadErrorKind = 'network' | 'http' | 'checksum' | 'size' | 'disk' | 'aborted' | 'input';

/** Every failure of downloadFile; `kind` lets callers decide whether another mirror may help. */
export class DownloadError extends Error {
  override name = 'DownloadError';
  constructor(
    message: string,
    readonly kind: DownloadErrorKind,
    readonly url: string,
    readonly destination: string,
    /** The short cause (e.g. "connection refused (ECONNREFUSED)"), for lists of failed mirrors. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface Expectation {
  size?: number;
  sha256?: string;
  md5?: string;
}

export interface VerifyResult {
  ok: boolean;
  size: number;
  sha256?: string;
  md5?: string;
  /** Human-readable mismatches, empty when ok. */
  problems: string[];
}

const USER_AGENT = 'transferlab (node)';
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * Downloads `url` to `destination` and returns the absolute destination path. Returns at once,
 * without network, when the destination already exists and verifies.
 */
export async function downloadFile(options: DownloadOptions): Promise<string> {
  const opts = normaliseOptions(options);
  const { destination, url } = opts;
  const part = partPath(destination);
  const expect: Expectation = { size: opts.expectedSize, sha256: opts.sha256, md5: opts.md5 };
  const warn = (text: string): void => {
    if (!opts.quiet) opts.progressStream.write(`warning: ${text}\n`);
  };

  if (await isFile(destination)) {
    const check = await verifyFile(destination, expect, { useStamp: true });
    if (check.ok) return destination;
    // A wrong file at the final name (truncated copy, other version) must not be used; fetching a
    // good one is the only way forward, so replace it.
    warn(`${destination} exists but does not match (${check.problems.join('; ')}); downloading it again.`);
    await removeQuietly(destination);
    await removeQuietly(stampPath(destination));
  }

  try {
    await fs.mkdir(path.dirname(destination), { recursive: true });
  } catch (error) {
    throw diskError(error, opts, part);
  }

  let resumesLeft = opts.maxResumes;
  let resumeAttempt = 0;
  let freshRestartDone = false;
  for (;;) {
    let offset = await fileSize(part);
    if (expect.size !== undefined && offset > expect.size) {
      // Longer than the whole file: not a prefix of it.
      await removeQuietly(part);
      offset = 0;
    }
    // Whether any byte of the .part came from a Range request; a checksum failure then may be the
    // old bytes' fault, which earns one download from zero.
    let usedResume = offset > 0;

    const alreadyComplete = expect.size !== undefined && offset === expect.size;
    if (!alreadyComplete) {
      try {
        const outcome = await transfer(opts, part, offset);
        usedResume = usedResume || outcome.resumed;
      } catch (error) {
        if (error instanceof TransferInterrupted && error.progressed && resumesLeft > 0 && !opts.signal?.aborted) {
          resumesLeft -= 1;
          resumeAttempt += 1;
          warn(`download of ${url} broke off (${error.reason}); resuming (attempt ${resumeAttempt}).`);
          if (opts.retryDelayMs > 0) await delay(opts.retryDelayMs * resumeAttempt, opts.signal);
          continue;
        }
        throw toDownloadError(error, opts, part);
      }
    }

    const check = await verifyFile(part, expect);
    if (check.ok) {
      try {
        // Flush to disk before the rename so that a crash cannot leave a final name with holes.
        const handle = await fs.open(part, 'r+');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
        await fs.rename(part, destination);
      } catch (error) {
        throw diskError(error, opts, part);
      }
      await writeStamp(destination, expect);
      return destination;
    }

    await removeQuietly(part);
    if (usedResume && !freshRestartDone) {
      freshRestartDone = true;
      warn(`resumed download of ${url} did not verify (${check.problems.join('; ')}); downloading it again from the start.`);
      continue;
    }
    throw verificationError(check, opts);
  }
}

/** `<destination>.part`, where bytes accumulate until they verify. */
export function partPath(destination: string): string {
  return `${destination}.part`;
}

/**
 * Checks size, then checksums with one streaming pass over the file. With `useStamp`, a stamp
 * written after an earlier successful check (same size and mtime) spares re-hashing large files.
 */
export async function verifyFile(file: string, expect: Expectation, options: { useStamp?: boolean } = {}): Promise<VerifyResult> {
  const stat = await fs.stat(file);
  const problems: string[] = [];
  if (expect.size !== undefined && stat.size !== expect.size) {
    // Hashing a file of the wrong size would only confirm the mismatch.
    problems.push(`size ${stat.size.toLocaleString('en-US')} bytes, expected ${expect.size.toLocaleString('en-US')}`);
    return { ok: false, size: stat.size, problems };
  }
  if (!expect.sha256 && !expect.md5) return { ok: true, size: stat.size, problems };
  if (options.useStamp && (await stampMatches(file, stat, expect))) {
    return { ok: true, size: stat.size, sha256: expect.sha256, md5: expect.md5, problems };
  }
  const algorithms: Array<'sha256' | 'md5'> = [];
  if (expect.sha256) algorithms.push('sha256');
  if (expect.md5) algorithms.push('md5');
  const digests = await hashFile(file, algorithms);
  for (const algorithm of algorithms) {
    const wanted = expect[algorithm]!.toLowerCase();
    if (digests[algorithm] !== wanted) {
      problems.push(`${algorithm} ${digests[algorithm]}, expected ${wanted}`);
    }
  }
  if (problems.length === 0 && options.useStamp) await writeStamp(file, expect);
  return { ok: problems.length === 0, size: stat.size, ...digests, problems };
}

/** Hex digests of a file, computed in one streaming pass. */
export async function hashFile(
  file: string,
  algorithms: ReadonlyArray<'sha256' | 'md5'>,
): Promise<Partial<Record<'sha256' | 'md5', string>>> {
  const hashes = algorithms.map((a) => [a, createHash(a)] as const);
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  for await (const chunk of stream) {
    for (const [, hash] of hashes) hash.update(chunk as Buffer);
  }
  return Object.fromEntries(hashes.map(([a, hash]) => [a, hash.digest('hex')]));
}

// ---------------------------------------------------------------------------------------------
// Transfer

type Normalised = Required<
  Pick<DownloadOptions, 'url' | 'destination' | 'stallTimeoutMs' | 'maxRedirects' | 'maxResumes' | 'retryDelayMs' | 'progressStream'>
> &
  Omit<DownloadOptions, 'url' | 'destination' | 'stallTimeoutMs' | 'maxRedirects' | 'maxResumes' | 'retryDelayMs' | 'progressStream'> & {
    label: string;
  };

function normaliseOptions(options: DownloadOptions): Normalised {
  const { url } = options;
  const destinationInput = options.destination;
  const fail = (message: string): never => {
    throw new DownloadError(message, 'input', String(url), String(destinationInput), message);
  };
  if (!destinationInput) fail('downloadFile: `destination` is empty; pass the path where the file should be saved.');
  const destination = path.resolve(destinationInput);
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    fail(`downloadFile: "${url}" is not a valid URL; pass an absolute http:// or https:// URL.`);
  }
  if (parsed!.protocol !== 'http:' && parsed!.protocol !== 'https:') {
    fail(`downloadFile: "${url}" uses ${parsed!.protocol}; only http:// and https:// are supported.`);
  }
  if (options.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(options.sha256)) {
    fail(`downloadFile: sha256 "${options.sha256}" is not 64 hex digits.`);
  }
  if (options.md5 !== undefined && !/^[0-9a-fA-F]{32}$/.test(options.md5)) {
    fail(`downloadFile: md5 "${options.md5}" is not 32 hex digits.`);
  }
  if (options.expectedSize !== undefined && !(Number.isSafeInteger(options.expectedSize) && options.expectedSize >= 0)) {
    fail(`downloadFile: expectedSize ${options.expectedSize} is not a non-negative integer number of bytes.`);
  }
  return {
    ...options,
    url,
    destination,
    label: options.label ?? path.basename(destination),
    stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
    maxRedirects: options.maxRedirects ?? 10,
    maxResumes: options.maxResumes ?? 5,
    retryDelayMs: options.retryDelayMs ?? 1000,
    progressStream: options.progressStream ?? process.stderr,
  };
}

/** A transfer that broke off; `progressed` says whether it wrote bytes (worth resuming). */
class TransferInterrupted extends Error {
  constructor(
    readonly reason: string,
    readonly progressed: boolean,
    readonly code: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(reason, options);
  }
}

class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly finalUrl: string,
  ) {
    super(`HTTP ${status}${statusText ? ` ${statusText}` : ''}`);
  }
}

class SizeAnnounceError extends Error {
  constructor(
    readonly announced: number,
    readonly expected: number,
  ) {
    super(`the server announces ${announced.toLocaleString('en-US')} bytes, expected ${expected.toLocaleString('en-US')}`);
  }
}

class WriteFailure extends Error {
  constructor(readonly original: NodeJS.ErrnoException) {
    super(original.message, { cause: original });
  }
}

interface TransferOutcome {
  /** Bytes were appended to an existing .part after a 206 answer. */
  resumed: boolean;
}

/** One request (plus redirects) writing into the .part, starting at `offset`. */
async function transfer(opts: Normalised, part: string, offset: number): Promise<TransferOutcome> {
  const signal = opts.signal;
  if (signal?.aborted) throw abortError();
  const response = await request(opts, offset);
  const res = response.res;
  const status = res.statusCode ?? 0;

  let start: number;
  let total: number | undefined;
  if (status === 416 && offset > 0) {
    res.resume();
    // The server has nothing past `offset`: either the .part is complete or it is longer than the
    // file. Content-Range `bytes */N` tells which; without it, verification decides.
    const announced = parseUnsatisfiedRange(res.headers['content-range']);
    if (announced === undefined || announced === offset) return { resumed: true };
    await removeQuietly(part);
    return transfer(opts, part, 0);
  } else if (status === 206) {
    const range = parseContentRange(res.headers['content-range']);
    if (!range || range.start !== offset) {
      res.destroy();
      if (offset === 0)
        throw new HttpStatusError(
          status,
          `unrequested partial content (${res.headers['content-range'] ?? 'no Content-Range'})`,
          response.finalUrl,
        );
      // A range we did not ask for: do not guess how it lines up; start again from zero.
      await removeQuietly(part);
      return transfer(opts, part, 0);
    }
    start = offset;
    total = range.total;
  } else if (status === 200) {
    // Also the answer of a server that ignores Range: its body starts at byte 0, so restart.
    start = 0;
    const length = Number(res.headers['content-length']);
    total = Number.isFinite(length) && res.headers['content-length'] !== undefined ? length : undefined;
  } else {
    res.resume();
    throw new HttpStatusError(status, res.statusMessage ?? '', response.finalUrl);
  }

  if (total !== undefined && opts.expectedSize !== undefined && total !== opts.expectedSize) {
    res.destroy();
    // The bytes in the .part came from a file of another size; they cannot be trusted either.
    await removeQuietly(part);
    throw new SizeAnnounceError(total, opts.expectedSize);
  }
  const displayTotal = opts.expectedSize ?? total;
  if (signal?.aborted) {
    res.destroy();
    throw abortError();
  }

  const bar = opts.quiet
    ? undefined
    : new ProgressBar({ label: opts.label, total: displayTotal, unit: 'bytes', initial: start, stream: opts.progressStream });
  let received = 0;
  const onAbort = (): void => {
    res.destroy(abortError());
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await saveBody(res, part, start > 0, (chunk) => {
      received += chunk.length;
      bar?.update(start + received);
      opts.onProgress?.(start + received, displayTotal);
    });
  } catch (error) {
    bar?.stop();
    if (error instanceof WriteFailure) throw error;
    if (signal?.aborted) throw abortError();
    const reason = response.timedOut() ? stallReason(opts) : describeNetworkError(error);
    throw new TransferInterrupted(reason, received > 0, errorCode(error), { cause: error });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  // A body shorter than announced that ended without an error (connection: close) is a break too.
  if (total !== undefined && start + received < total) {
    bar?.stop();
    throw new TransferInterrupted(
      `connection closed after ${formatBytes(start + received)} of ${formatBytes(total)}`,
      received > 0,
      'ECONNRESET',
    );
  }
  bar?.finish();
  return { resumed: start > 0 };
}

/**
 * Appends (or writes) the response body to `file`. Unlike stream.pipeline, a body that breaks off
 * does not destroy the file stream: every byte received is flushed first, so the resume offset
 * (the .part's size) covers all of them. Rejects with the read error, or a WriteFailure.
 */
function saveBody(res: http.IncomingMessage, file: string, append: boolean, onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    // Pausing the response makes Node's http client drop what is still unparsed in the socket if
    // the connection then breaks; a large write buffer keeps pauses rare (disks outpace networks).
    // Correctness does not depend on it: a resume starts from the .part's actual size.
    const out = createWriteStream(file, { flags: append ? 'a' : 'w', highWaterMark: 8 << 20 });
    let readError: unknown;
    let writeError: NodeJS.ErrnoException | undefined;
    let ended = false;
    const endOutput = (): void => {
      if (ended) return;
      ended = true;
      out.end();
    };
    res.on('data', (chunk: Buffer) => {
      if (writeError) return;
      onChunk(chunk);
      if (!out.write(chunk)) {
        res.pause();
        out.once('drain', () => res.resume());
      }
    });
    res.on('end', endOutput);
    res.on('error', (error) => {
      readError ??= error;
      endOutput();
    });
    res.on('close', () => {
      // A connection closed before the announced end without an 'error' event.
      if (!res.complete) readError ??= Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
      endOutput();
    });
    out.on('error', (error: NodeJS.ErrnoException) => {
      writeError ??= error;
      res.destroy();
    });
    out.on('close', () => {
      if (writeError) reject(new WriteFailure(writeError));
      else if (readError) reject(readError);
      else resolve();
    });
  });
}

interface OpenResponse {
  res: http.IncomingMessage;
  finalUrl: string;
  /** Whether the stall timeout fired (the error then reads as a plain reset). */
  timedOut(): boolean;
}

/** Sends the GET, following redirects, and resolves with the first non-redirect response. */
async function request(opts: Normalised, offset: number): Promise<OpenResponse> {
  let current = opts.url;
  for (let hop = 0; ; hop++) {
    const response = await requestOnce(current, offset, opts);
    const status = response.res.statusCode ?? 0;
    if (!REDIRECT_STATUSES.has(status)) return response;
    response.res.resume();
    const location = response.res.headers.location;
    if (!location) throw new HttpStatusError(status, 'redirect without a Location header', current);
    if (hop >= opts.maxRedirects) {
      throw new HttpStatusError(status, `more than ${opts.maxRedirects} redirects (last to ${location})`, current);
    }
    const next = new URL(location, current);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new HttpStatusError(status, `redirect to unsupported ${next.protocol} URL ${next.href}`, current);
    }
    current = next.href;
  }
}

function requestOnce(url: string, offset: number, opts: Normalised): Promise<OpenResponse> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const headers: Record<string, string> = {
      'user-agent': USER_AGENT,
      // Compressed bodies would break size checks and Range offsets.
      'accept-encoding': 'identity',
    };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const client = target.protocol === 'https:' ? https : http;
    let timedOut = false;
    let settled = false;
    // agent: false gives each download its own connection, closed afterwards, so no idle pooled
    // socket outlives the call.
    const req = client.request(target, { method: 'GET', headers, agent: false, timeout: opts.stallTimeoutMs });
    const onAbort = (): void => {
      req.destroy(abortError());
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('timeout', () => {
      timedOut = true;
      const error = Object.assign(new Error(stallReason(opts)), { code: 'ETIMEDOUT' });
      req.destroy(error);
    });
    req.on('response', (res) => {
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      // The request's stall timer keeps running while the body streams; make it end the body too.
      req.on('timeout', () => res.destroy(Object.assign(new Error(stallReason(opts)), { code: 'ETIMEDOUT' })));
      resolve({ res, finalUrl: url, timedOut: () => timedOut });
    });
    req.on('error', (error) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      if (opts.signal?.aborted) reject(abortError());
      else
        reject(
          new TransferInterrupted(timedOut ? stallReason(opts) : describeNetworkError(error), false, errorCode(error), { cause: error }),
        );
    });
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// Errors

function toDownloadError(error: unknown, opts: Normalised, part: string): DownloadError {
  if (error instanceof DownloadError) return error;
  if (isAbort(error)) {
    return new DownloadError(
      `Download of ${opts.url} was interrupted. The partial file is kept at ${part} and the next run resumes it.`,
      'aborted',
      opts.url,
      opts.destination,
      'interrupted',
      { cause: error },
    );
  }
  if (error instanceof WriteFailure) return diskError(error.original, opts, part);
  if (error instanceof SizeAnnounceError) {
    return new DownloadError(
      `Download of ${opts.url} refused: ${error.message}. The server holds a different file from the ` +
        `one expected (a new version, or an error page). Nothing was saved at ${opts.destination}.` +
        handPlacementHint(opts),
      'size',
      opts.url,
      opts.destination,
      error.message,
    );
  }
  if (error instanceof HttpStatusError) {
    const where = error.finalUrl !== opts.url ? ` (redirected to ${error.finalUrl})` : '';
    const reason = `server answered ${error.message}`;
    return new DownloadError(
      `Could not download ${opts.url}${where}: the ${reason}. The file may have moved, or this ` +
        `machine may be offline or behind a proxy.` +
        handPlacementHint(opts),
      'http',
      opts.url,
      opts.destination,
      reason,
      { cause: error },
    );
  }
  const reason = error instanceof TransferInterrupted ? error.reason : describeNetworkError(error);
  return new DownloadError(
    `Could not download ${opts.url}: ${reason}. This machine may be offline, or the server ` +
      `unreachable (firewall, proxy).` +
      handPlacementHint(opts),
    'network',
    opts.url,
    opts.destination,
    reason,
    { cause: error },
  );
}

/** Tells the user how to finish the job by hand: the exact path and what the file must match. */
function handPlacementHint(opts: Normalised): string {
  const facts: string[] = [];
  if (opts.expectedSize !== undefined) facts.push(`${opts.expectedSize.toLocaleString('en-US')} bytes`);
  if (opts.sha256) facts.push(`sha256 ${opts.sha256.toLowerCase()}`);
  if (opts.md5) facts.push(`md5 ${opts.md5.toLowerCase()}`);
  return (
    `\nTo continue without network, download ${opts.url} on another machine and put it at:\n  ${opts.destination}\n` +
    (facts.length ? `It is checked before use (${facts.join(', ')}).` : 'Then run this again.')
  );
}

function verificationError(check: VerifyResult, opts: Normalised): DownloadError {
  const sizeOnly = opts.expectedSize !== undefined && check.size !== opts.expectedSize;
  const details: string[] = [];
  if (opts.expectedSize !== undefined) {
    details.push(`size: expected ${opts.expectedSize.toLocaleString('en-US')} bytes, got ${check.size.toLocaleString('en-US')}`);
  } else {
    details.push(`size: ${check.size.toLocaleString('en-US')} bytes`);
  }
  for (const algorithm of ['sha256', 'md5'] as const) {
    const wanted = opts[algorithm];
    if (wanted && check[algorithm]) details.push(`${algorithm}: expected ${wanted.toLowerCase()}, got ${check[algorithm]}`);
  }
  const reason = check.problems.join('; ');
  return new DownloadError(
    `Downloaded file from ${opts.url} does not match (${sizeOnly ? 'wrong size' : 'checksum mismatch'}); it was deleted.\n  ` +
      details.join('\n  ') +
      `\nThe server may serve a corrupted or different file; try again later or another mirror.` +
      handPlacementHint(opts),
    sizeOnly ? 'size' : 'checksum',
    opts.url,
    opts.destination,
    reason,
  );
}

const DISK_HINTS: Record<string, string> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is exhausted',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EIO: 'an input/output error occurred',
};

function diskError(error: unknown, opts: Normalised, part: string): DownloadError {
  const code = errorCode(error);
  const what = (code && DISK_HINTS[code]) ?? (error instanceof Error ? error.message : String(error));
  const reason = `${what}${code ? ` (${code})` : ''}`;
  const space = code === 'ENOSPC' || code === 'EDQUOT';
  const advice = space
    ? `Free some space in ${path.dirname(opts.destination)}` +
      (opts.expectedSize !== undefined ? ` (the whole file needs ${formatBytes(opts.expectedSize)})` : '') +
      ` or download to another folder, then run again.`
    : `Check that ${path.dirname(opts.destination)} is writable, or download to another folder, then run again.`;
  return new DownloadError(
    `Could not save ${opts.url} to ${part}: ${reason}. ${advice} What was downloaded so far is kept in ${part} and the next run resumes it.`,
    'disk',
    opts.url,
    opts.destination,
    reason,
    { cause: error },
  );
}

const NETWORK_HINTS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found, DNS lookup failed',
  EAI_AGAIN: 'DNS lookup failed temporarily',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS certificate could not be verified, an intercepting proxy?',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed TLS certificate in chain, an intercepting proxy?',
  CERT_HAS_EXPIRED: 'TLS certificate expired',
};

function describeNetworkError(error: unknown): string {
  const code = errorCode(error);
  if (code && NETWORK_HINTS[code]) return `${NETWORK_HINTS[code]} (${code})`;
  const message = error instanceof Error ? error.message : String(error);
  if (message === 'aborted') return 'connection closed before the end of the file';
  return code ? `${message} (${code})` : message;
}

function stallReason(opts: Normalised): string {
  return `no data received for ${Math.round(opts.stallTimeoutMs / 100) / 10} s (stalled connection)`;
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function abortError(): Error {
  return Object.assign(new Error('download aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || errorCode(error) === 'ABORT_ERR');
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function parseContentRange(header: string | undefined): { start: number; end: number; total?: number } | undefined {
  const match = header?.match(/^bytes (\d+)-(\d+)\/(\d+|\*)$/);
  if (!match) return undefined;
  return { start: Number(match[1]), end: Number(match[2]), total: match[3] === '*' ? undefined : Number(match[3]) };
}

function parseUnsatisfiedRange(header: string | undefined): number | undefined {
  const match = header?.match(/^bytes \*\/(\d+)$/);
  return match ? Number(match[1]) : undefined;
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch {
    return 0;
  }
}

async function removeQuietly(file: string): Promise<void> {
  await fs.rm(file, { force: true }).catch(() => undefined);
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

// Verification stamps: `<file>.verified.json` records that a file of this size and mtime matched
// these checksums, so that re-checking an 825 MB archive on every run costs one stat.

interface Stamp {
  size: number;
  mtimeMs: number;
  sha256?: string;
  md5?: string;
}

export function stampPath(file: string): string {
  return `${file}.verified.json`;
}

async function stampMatches(file: string, stat: { size: number; mtimeMs: number }, expect: Expectation): Promise<boolean> {
  try {
    const stamp = JSON.parse(await fs.readFile(stampPath(file), 'utf8')) as Stamp;
    if (stamp.size !== stat.size || stamp.mtimeMs !== stat.mtimeMs) return false;
    if (expect.sha256 && stamp.sha256 !== expect.sha256.toLowerCase()) return false;
    if (expect.md5 && stamp.md5 !== expect.md5.toLowerCase()) return false;
    return true;
  } catch {
    return false;
  }
}

async function writeStamp(file: string, expect: Expectation): Promise<void> {
  if (!expect.sha256 && !expect.md5) return;
  try {
    const stat = await fs.stat(file);
    const stamp: Stamp = {
      size: stat.size,
      mtimeMs: stat.mtimeMs,
      sha256: expect.sha256?.toLowerCase(),
      md5: expect.md5?.toLowerCase(),
    };
    await writeJsonAtomic(stampPath(file), stamp);
  } catch {
    // Only an optimisation: without the stamp the next check hashes the file again.
  }
}
