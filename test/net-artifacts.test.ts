import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { VGG16_WEIGHTS_ARTIFACT } from '../lib/applications/vgg16.js';
import { APPLICATION_WEIGHTS } from '../lib/applications/weights-registry.js';
import { weightsCommand } from '../lib/cli/commands/weights.js';
import { CATS_VS_DOGS_ARCHIVE } from '../lib/data/cats-vs-dogs-archive.js';
import {
  type Artifact,
  ArtifactFetchError,
  type ArtifactTable,
  artifactPath,
  fetchArtifact,
  getArtifact,
  locateArtifact,
  MIRROR_ENV,
  sourceUrls,
} from '../lib/net/artifacts.js';
import { partPath } from '../lib/net/download.js';

// ---- helpers ------------------------------------------------------------------------------------

interface LocalServer {
  base: string;
  requests: Array<{ url: string; range?: string }>;
  close(): Promise<void>;
}

/** Serves `files` (path → bytes) on 127.0.0.1:0 with Range support; anything else is 404. */
async function startFileServer(files: Record<string, Buffer>, options: { stallAfter?: number } = {}): Promise<LocalServer> {
  const requests: LocalServer['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ url: req.url ?? '', range: req.headers.range });
    const data = files[req.url ?? ''];
    if (!data) {
      res.writeHead(404);
      res.end();
      return;
    }
    const start = Number(req.headers.range?.match(/^bytes=(\d+)-$/)?.[1] ?? 0);
    const headers: http.OutgoingHttpHeaders = { 'content-length': data.length - start };
    if (start > 0) headers['content-range'] = `bytes ${start}-${data.length - 1}/${data.length}`;
    res.writeHead(start > 0 ? 206 : 200, headers);
    if (options.stallAfter !== undefined && start === 0) {
      res.write(data.subarray(0, options.stallAfter)); // and then nothing: a stalled transfer
      return;
    }
    res.end(data.subarray(start));
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

async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const tempDir = (): Promise<string> => fs.mkdtemp(path.join(os.tmpdir(), 'transferlab-art-'));

function sink(): { write(text: string): boolean; text: () => string } {
  const chunks: string[] = [];
  return { write: (text: string) => chunks.push(text) > 0, text: () => chunks.join('') };
}

const WEIGHTS = Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 31 + 7) % 251));
const FILE = 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5';

/** A stand-in for the real table: same ids and file name, a small file and local URLs. */
function fakeTable(urls: string[]): ArtifactTable {
  return {
    'vgg16-notop': {
      id: 'vgg16-notop',
      aliases: ['vgg16'],
      description: 'test weights',
      fileName: FILE,
      urls,
      size: WEIGHTS.length,
      md5: createHash('md5').update(WEIGHTS).digest('hex'),
    },
  };
}

function fakeArtifact(urls: string[]): Artifact {
  return fakeTable(urls)['vgg16-notop']!;
}

// ---- the table ----------------------------------------------------------------------------------

