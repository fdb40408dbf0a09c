#!/usr/bin/env node
import { execFileSync } from 'node:child_process';
// Finds libtorch for the native build, in the order tch-rs uses: LIBTORCH (an official libtorch
// download, CPU or CUDA), then LIBTORCH_USE_PYTORCH=1 (the active Python's torch), then the system
// (Debian/Ubuntu `libtorch-dev`). Prints `include` dirs, `lib` dir, `cuda-libs` or `defines` (CUDA
// builds only) as node-gyp asks;
// `--explain` prints what was tried. Exits non-zero with instructions when nothing is found.
import { existsSync } from 'node:fs';
import path from 'node:path';

const HEADER = 'torch/csrc/api/include/torch/torch.h';
const tried = [];

function layout(root, includeRoot, libDir) {
  const include = [includeRoot, path.join(includeRoot, 'torch/csrc/api/include')];
  const ok = existsSync(path.join(includeRoot, HEADER)) && existsSync(path.join(libDir, 'libtorch_cpu.so'));
  tried.push(`${root}: ${ok ? 'found' : `no ${HEADER} under ${includeRoot} or no libtorch_cpu.so in ${libDir}`}`);
  // a CUDA libtorch (official download or pip torch) also has libtorch_cuda.so: the addon links it then
  const cuda = ok && existsSync(path.join(libDir, 'libtorch_cuda.so'));
  return ok ? { root, include, libDir, cuda } : undefined;
}

function find() {
  if (process.env.LIBTORCH) {
    const root = path.resolve(process.env.LIBTORCH);
    return layout(`LIBTORCH=${root}`, path.join(root, 'include'), path.join(root, 'lib'));
  }
  if (process.env.LIBTORCH_USE_PYTORCH === '1') {
    const python = process.env.PYTHON ?? 'python3';
    try {
      const torchDir = execFileSync(python, ['-c', 'import torch, os; print(os.path.dirname(torch.__file__))'], {
        encoding: 'utf8',
      }).trim();
      return layout(`LIBTORCH_USE_PYTORCH=1 (${python}: ${torchDir})`, path.join(torchDir, 'include'), path.join(torchDir, 'lib'));
    } catch (error) {
      tried.push(`LIBTORCH_USE_PYTORCH=1: \`${python} -c "import torch"\` failed (${String(error.message).split('\n')[0]})`);
      return undefined;
    }
  }
  for (const libDir of ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib', '/usr/local/lib']) {
    const found = layout(`system (${libDir})`, '/usr/include', libDir);
    if (found) return found;
  }
  return undefined;
}

const found = find();
const what = process.argv[2];
if (!found) {
  console.error(
    'transferlab: libtorch was not found. Tried:\n' +
      tried.map((t) => `  - ${t}`).join('\n') +
      '\nInstall it with `apt-get install libtorch-dev` (Debian/Ubuntu), or set LIBTORCH=/path/to/libtorch ' +
      '(an unpacked libtorch download), or LIBTORCH_USE_PYTORCH=1 to use the torch of `python3`.',
  );
  process.exit(1);
}
if (what === 'include') console.log(found.include.join(' '));
else if (what === 'lib') console.log(found.libDir);
// --no-as-needed: nothing references torch_cuda directly, but loading it registers the CUDA kernels
else if (what === 'cuda-libs') console.log(found.cuda ? '-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed' : '');
else if (what === 'defines') console.log(found.cuda ? 'TL_WITH_CUDA=1' : '');
else if (what === '--explain') console.log(`${found.root} (${found.cuda ? 'with CUDA' : 'CPU only'})\n${tried.join('\n')}`);
else console.log(JSON.stringify(found));
