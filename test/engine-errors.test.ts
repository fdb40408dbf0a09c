/**
 * Bad input gets clear errors, and a missing libtorch / addon says what is wrong and how to fix it.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { explainLoadFailure } from '../lib/engine/native.js';
import { layers } from '../lib/models/layers.js';
import { LayerConfigError } from '../lib/models/resolve.js';
import { Sequential } from '../lib/models/sequential.js';
import { experimentCnn } from '../lib/models/zoo.js';
import { ArrayDataset, Rng } from './helpers/naive.js';
import { repoRoot } from './helpers/paths.js';

function small(name = 'small'): Sequential {
  return new Sequential(
    [
      layers.conv2d({ filters: 2, kernelSize: 3, inputShape: [5, 5, 2] }),
      layers.flatten(),
      layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
    { seed: 1, preprocessing: 'none', name },
  );
}

const X = new Float32Array(4 * 5 * 5 * 2);
const SHAPE = [4, 5, 5, 2];
const Y = Float32Array.from([0, 1, 0, 1]);

/** What a call does: resolves, rejects, or throws before returning a promise. */
async function outcome(call: () => Promise<unknown>): Promise<{ kind: 'resolved' | 'rejected' | 'threw'; message: string }> {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (error) {
    return { kind: 'threw', message: (error as Error).message };
  }
  try {
    await promise;
    return { kind: 'resolved', message: '' };
  } catch (error) {
    return { kind: 'rejected', message: (error as Error).message };
  }
}

// ------------------------------------------------------------------------------------------ configs

test('an unknown layer class names the class and the layer', () => {
  assert.throws(
    () =>
      new Sequential([
        layers.conv2d({ filters: 2, kernelSize: 3, inputShape: [8, 8, 1] }),
        { class_name: 'LSTM', config: { name: 'my_lstm' } },
      ]),
    (error: unknown) =>
      error instanceof LayerConfigError && /unknown layer class 'LSTM'/.test(error.message) && /'my_lstm'/.test(error.message),
  );
  // an unnamed one gets its Keras default name in the message
  assert.throws(
    () => new Sequential([{ class_name: 'Conv3D', config: { name: '', batch_input_shape: [null, 4, 4, 4, 1] } }]),
    /layer 'conv3d': unknown layer class 'Conv3D'.*supported: .*Conv2D/,
  );
});

test('a Conv2D on too small an input says which layer and which shapes', () => {
  assert.throws(
    () => new Sequential([layers.conv2d({ filters: 2, kernelSize: 5, inputShape: [3, 3, 1] })]),
    /layer 'conv2d' \(Conv2D\) would output \(None, -1, -1, 2\) from input \(None, 3, 3, 1\): the input is too small/,
  );
  // the experiment CNN needs more than 32x32: the first layer that runs out is named
  assert.throws(() => experimentCnn([32, 32, 3]), /layer 'conv2d_3' \(Conv2D\).*from input \(None, 2, 2, 64\).*too small/);
});

test('a model without an input shape, an unknown loss, a non-accuracy metric: clear errors', () => {
  assert.throws(() => new Sequential([layers.dense({ units: 2 })]), /first layer \('dense'\) needs inputShape/);
  const m = small();
  assert.throws(() => m.compile({ optimizer: 'adam', loss: 'hinge' as never }), /unknown loss 'hinge'/);
  assert.throws(
    () => m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['auc' as never] }),
    /only the 'accuracy' metric/,
  );
});

test('setLayerWeights with the wrong number or size of weights names the layer and the expected shape', () => {
  const m = small();
  assert.throws(() => m.setLayerWeights(2, [new Float32Array(18)]), /layer 'dense' has 2 weights \(kernel, bias\), got 1/);
  assert.throws(
    () => m.setLayerWeights('dense', [new Float32Array(17), new Float32Array(1)]),
    /weight 'kernel' needs shape \[18, 1\] \(18 values\), got 17 values/,
  );
  assert.throws(() => m.setLayerWeights('nope', []), /no layer 'nope'.*conv2d, flatten, dense/);
});

// ------------------------------------------------------------------------------------------ calls

test('predict with the wrong input shape names the expected and the given shape', async () => {
  const m = small('shapes');
  await assert.rejects(
    m.predict(new Float32Array(40), [1, 5, 4, 2]),
    /model 'shapes' expects inputs of shape \(None, 5, 5, 2\) but got \(1, 5, 4, 2\)/,
  );
  await assert.rejects(m.predict(new Float32Array(40), [1, 5, 5, 2]), /input has 40 values but its shape \[1, 5, 5, 2\] needs 50/);
  await assert.rejects(
    m.predict(new Float32Array(10), [1, 10], { fromLayer: 2 }),
    /layer 'dense' expects inputs of shape \(None, 18\) but got \(1, 10\)/,
  );
});