test('the artifacts carry the published URLs, sizes and checksums (docs/experiment.md)', () => {
  const vgg = getArtifact('vgg16', APPLICATION_WEIGHTS);
  assert.equal(vgg, VGG16_WEIGHTS_ARTIFACT);
  assert.equal(vgg.id, 'vgg16-notop');
  assert.equal(vgg.fileName, FILE);
  assert.equal(vgg.size, 58_889_256);
  assert.equal(vgg.md5, '6d6bbae143d832006294945121d1f1fc');
  assert.match(vgg.urls[0]!, /^https:\/\/storage\.googleapis\.com\/.*notop\.h5$/);
  assert.match(vgg.urls[1]!, /^https:\/\/github\.com\/fchollet\/deep-learning-models\//);
  const cats = CATS_VS_DOGS_ARCHIVE;
  assert.equal(cats.id, 'cats_vs_dogs');
  assert.equal(cats.fileName, 'kagglecatsanddogs_5340.zip');
  assert.equal(cats.size, 824_887_076);
  assert.equal(cats.sha256, 'b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9');
  assert.equal(cats.unverifiedChecksum, true);
  assert.throws(() => getArtifact('resnet', APPLICATION_WEIGHTS), /Unknown artifact "resnet". Known artifacts: vgg16-notop, vgg16\./);
});

test('a mirror base URL is tried first, with or without a trailing slash', () => {
  const vgg = VGG16_WEIGHTS_ARTIFACT;
  assert.equal(sourceUrls(vgg, 'http://m.local/files')[0], `http://m.local/files/${FILE}`);
  assert.equal(sourceUrls(vgg, 'http://m.local/files/')[0], `http://m.local/files/${FILE}`);
  assert.equal(sourceUrls(vgg, 'http://m.local/files/').length, 3);
  assert.deepEqual(sourceUrls(vgg), vgg.urls);
  assert.throws(() => sourceUrls(vgg, 'not a url'), /TRANSFERLAB_MIRROR.*"not a url"/);
});

// ---- fetchArtifact / locateArtifact -------------------------------------------------------------

test('fetchArtifact downloads through the mirror override, then finds it without network', async () => {
  const cacheDir = await tempDir();
  const server = await startFileServer({ [`/m/${FILE}`]: WEIGHTS });
  try {
    const artifact = fakeArtifact(['http://127.0.0.1:9/never-tried']);
    const options = { cacheDir, baseUrlOverride: `${server.base}/m`, alsoLookIn: [], quiet: true };
    const file = await fetchArtifact(artifact, options);
    assert.equal(file, path.join(cacheDir, 'downloads', FILE));
    assert.deepEqual(await fs.readFile(file), WEIGHTS);
    assert.equal(await fetchArtifact(artifact, options), file);
    assert.equal(server.requests.length, 1);
    assert.equal(await locateArtifact(artifact, cacheDir, options), file);
  } finally {
    await server.close();
  }
});

test('fetchArtifact reads the mirror from TRANSFERLAB_MIRROR', async () => {
  const cacheDir = await tempDir();
  const server = await startFileServer({ [`/${FILE}`]: WEIGHTS });
  const saved = process.env[MIRROR_ENV];
  process.env[MIRROR_ENV] = server.base;
  try {
    const file = await fetchArtifact(fakeArtifact([]), { cacheDir, alsoLookIn: [], quiet: true });
    assert.deepEqual(await fs.readFile(file), WEIGHTS);
    assert.deepEqual(
      server.requests.map((r) => r.url),
      [`/${FILE}`],
    );
  } finally {
    if (saved === undefined) delete process.env[MIRROR_ENV];
    else process.env[MIRROR_ENV] = saved;
    await server.close();
  }
});

test('fetchArtifact moves on to the next URL when one fails', async () => {
  const cacheDir = await tempDir();
  const server = await startFileServer({ '/good.h5': WEIGHTS });
  try {
    const warnings = sink();
    const artifact = fakeArtifact([`${server.base}/gone.h5`, `${server.base}/good.h5`]);
    const file = await fetchArtifact(artifact, { cacheDir, alsoLookIn: [], download: { progressStream: warnings } });
    assert.deepEqual(await fs.readFile(file), WEIGHTS);
    assert.deepEqual(
      server.requests.map((r) => r.url),
      ['/gone.h5', '/good.h5'],
    );
    assert.match(warnings.text(), /gone\.h5: server answered HTTP 404/);
  } finally {
    await server.close();
  }
});

test('when every source fails, the error lists them and names the exact path to fill by hand', async () => {
  const cacheDir = await tempDir();
  const port = await closedPort();
  const artifact = fakeArtifact([`http://127.0.0.1:${port}/a.h5`, `http://127.0.0.1:${port}/b.h5`]);
  await assert.rejects(
    fetchArtifact(artifact, {
      cacheDir,
      alsoLookIn: ['/nonexistent-keras-dir'],
      quiet: true,
      download: { retryDelayMs: 0 },
    }),
    (error: unknown) => {
      assert.ok(error instanceof ArtifactFetchError);
      assert.equal(error.attempts.length, 2);
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}/a\\.h5: connection refused`));
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}/b\\.h5: connection refused`));
      assert.match(error.message, /offline/);
      assert.ok(error.message.includes(`\n  ${path.join(cacheDir, 'downloads', FILE)}\n`), error.message);
      assert.ok(error.message.includes('/nonexistent-keras-dir'), error.message);
      return true;
    },
  );
});

