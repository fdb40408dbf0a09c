#!/usr/bin/env node
import { execFileSync } from 'node:child_process';
// Finds libtorch for the native build, in the order tch-rs uses: LIBTORCH (an official libtorch
// download, CPU or CUDA), then LIBTORCH_USE_PYTORCH=1 (the active Python's torch), then the system
// (Debian/Ubuntu `libtorch-dev`). Prints `include` dirs, `lib` dir, `cuda-libs`, `dnnl-libs` or
// `defines` as node-gyp asks;
// `--explain` prints what was tried. Exits non-zero with instructions when nothing is found.
// A CUDA libtorch also needs the CUDA toolkit's headers (CUDA_HOME, default /usr/local/cuda) and,
// for the NCCL process group (src/distributed-nccl.cc), NCCL's nccl.h (NCCL_INCLUDE_DIR, else found
// beside libtorch's, the toolkit's or the system's headers; without it the engine has no NCCL).
// oneDNN (`dnnl-libs`, and TL_WITH_DNNL in `defines`): inference convolutions call the oneDNN that
// libtorch itself runs on (src/dnnl-conv.cc). Only for the system libtorch, whose oneDNN is the
// shared libdnnl.so.2 beside it, and only with that package's own headers (Debian's libdnnl-dev);
// other libtorch builds link oneDNN statically, with no headers that match it: the path is left out.
import { existsSync } from 'node:fs';
import path from 'node:path';

const HEADER = 'torch/csrc/api/include/torch/torch.h';
const tried = [];

// `kind` says where it came from ('libtorch', 'pytorch' or 'system'); `root` is for display.
function layout(kind, root, includeRoot, libDir) {
  const include = [includeRoot, path.join(includeRoot, 'torch/csrc/api/include')];
  const ok = existsSync(path.join(includeRoot, HEADER)) && existsSync(path.join(libDir, 'libtorch_cpu.so'));
  tried.push(`${root}: ${ok ? 'found' : `no ${HEADER} under ${includeRoot} or no libtorch_cpu.so in ${libDir}`}`);
  // a CUDA libtorch (official download or pip torch) also has libtorch_cuda.so: the addon links it then
  const cuda = ok && existsSync(path.join(libDir, 'libtorch_cuda.so'));
  return ok ? { kind, root, include, libDir, cuda } : undefined;
}

function find() {
  if (process.env.LIBTORCH) {
    const root = path.resolve(process.env.LIBTORCH);
    return layout('libtorch', `LIBTORCH=${root}`, path.join(root, 'include'), path.join(root, 'lib'));
  }
  if (process.env.LIBTORCH_USE_PYTORCH === '1') {
    const python = process.env.PYTHON ?? 'python3';
    try {
      const torchDir = execFileSync(python, ['-c', 'import torch, os; print(os.path.dirname(torch.__file__))'], {
        encoding: 'utf8',
      }).trim();
      return layout(
        'pytorch',
        `LIBTORCH_USE_PYTORCH=1 (${python}: ${torchDir})`,
        path.join(torchDir, 'include'),
        path.join(torchDir, 'lib'),
      );
    } catch (error) {
      tried.push(`LIBTORCH_USE_PYTORCH=1: \`${python} -c "import torch"\` failed (${String(error.message).split('\n')[0]})`);
      return undefined;
    }
  }
  for (const libDir of ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib', '/usr/local/lib']) {
    const found = layout('system', `system (${libDir})`, '/usr/include', libDir);
    if (found) return found;
  }
  return undefined;
}

// The extra header folders of a CUDA build: the toolkit's, and nccl.h's where there is one.
function cudaHeaders(found) {
  const toolkit = path.join(process.env.CUDA_HOME ?? process.env.CUDA_PATH ?? '/usr/local/cuda', 'include');
  const hasToolkit = existsSync(path.join(toolkit, 'cuda_runtime_api.h'));
  tried.push(`CUDA toolkit headers: ${hasToolkit ? toolkit : `no cuda_runtime_api.h in ${toolkit} (set CUDA_HOME)`}`);
  const candidates = [
    process.env.NCCL_INCLUDE_DIR,
    found.include[0],
    // pip torch: the nvidia-nccl wheel beside it
    found.kind === 'pytorch' ? path.join(found.libDir, '../../nvidia/nccl/include') : undefined,
    toolkit,
    '/usr/include',
  ].filter((dir) => dir !== undefined && dir !== '');
  const nccl = candidates.find((dir) => existsSync(path.join(dir, 'nccl.h')));
  tried.push(`nccl.h: ${nccl ?? `not in ${candidates.join(', ')} (set NCCL_INCLUDE_DIR); the engine is built without the NCCL backend`}`);
  return { include: [hasToolkit ? toolkit : undefined, nccl].filter((dir) => dir !== undefined), nccl: nccl !== undefined };
}

