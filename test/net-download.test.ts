import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DownloadError, downloadFile, partPath } from '../lib/net/download.js';

// ---- helpers ------------------------------------------------------------------------------------

interface Recorded {
  url: string;
  range?: string;
}

interface LocalServer {
  base: string;
  requests: Recorded[];
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, index: number) => void;

/** An http server on 127.0.0.1:0 that records each request's path and Range header. */
async function startServer(handler: Handler): Promise<LocalServer> {
  const requests: Recorded[] = [];
  const server = http.createServer((req, res) => {
    const index = requests.length;
    requests.push({ url: req.url ?? '', range: req.headers.range });
    handler(req, res, index);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Serves `data` honouring `Range: bytes=N-` (206, or 416 past the end). */
function serveWithRanges(data: Buffer, res: http.ServerResponse, range: string | undefined): void {
  const match = range?.match(/^bytes=(\d+)-$/);
  if (match) {
    const start = Number(match[1]);
    if (start >= data.length) {
      res.writeHead(416, { 'content-range': `bytes */${data.length}` });
      res.end();
      return;
    }
    res.writeHead(206, {
      'content-length': data.length - start,
      'content-range': `bytes ${start}-${data.length - 1}/${data.length}`,
    });
    res.end(data.subarray(start));
    return;
  }
  res.writeHead(200, { 'content-length': data.length });
  res.end(data);
}

function payload(size: number, seed = 1): Buffer {
  const data = Buffer.alloc(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return data;
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'transferlab-net-'));
}

/** Collects what a progress bar or warning writes. */
function sink(): { write(text: string): boolean; text: () => string } {
  const chunks: string[] = [];
  return { write: (text: string) => chunks.push(text) > 0, text: () => chunks.join('') };
}

/** A port on 127.0.0.1 where nothing listens (bound, then released). */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const DATA = payload(200_000);

// ---- tests --------------------------------------------------------------------------------------

test('downloads a file and checks its sha256', async () => {
  const dir = await tempDir();
  const server = await startServer((req, res) => serveWithRanges(DATA, res, req.headers.range));
  try {
    const destination = path.join(dir, 'sub', 'file.bin');
    const result = await downloadFile({
      url: `${server.base}/file.bin`,
      destination,
      sha256: sha256(DATA),
      expectedSize: DATA.length,
      quiet: true,
    });
    assert.equal(result, destination);
    assert.deepEqual(await fs.readFile(destination), DATA);
    assert.equal(existsSync(partPath(destination)), false);
    assert.equal(server.requests.length, 1);
    assert.equal(server.requests[0]!.range, undefined);
  } finally {
    await server.close();
  }
});

test('downloads a file and checks its md5', async () => {
  const dir = await tempDir();
  const server = await startServer((req, res) => serveWithRanges(DATA, res, req.headers.range));
  try {
    const destination = path.join(dir, 'file.bin');
    await downloadFile({ url: `${server.base}/file.bin`, destination, md5: md5(DATA).toUpperCase(), quiet: true });
    assert.deepEqual(await fs.readFile(destination), DATA);
  } finally {
    await server.close();
  }
});

test('resumes with Range after the server cuts the first transfer off halfway', async () => {
  const dir = await tempDir();
  const cut = 80_000;
  const server = await startServer((req, res, index) => {
    if (index === 0) {
      res.writeHead(200, { 'content-length': DATA.length });
      // Destroy the socket only once the first `cut` bytes have been handed to the kernel.
      res.write(DATA.subarray(0, cut), () => res.socket?.destroy());
      return;
    }
    serveWithRanges(DATA, res, req.headers.range);
  });
  try {
    const destination = path.join(dir, 'file.bin');
    const progress = sink();
    await downloadFile({
      url: `${server.base}/file.bin`,
      destination,
      sha256: sha256(DATA),
      expectedSize: DATA.length,
      retryDelayMs: 0,
      progressStream: progress,
    });
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[0]!.range, undefined);
    assert.equal(server.requests[1]!.range, `bytes=${cut}-`);
    assert.deepEqual(await fs.readFile(destination), DATA);
    assert.match(progress.text(), /resuming/);
  } finally {
    await server.close();
  }
});

test('resumes a .part left by an earlier run', async () => {
  const dir = await tempDir();
  const destination = path.join(dir, 'file.bin');
  await fs.writeFile(partPath(destination), DATA.subarray(0, 12_345));
  const server = await startServer((req, res) => serveWithRanges(DATA, res, req.headers.range));
  try {
    await downloadFile({ url: `${server.base}/f`, destination, sha256: sha256(DATA), expectedSize: DATA.length, quiet: true });
    assert.equal(server.requests.length, 1);
    assert.equal(server.requests[0]!.range, 'bytes=12345-');
    assert.deepEqual(await fs.readFile(destination), DATA);
  } finally {
    await server.close();
  }
});

test('a server that ignores Range (200) makes the download restart from zero', async () => {
  const dir = await tempDir();
  const destination = path.join(dir, 'file.bin');
  // Garbage in the .part: if it were kept, the checksum would fail.
  await fs.writeFile(partPath(destination), Buffer.alloc(5000, 0xaa));
  const server = await startServer((_req, res) => {
    res.writeHead(200, { 'content-length': DATA.length });
    res.end(DATA);
  });
  try {
    await downloadFile({ url: `${server.base}/f`, destination, sha256: sha256(DATA), quiet: true });
    assert.equal(server.requests[0]!.range, 'bytes=5000-');
    assert.equal(server.requests.length, 1);
    assert.deepEqual(await fs.readFile(destination), DATA);
  } finally {
    await server.close();
  }
});

test('416 on a complete .part goes straight to verification', async () => {
  const dir = await tempDir();
  const destination = path.join(dir, 'file.bin');
  await fs.writeFile(partPath(destination), DATA);
  const server = await startServer((req, res) => serveWithRanges(DATA, res, req.headers.range));
  try {
    // No expectedSize, so the completeness of the .part is only learnt from the server's 416.
    await downloadFile({ url: `${server.base}/f`, destination, sha256: sha256(DATA), quiet: true });
    assert.equal(server.requests.length, 1);
    assert.equal(server.requests[0]!.range, `bytes=${DATA.length}-`);
    assert.deepEqual(await fs.readFile(destination), DATA);
    assert.equal(existsSync(partPath(destination)), false);
  } finally {
    await server.close();
  }
});

test('a complete .part of the expected size is verified without any request', async () => {
  const dir = await tempDir();
  const destination = path.join(dir, 'file.bin');
  await fs.writeFile(partPath(destination), DATA);
  const server = await startServer((req, res) => serveWithRanges(DATA, res, req.headers.range));
  try {
    await downloadFile({ url: `${server.base}/f`, destination, sha256: sha256(DATA), expectedSize: DATA.length, quiet: true });
    assert.equal(server.requests.length, 0);
    assert.deepEqual(await fs.readFile(destination), DATA);
  } finally {
    await server.close();
  }
});

test('a corrupted payload fails with both checksums and leaves no file behind', async () => {
  const dir = await tempDir();
  const corrupted = Buffer.from(DATA);
  corrupted[1000] = corrupted[1000]! ^ 0xff;
  const server = await startServer((req, res) => serveWithRanges(corrupted, res, req.headers.range));
  try {
    const destination = path.join(dir, 'file.bin');
    const url = `${server.base}/file.bin`;
    await assert.rejects(
      downloadFile({ url, destination, sha256: sha256(DATA), expectedSize: DATA.length, quiet: true }),
      (error: unknown) => {
        assert.ok(error instanceof DownloadError);
        assert.equal(error.kind, 'checksum');
        assert.ok(error.message.includes(url), error.message);
        assert.ok(error.message.includes(sha256(DATA)), 'expected checksum in message');
        assert.ok(error.message.includes(sha256(corrupted)), 'actual checksum in message');
        return true;
      },
    );
    assert.equal(existsSync(destination), false);
    assert.equal(existsSync(partPath(destination)), false);
  } finally {
    await server.close();
  }
});

test('a resumed download that fails verification is fetched once more from zero', async () => {
  const dir = await tempDir();
  const destination = path.join(dir, 'file.bin');
  // A .part whose bytes do not belong to the file (e.g. from an older version).
  await fs.writeFile(partPath(destination), Buffer.alloc(1000, 7));
  const server = await startServer((req, res) => serveWithRanges(DATA, res, req.headers.range));
  try {
    await downloadFile({ url: `${server.base}/f`, destination, sha256: sha256(DATA), expectedSize: DATA.length, quiet: true });
    assert.deepEqual(
      server.requests.map((r) => r.range),
      ['bytes=1000-', undefined],
    );
    assert.deepEqual(await fs.readFile(destination), DATA);
  } finally {
    await server.close();
  }
});

test('a server announcing the wrong size is refused before the body is saved', async () => {
  const dir = await tempDir();
  const server = await startServer((req, res) => serveWithRanges(DATA.subarray(0, 1234), res, req.headers.range));
  try {
    const destination = path.join(dir, 'file.bin');
    await assert.rejects(
      downloadFile({ url: `${server.base}/f`, destination, expectedSize: DATA.length, quiet: true }),
      (error: unknown) => {
        assert.ok(error instanceof DownloadError);
        assert.equal(error.kind, 'size');
        assert.match(error.message, /1,234/);
        assert.match(error.message, /200,000/);
        return true;
      },
    );
    assert.equal(existsSync(destination), false);
    assert.equal(existsSync(partPath(destination)), false);
  } finally {
    await server.close();
  }
});

test('a body of the wrong size without Content-Length fails the size check', async () => {
  const dir = await tempDir();
  const server = await startServer((_req, res) => {
    res.writeHead(200); // chunked: the size is only known at the end
    res.end(DATA.subarray(0, 1234));
  });
  try {
    const destination = path.join(dir, 'file.bin');
    await assert.rejects(
      downloadFile({ url: `${server.base}/f`, destination, expectedSize: DATA.length, sha256: sha256(DATA), quiet: true }),
      (error: unknown) => {
        assert.ok(error instanceof DownloadError);
        assert.equal(error.kind, 'size');
        assert.match(error.message, /expected 200,000 bytes, got 1,234/);
        return true;
      },
    );
    assert.equal(existsSync(destination), false);
    assert.equal(existsSync(partPath(destination)), false);
  } finally {
    await server.close();
  }
});

test('404 gives an error naming the URL and where to put the file by hand', async () => {
  const dir = await tempDir();
  const server = await startServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not here');
  });
  try {
    const destination = path.join(dir, 'file.bin');
    const url = `${server.base}/missing.bin`;
    await assert.rejects(downloadFile({ url, destination, quiet: true }), (error: unknown) => {
      assert.ok(error instanceof DownloadError);
      assert.equal(error.kind, 'http');
      assert.ok(error.message.includes(url), error.message);
      assert.match(error.message, /HTTP 404/);
      assert.ok(error.message.includes(destination), error.message);
      return true;
    });
    assert.equal(existsSync(destination), false);
    assert.equal(existsSync(partPath(destination)), false);
  } finally {
    await server.close();
  }
});