test('locateArtifact accepts a verified copy in another folder (Keras cache) and rejects a bad one', async () => {
  const cacheDir = await tempDir();
  const keras = await tempDir();
  const artifact = fakeArtifact([]);
  assert.equal(await locateArtifact(artifact, cacheDir, { alsoLookIn: [keras] }), undefined);
  await fs.writeFile(path.join(keras, FILE), WEIGHTS.subarray(1).toString()); // wrong content
  assert.equal(await locateArtifact(artifact, cacheDir, { alsoLookIn: [keras] }), undefined);
  await fs.writeFile(path.join(keras, FILE), WEIGHTS);
  assert.equal(await locateArtifact(artifact, cacheDir, { alsoLookIn: [keras] }), path.join(keras, FILE));
  // Found there, so fetching needs no network (the URL list is empty).
  assert.equal(await fetchArtifact(artifact, { cacheDir, alsoLookIn: [keras] }), path.join(keras, FILE));
  assert.equal(artifactPath(artifact, cacheDir), path.join(cacheDir, 'downloads', FILE));
});

// ---- the CLI ------------------------------------------------------------------------------------

test('weights --help teaches the commands, the cache and the offline route', async () => {
  const out = sink();
  assert.equal(await weightsCommand(['--help'], { stdout: out }), 0);
  for (const expected of ['fetch vgg16', 'path vgg16', '--cache-dir', '--weights PATH', MIRROR_ENV, '~/.keras/models']) {
    assert.ok(out.text().includes(expected), `help mentions ${expected}`);
  }
});

test('weights: usage errors exit 2 and name the bad input', async () => {
  const err = sink();
  assert.equal(await weightsCommand(['fetch', 'resnet'], { stderr: err }), 2);
  assert.match(err.text(), /unknown weights "resnet"; available: vgg16/);
  assert.equal(await weightsCommand(['pull', 'vgg16'], { stderr: err }), 2);
  assert.match(err.text(), /unknown command "pull"/);
  assert.equal(await weightsCommand(['fetch', 'vgg16', '--bogus'], { stderr: err }), 2);
  assert.match(err.text(), /--bogus/);
});

test('weights path: missing file → exit 1 with the exact path and --weights; present → prints it', async () => {
  const cacheDir = await tempDir();
  const table = fakeTable([]);
  const out = sink();
  const err = sink();
  assert.equal(
    await weightsCommand(['path', 'vgg16', '--cache-dir', cacheDir], { artifacts: table, alsoLookIn: [], stdout: out, stderr: err }),
    1,
  );
  assert.ok(err.text().includes(`\n  ${path.join(cacheDir, 'downloads', FILE)}\n`), err.text());
  assert.match(err.text(), /--weights PATH/);
  assert.equal(out.text(), '');
  await fs.mkdir(path.join(cacheDir, 'downloads'));
  await fs.writeFile(path.join(cacheDir, 'downloads', FILE), WEIGHTS);
  assert.equal(
    await weightsCommand(['path', 'vgg16', '--cache-dir', cacheDir], { artifacts: table, alsoLookIn: [], stdout: out, stderr: err }),
    0,
  );
  assert.equal(out.text(), `${path.join(cacheDir, 'downloads', FILE)}\n`);
});