test('fit on data of the wrong shape names the expected and the given shape', async () => {
  const m = small('fitshape');
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  const data = new ArrayDataset(new Float32Array(4 * 6 * 6 * 2), [6, 6, 2], Y, 4);
  await assert.rejects(m.fit(data, { verbose: 0 }), /model 'fitshape' expects inputs of shape \(None, 5, 5, 2\) but got \(4, 6, 6, 2\)/);
});

test('trainStep with the wrong input shape names the model input shape it expected', async () => {
  const m = small();
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  const r = await outcome(() => m.engine.trainStep(new Float32Array(4 * 6 * 6 * 2), [4, 6, 6, 2], Y, 0));
  assert.notEqual(r.kind, 'resolved');
  assert.match(r.message, /5, 5, 2/);
  assert.match(r.message, /6, 6, 2/);
  // worse: a model that accepts any spatial size (conv + global pooling) trains on it silently
  const gap = new Sequential(
    [
      layers.conv2d({ filters: 2, kernelSize: 3, inputShape: [5, 5, 2] }),
      layers.globalAveragePooling2d(),
      layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
    { seed: 1, preprocessing: 'none', name: 'gap' },
  );
  gap.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  const silent = await outcome(() => gap.engine.trainStep(new Float32Array(4 * 9 * 9 * 2), [4, 9, 9, 2], Y, 0));
  assert.notEqual(silent.kind, 'resolved', 'a [4, 9, 9, 2] batch for a (None, 5, 5, 2) model must fail');
});

test('labels: a y whose length differs from the batch, or a y that is not a Float32Array', async () => {
  const m = small();
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  const short = await outcome(() => m.engine.trainStep(X, SHAPE, Float32Array.from([0, 1, 0]), 0));
  assert.notEqual(short.kind, 'resolved');
  assert.match(short.message, /x has 4 examples but y has 3/);
  const plain = await outcome(() => m.engine.trainStep(X, SHAPE, [0, 1, 0, 1] as unknown as Float32Array, 0));
  assert.notEqual(plain.kind, 'resolved');
  assert.match(plain.message, /y must be a Float32Array/);
  const ev = await outcome(() => m.engine.evaluate(X, SHAPE, Float32Array.from([0, 1]), 0));
  assert.match(ev.message, /x has 4 examples but y has 2/);
});

test('trainStep / fit / evaluate before compile say to compile first', async () => {
  const m = small('raw');
  const r = await outcome(() => m.engine.trainStep(X, SHAPE, Y, 0));
  assert.notEqual(r.kind, 'resolved');
  assert.match(r.message, /compile\(\) the model before/);
  const data = new ArrayDataset(X, [5, 5, 2], Y, 4);
  await assert.rejects(m.fit(data, { verbose: 0 }), /compile\(\) model 'raw' before fit\(\)/);
  await assert.rejects(m.evaluate(data), /compile\(\) model 'raw' before evaluate\(\)/);
});

test('two concurrent trainStep calls: the second fails with "busy", the first completes, then the model is free', async () => {
  const m = small();
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  const x = new Rng(1).floats(X.length);
  const first = m.engine.trainStep(x, SHAPE, Y, 0);
  const second = await outcome(() => m.engine.trainStep(x, SHAPE, Y, 0));
  assert.notEqual(second.kind, 'resolved');
  assert.match(second.message, /busy/);
  const r = await first;
  assert.ok(Number.isFinite(r.loss));
  assert.equal(m.engine.getOptimizerState().iterations, 1, 'only the first step ran');
  // predict through the model (an async method): the second rejects
  const p1 = m.predict(x, SHAPE);
  await assert.rejects(m.predict(x, SHAPE), /busy/);
  await p1;
  // and the lock is released after both successes and failures
  const again = await m.engine.trainStep(x, SHAPE, Y, 0);
  assert.ok(Number.isFinite(again.loss));
});

test('engine calls report errors as rejected promises, never as synchronous throws', async () => {
  const m = small();
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  const first = m.engine.trainStep(X, SHAPE, Y, 0);
  const busy = await outcome(() => m.engine.trainStep(X, SHAPE, Y, 0));
  await first;
  const short = await outcome(() => m.engine.trainStep(X, SHAPE, Float32Array.from([0]), 0));
  assert.equal(busy.kind, 'rejected', `busy: ${busy.kind}`);
  assert.equal(short.kind, 'rejected', `y mismatch: ${short.kind}`);
});

// ------------------------------------------------------------------------------------------ install problems

test('find-libtorch with LIBTORCH pointing nowhere: exit 1, says what was tried and how to install', () => {
  const env = { ...process.env, LIBTORCH: '/nonexistent' };
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'scripts/find-libtorch.mjs'), 'include'], { env, encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '', 'nothing on stdout for node-gyp to take as include dirs');
  assert.match(r.stderr, /libtorch was not found/);
  assert.match(r.stderr, /LIBTORCH=\/nonexistent: no torch\/csrc\/api\/include\/torch\/torch\.h under \/nonexistent\/include/);
  assert.match(r.stderr, /apt-get install libtorch-dev/);
  assert.match(r.stderr, /LIBTORCH_USE_PYTORCH=1/);
});