test('connection refused reads as offline and names the destination path', async () => {
  const dir = await tempDir();
  const destination = path.join(dir, 'weights.h5');
  const url = `http://127.0.0.1:${await closedPort()}/weights.h5`;
  await assert.rejects(downloadFile({ url, destination, md5: md5(DATA), retryDelayMs: 0, quiet: true }), (error: unknown) => {
    assert.ok(error instanceof DownloadError);
    assert.equal(error.kind, 'network');
    assert.match(error.message, /ECONNREFUSED/);
    assert.match(error.message, /offline/);
    assert.ok(error.message.includes(url), error.message);
    assert.ok(error.message.includes(`\n  ${destination}\n`), error.message);
    assert.ok(error.message.includes(md5(DATA)), 'the checksum to check a hand-placed file against');
    return true;
  });
});

test('an already present, verified file is returned without any request', async () => {
  const dir = await tempDir();
  const destination = path.join(dir, 'file.bin');
  await fs.writeFile(destination, DATA);
  const server = await startServer((req, res) => serveWithRanges(DATA, res, req.headers.range));
  try {
    const options = { url: `${server.base}/f`, destination, sha256: sha256(DATA), expectedSize: DATA.length, quiet: true };
    assert.equal(await downloadFile(options), destination);
    // The second check uses the verification stamp written by the first.
    assert.ok(existsSync(`${destination}.verified.json`));
    assert.equal(await downloadFile(options), destination);
    assert.equal(server.requests.length, 0);
  } finally {
    await server.close();
  }
});