// Whether the system oneDNN that libtorch_cpu.so loads has its development files (dnnl.hpp, libdnnl.so).
function dnnl(found) {
  if (found.kind !== 'system') {
    tried.push('oneDNN: not used (only a system libtorch runs on a shared oneDNN whose headers can be installed)');
    return false;
  }
  const header = '/usr/include/dnnl.hpp';
  const runtime = path.join(found.libDir, 'libdnnl.so.2');
  const link = path.join(found.libDir, 'libdnnl.so');
  const missing = [header, runtime, link].filter((file) => !existsSync(file));
  let linked = false;
  try {
    linked = /libdnnl\.so\.2/.test(execFileSync('ldd', [path.join(found.libDir, 'libtorch_cpu.so')], { encoding: 'utf8' }));
  } catch {
    // no ldd: cannot tell which oneDNN libtorch loads
  }
  const ok = missing.length === 0 && linked;
  tried.push(
    `oneDNN: ${
      ok
        ? `${header} and ${runtime} (the one libtorch_cpu.so loads): inference convolutions call it directly`
        : missing.length > 0
          ? `missing ${missing.join(', ')} (apt-get install libdnnl-dev); convolutions go through libtorch only`
          : `libtorch_cpu.so does not load ${runtime}; convolutions go through libtorch only`
    }`,
  );
  return ok;
}

// node-gyp's outputs (binding.gyp) and --explain: anything else is a mistake, said before searching
const OUTPUTS = ['include', 'lib', 'cuda-libs', 'dnnl-libs', 'defines', '--explain'];
const what = process.argv[2];
if (!OUTPUTS.includes(what)) {
  console.error(
    `transferlab: find-libtorch.mjs got ${what === undefined ? 'no argument' : `'${what}'`}: pass one of ${OUTPUTS.join(', ')}.`,
  );
  process.exit(2);
}
const found = find();
if (!found) {
  console.error(
    'transferlab: libtorch was not found. Tried:\n' +
      tried.map((t) => `  - ${t}`).join('\n') +
      '\nInstall it with `apt-get install libtorch-dev` (Debian/Ubuntu), or set LIBTORCH=/path/to/libtorch ' +
      '(an unpacked libtorch download), or LIBTORCH_USE_PYTORCH=1 to use the torch of `python3`.',
  );
  process.exit(1);
}
// node-gyp runs this once per output: the CUDA headers and oneDNN (which runs ldd) only for those that print them
const cuda = () => (found.cuda ? cudaHeaders(found) : { include: [], nccl: false });
const withDnnl = () => dnnl(found);
if (what === 'include') console.log([...found.include, ...cuda().include].join(' '));
else if (what === 'lib') console.log(found.libDir);
// --no-as-needed: nothing references torch_cuda directly, but loading it registers the CUDA kernels
else if (what === 'cuda-libs') console.log(found.cuda ? '-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed' : '');
else if (what === 'dnnl-libs') console.log(withDnnl() ? '-ldnnl' : '');
else if (what === 'defines') {
  const defines = [
    ...(found.cuda ? ['TL_WITH_CUDA=1', ...(cuda().nccl ? ['USE_C10D_NCCL'] : [])] : []),
    ...(withDnnl() ? ['TL_WITH_DNNL=1'] : []),
  ];
  console.log(defines.join(' '));
} else {
  const { nccl } = cuda(); // before oneDNN: `tried` lists them in that order
  const backends = found.cuda ? (nccl ? 'with CUDA and NCCL' : 'with CUDA, without NCCL') : 'CPU only';
  const dnnlConvolutions = withDnnl();
  console.log(`${found.root} (${backends}${dnnlConvolutions ? ', oneDNN convolutions' : ''})\n${tried.join('\n')}`);
}