test('find-libtorch finds the installed libtorch-dev (include dirs that exist)', () => {
  const env = { ...process.env };
  delete env.LIBTORCH;
  delete env.LIBTORCH_USE_PYTORCH;
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'scripts/find-libtorch.mjs'), 'include'], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const dirs = r.stdout.trim().split(' ');
  assert.equal(dirs.length, 2);
  assert.match(dirs[1], /torch\/csrc\/api\/include$/);
});

test('find-libtorch with no or an unknown argument: exit 2, names it and the outputs it prints', () => {
  for (const [args, named] of [
    [[], 'no argument'],
    [['json'], "'json'"],
  ] as const) {
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'scripts/find-libtorch.mjs'), ...args], { encoding: 'utf8' });
    assert.equal(r.status, 2, `${named}: ${r.stderr}`);
    assert.equal(r.stdout, '', `${named}: nothing on stdout`);
    assert.match(r.stderr, new RegExp(`got ${named}: pass one of include, lib, cuda-libs, dnnl-libs, defines, --explain`));
  }
});

/** Loads the engine in a child process with TRANSFERLAB_NATIVE set; returns the error message. */
function loadWith(addon: string): { status: number | null; message: string } {
  const nativeJs = pathToFileURL(path.join(repoRoot, 'dist/lib/engine/native.js')).href;
  const script =
    `import(${JSON.stringify(nativeJs)}).then((m) => { m.native(); console.log('LOADED'); }).catch((e) => { console.error(e.message); ` +
    `process.exit(3); });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, TRANSFERLAB_NATIVE: addon },
    encoding: 'utf8',
  });
  return { status: r.status, message: r.stderr + r.stdout };
}

test('a missing addon: the error says it is not built, how to build it, and where libtorch comes from', () => {
  const r = loadWith('/nonexistent/transferlab.node');
  assert.equal(r.status, 3);
  assert.match(r.message, /could not be loaded from \/nonexistent\/transferlab\.node/);
  assert.match(r.message, /has not been built/);
  assert.match(r.message, /npm run build:native/);
  assert.match(r.message, /apt-get install libtorch-dev/);
});

test('an addon that is not a shared library for this platform: the error says to rebuild', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'transferlab-addon-'));
  try {
    const fake = path.join(dir, 'transferlab.node');
    writeFileSync(fake, 'this is not an ELF file');
    const r = loadWith(fake);
    assert.equal(r.status, 3);
    assert.match(r.message, /could not be loaded from/);
    assert.match(r.message, /another Node\.js or platform|Reason:/);
    assert.doesNotMatch(r.message, /has not been built/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('explainLoadFailure: missing libtorch shared libraries at run time -> install / LIBTORCH advice', () => {
  const existing = path.join(repoRoot, 'package.json');
  const text = explainLoadFailure(existing, new Error('libtorch_cpu.so: cannot open shared object file: No such file or directory'));
  assert.match(text, /shared libraries were not found at run time \(libtorch_cpu\.so: cannot open shared object file/);
  assert.match(text, /apt-get install libtorch-dev/);
  assert.match(text, /npm run build:native/);
  const abi = explainLoadFailure(existing, new Error('was compiled against a different Node.js version using NODE_MODULE_VERSION 108'));
  assert.match(abi, /another Node\.js or platform/);
  const other = explainLoadFailure(existing, 'something odd');
  assert.match(other, /Reason: something odd/);
});

test('the real addon loads (the build is in place for the other engine tests)', () => {
  const r = loadWith(path.join(repoRoot, 'build/Release/transferlab.node'));
  assert.equal(r.status, 0, r.message);
  assert.match(r.message, /LOADED/);
});

test('while a step runs, calls that read or change the model are refused instead of racing it', async () => {
  const m = experimentCnn([96, 96, 3], { seed: 1 });
  m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  const running = m.engine.trainStep(new Uint8Array(8 * 96 * 96 * 3), [8, 96, 96, 3], new Float32Array(8), 0);
  assert.throws(() => m.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' }), /busy.*before compile/);
  assert.throws(() => m.getLayerWeights(0), /busy.*before getWeights/);
  assert.throws(() => m.setTrainable(0, false), /busy.*before setTrainable/);
  assert.throws(() => m.engine.getOptimizerState(), /busy.*before getOptimizerState/);
  await running;
  assert.equal(m.getLayerWeights(0).length, 2, 'free again once the step is done');
});