test('an existing file that does not verify is replaced by a fresh download', async () => {
  const dir = await tempDir();
  const destination = path.join(dir, 'file.bin');
  await fs.writeFile(destination, DATA.subarray(0, 100));
  const server = await startServer((req, res) => serveWithRanges(DATA, res, req.headers.range));
  try {
    const progress = sink();
    await downloadFile({ url: `${server.base}/f`, destination, sha256: sha256(DATA), expectedSize: DATA.length, progressStream: progress });
    assert.equal(server.requests.length, 1);
    assert.deepEqual(await fs.readFile(destination), DATA);
    assert.match(progress.text(), /does not match/);
  } finally {
    await server.close();
  }
});

test('redirects are followed, relative and absolute', async () => {
  const dir = await tempDir();
  const server = await startServer((req, res) => {
    if (req.url === '/a') {
      res.writeHead(302, { location: '/b' });
      res.end();
    } else if (req.url === '/b') {
      res.writeHead(301, { location: `http://127.0.0.1:${req.socket.localPort ?? 0}/c` });
      res.end();
    } else if (req.url === '/c') {
      serveWithRanges(DATA, res, req.headers.range);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  try {
    const destination = path.join(dir, 'file.bin');
    await downloadFile({ url: `${server.base}/a`, destination, sha256: sha256(DATA), quiet: true });
    assert.deepEqual(
      server.requests.map((r) => r.url),
      ['/a', '/b', '/c'],
    );
    assert.deepEqual(await fs.readFile(destination), DATA);
  } finally {
    await server.close();
  }
});

test('a redirect loop stops at maxRedirects with a clear error', async () => {
  const dir = await tempDir();
  const server = await startServer((_req, res) => {
    res.writeHead(302, { location: '/loop' });
    res.end();
  });
  try {
    const destination = path.join(dir, 'file.bin');
    await assert.rejects(downloadFile({ url: `${server.base}/loop`, destination, maxRedirects: 3, quiet: true }), /more than 3 redirects/);
    assert.equal(server.requests.length, 4);
  } finally {
    await server.close();
  }
});

test('a stalled connection times out, keeps the .part and says so', async () => {
  const dir = await tempDir();
  const server = await startServer((_req, res) => {
    res.writeHead(200, { 'content-length': DATA.length });
    res.write(DATA.subarray(0, 1000)); // then nothing, connection left open
  });
  try {
    const destination = path.join(dir, 'file.bin');
    await assert.rejects(
      downloadFile({ url: `${server.base}/f`, destination, stallTimeoutMs: 200, maxResumes: 0, quiet: true }),
      (error: unknown) => {
        assert.ok(error instanceof DownloadError);
        assert.equal(error.kind, 'network');
        assert.match(error.message, /stalled/);
        return true;
      },
    );
    assert.equal(existsSync(destination), false);
    assert.equal((await fs.stat(partPath(destination))).size, 1000);
  } finally {
    await server.close();
  }
});

test('aborting mid-transfer (Ctrl-C in the CLI) leaves only the .part', async () => {
  const dir = await tempDir();
  const half = DATA.length / 2;
  const server = await startServer((_req, res) => {
    res.writeHead(200, { 'content-length': DATA.length });
    res.write(DATA.subarray(0, half)); // the rest never comes
  });
  try {
    const destination = path.join(dir, 'file.bin');
    const controller = new AbortController();
    await assert.rejects(
      downloadFile({
        url: `${server.base}/f`,
        destination,
        quiet: true,
        signal: controller.signal,
        onProgress: (done) => {
          if (done >= half) controller.abort();
        },
      }),
      (error: unknown) => {
        assert.ok(error instanceof DownloadError);
        assert.equal(error.kind, 'aborted');
        assert.ok(error.message.includes(partPath(destination)), error.message);
        return true;
      },
    );
    assert.equal(existsSync(destination), false);
    assert.ok(existsSync(partPath(destination)));
  } finally {
    await server.close();
  }
});

test('a full disk (ENOSPC) is reported as such and the .part is kept', {
  skip: !existsSync('/dev/full') && 'needs /dev/full',
}, async () => {
  const dir = await tempDir();
  const destination = path.join(dir, 'file.bin');
  // Writes through this link fail with ENOSPC, like a full disk.
  await fs.symlink('/dev/full', partPath(destination));
  const server = await startServer((req, res) => serveWithRanges(DATA, res, req.headers.range));
  try {
    await assert.rejects(downloadFile({ url: `${server.base}/f`, destination, quiet: true }), (error: unknown) => {
      assert.ok(error instanceof DownloadError);
      assert.equal(error.kind, 'disk');
      assert.match(error.message, /disk is full \(ENOSPC\)/);
      assert.match(error.message, /kept/);
      return true;
    });
    assert.equal(existsSync(destination), false);
    assert.ok((await fs.lstat(partPath(destination))).isSymbolicLink());
  } finally {
    await server.close();
  }
});

test('bad inputs are named in the error', async () => {
  const dir = await tempDir();
  await assert.rejects(downloadFile({ url: 'ftp://example/x', destination: path.join(dir, 'x') }), /ftp:.*only http/);
  await assert.rejects(downloadFile({ url: 'not a url', destination: path.join(dir, 'x') }), /"not a url" is not a valid URL/);
  await assert.rejects(downloadFile({ url: 'http://127.0.0.1:1/x', destination: path.join(dir, 'x'), sha256: 'abc' }), /sha256 "abc"/);
});

test('the progress bar reports the total while downloading, without control characters off a TTY', async () => {
  const dir = await tempDir();
  const server = await startServer((req, res) => serveWithRanges(DATA, res, req.headers.range));
  try {
    const progress = sink(); // no isTTY: plain mode
    await downloadFile({ url: `${server.base}/f`, destination: path.join(dir, 'file.bin'), label: 'file.bin', progressStream: progress });
    const text = progress.text();
    assert.match(text, /file\.bin: done, 200\.0 kB/);
    assert.doesNotMatch(text, /[\x00-\x09\x0b-\x1f\x7f]/);
  } finally {
    await server.close();
  }
});