test('weights fetch: downloads and prints the path; offline → exit 1 with where to put the file', async () => {
  const cacheDir = await tempDir();
  const server = await startFileServer({ '/w.h5': WEIGHTS });
  try {
    const out = sink();
    const err = sink();
    const code = await weightsCommand(['fetch', 'vgg16', '--cache-dir', cacheDir], {
      artifacts: fakeTable([`${server.base}/w.h5`]),
      alsoLookIn: [],
      stdout: out,
      stderr: err,
    });
    assert.equal(code, 0, err.text());
    assert.equal(out.text(), `${path.join(cacheDir, 'downloads', FILE)}\n`);
    assert.match(err.text(), /done, 50\.0 kB/);
  } finally {
    await server.close();
  }
  const offlineCache = await tempDir();
  const err = sink();
  const table = fakeTable([`http://127.0.0.1:${await closedPort()}/w.h5`]);
  const code = await weightsCommand(['fetch', 'vgg16', '--cache-dir', offlineCache, '--quiet'], {
    artifacts: table,
    alsoLookIn: [],
    stderr: err,
    stdout: sink(),
    download: { retryDelayMs: 0 },
  });
  assert.equal(code, 1);
  assert.ok(err.text().includes(`\n  ${path.join(offlineCache, 'downloads', FILE)}\n`), err.text());
  assert.match(err.text(), /offline/);
  assert.match(err.text(), /--weights PATH/);
});

test('Ctrl-C during `weights fetch` leaves only the .part, and the next fetch resumes it', async () => {
  const cacheDir = await tempDir();
  const half = WEIGHTS.length / 2;
  const stalling = await startFileServer({ '/w.h5': WEIGHTS }, { stallAfter: half });
  const destination = path.join(cacheDir, 'downloads', FILE);
  const moduleUrl = new URL('../lib/cli/commands/weights.js', import.meta.url).href;
  const script = `
    const { weightsCommand } = await import(${JSON.stringify(moduleUrl)});
    const [url, md5, size, cacheDir] = process.argv.slice(1);
    const artifact = { id: 'vgg16-notop', aliases: ['vgg16'], description: 't', fileName: ${JSON.stringify(FILE)}, urls: [url] };
    const table = { 'vgg16-notop': { ...artifact, size: Number(size), md5 } };
    process.exitCode = await weightsCommand(['fetch', 'vgg16', '--cache-dir', cacheDir], { artifacts: table, alsoLookIn: [] });
  `;
  try {
    const md5 = createHash('md5').update(WEIGHTS).digest('hex');
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', script, `${stalling.base}/w.h5`, md5, String(WEIGHTS.length), cacheDir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        cwd: path.dirname(fileURLToPath(import.meta.url)),
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let alive = true;
    void exited.then(() => (alive = false));
    // Wait until the first half is on disk (or the child ends on its own, which fails below).
    while (alive && !((await fs.stat(partPath(destination)).catch(() => undefined))?.size === half)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(alive, `child ended before the interruption: ${stderr}`);
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    assert.match(stderr, /Interrupted/);
    assert.equal(existsSync(destination), false);
    assert.equal((await fs.stat(partPath(destination))).size, half);
  } finally {
    await stalling.close();
  }

  const server = await startFileServer({ '/w.h5': WEIGHTS });
  try {
    const code = await weightsCommand(['fetch', 'vgg16', '--cache-dir', cacheDir, '--quiet'], {
      artifacts: fakeTable([`${server.base}/w.h5`]),
      alsoLookIn: [],
      stdout: sink(),
      stderr: sink(),
    });
    assert.equal(code, 0);
    assert.deepEqual(
      server.requests.map((r) => r.range),
      [`bytes=${half}-`],
    );
    assert.deepEqual(await fs.readFile(destination), WEIGHTS);
  } finally {
    await server.close();
  }
});
