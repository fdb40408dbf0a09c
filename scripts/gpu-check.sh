#!/usr/bin/env bash
# Checks the CUDA path on a machine with an NVIDIA GPU: the engine must be built against a CUDA
# libtorch with NCCL (LIBTORCH=/path/to/libtorch npm run build:native, docs/distributed.md). Runs
# the bench, a small `compare --device cuda`, and data-parallel training over NCCL (2 ranks on 2
# GPUs, a group of 1 rank on one GPU) checked against the same training over Gloo on the CPU.
# On a machine without nvidia-smi it says so and exits 0, unless --require-gpu; a GPU that is there
# but does not work (nvidia-smi fails, the engine cannot use it or has no NCCL) fails the check.
#   scripts/gpu-check.sh [--require-gpu] [DATA_DIR]   DATA_DIR: a PetImages folder (default: generated images)
set -euo pipefail
cd "$(dirname "$0")/.."

require_gpu=0
if [[ ${1:-} == --require-gpu ]]; then
  require_gpu=1
  shift
fi
fail() {
  echo "gpu-check: FAILED: $*" >&2
  exit 1
}
if ! command -v nvidia-smi >/dev/null; then
  [[ $require_gpu == 1 ]] && fail "no nvidia-smi here, and --require-gpu asks for a GPU"
  echo "gpu-check: no NVIDIA GPU here (no nvidia-smi): nothing to check"
  exit 0
fi
nvidia-smi -L || fail "nvidia-smi finds no working GPU (driver or device problem)"
[[ -d dist ]] || npm run build
device_info=$(node --input-type=module -e "
  import { native } from './dist/lib/engine/native.js';
  console.log(JSON.stringify({ ...native().deviceInfo(), ncclBuilt: native().distributed.ncclBuilt }))")
echo "gpu-check: engine $device_info"
if [[ $device_info != *'"cudaAvailable":true'* ]]; then
  echo "gpu-check: the engine cannot use the GPU (built against a CPU-only libtorch?). Rebuild with"
  echo "  LIBTORCH=/path/to/libtorch-cuda npm run build:native   (node scripts/find-libtorch.mjs --explain shows what is found)"
  fail "the engine sees no GPU"
fi
if [[ $device_info != *'"ncclBuilt":true'* ]]; then
  echo "gpu-check: the engine was built without NCCL (no nccl.h at build time: set NCCL_INCLUDE_DIR and rebuild;"
  echo "  node scripts/find-libtorch.mjs --explain shows what is found)"
  fail "no NCCL backend"
fi
gpus=$(node --input-type=module -e "import { native } from './dist/lib/engine/native.js'; console.log(native().deviceInfo().cudaDevices)")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs test/helpers/data-parallel-worker (case $1) as $2 ranks through the built-in launcher
# (torchrun's environment; a failing rank stops the others), with DP_* settings from the environment.
run_ranks() {
  local which=$1 nproc=$2 out=$3
  DP_CASE=$which DP_OUT=$out DP_CACHE="$work/dp-cache-$which-$DP_DEVICE" DP_BUCKET_MB=0.05 node --input-type=module -e "
    import { launch } from './dist/lib/cli/launcher.js';
    const { exitCode } = await launch({ nproc: $nproc, command: [process.execPath, 'dist/test/helpers/data-parallel-worker.js'] });
    process.exit(exitCode);" || fail "data-parallel $which on $DP_DEVICE over $DP_BACKEND: a rank failed (the others were stopped)"
}

# NCCL on the GPUs against Gloo on the CPU, same ranks and data: the updates (final - initial
# weights) and the history must agree within float rounding (cuDNN's TF32 convolutions), and the
# NCCL ranks must hold the same weights.
nproc=$((gpus >= 2 ? 2 : 1))
for which in cnn head extract; do
  echo "gpu-check: data-parallel $which: $nproc rank(s) over NCCL on GPUs vs Gloo on the CPU"
  DP_DEVICE=cuda DP_BACKEND=nccl DP_GROUP_OF_ONE=1 run_ranks "$which" "$nproc" "$work/nccl-$which"
  DP_DEVICE=cpu DP_BACKEND=gloo DP_GROUP_OF_ONE=1 run_ranks "$which" "$nproc" "$work/gloo-$which"
  node --input-type=module -e "
    import { readFileSync } from 'node:fs';
    const read = (f) => JSON.parse(readFileSync(f, 'utf8'));
    const gloo = read('$work/gloo-$which.rank0.json');
    const flat = (w) => w.flat(2);
    // from rank 0's initial weights: the others start from them once broadcast
    const update = (r, start) => {
      const initial = flat(start.initial);
      return flat(r.final).map((v, i) => v - initial[i]);
    };
    const norm = (a) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));
    const problems = [];
    const ncclRank0 = read('$work/nccl-$which.rank0.json');
    for (let rank = 0; rank < $nproc; rank++) {
      const nccl = read('$work/nccl-$which.rank' + rank + '.json');
      if (nccl.backend !== 'nccl') problems.push('rank ' + rank + ' used backend ' + nccl.backend + ', not nccl');
      const a = update(nccl, ncclRank0), b = update(gloo, gloo);
      const rel = norm(a.map((v, i) => v - b[i])) / Math.max(norm(b), 1e-12);
      console.log('gpu-check:   rank ' + rank + ': update differs from Gloo/CPU by ' + rel.toExponential(2) + ' (relative)');
      if (!(rel <= 5e-2)) problems.push('rank ' + rank + ': weights updated differently from Gloo/CPU (' + rel + ' relative)');
      for (const [key, values] of Object.entries(gloo.history)) {
        values.forEach((v, e) => {
          const w = nccl.history[key]?.[e];
          if (!(Math.abs(w - v) <= 1e-2 * Math.max(1, Math.abs(v)))) problems.push('rank ' + rank + ': ' + key + '[' + e + '] ' + w + ' vs ' + v);
        });
      }
      if (rank > 0) {
        const r0 = flat(ncclRank0.final), rk = flat(nccl.final);
        const apart = norm(r0.map((v, i) => v - rk[i])) / Math.max(norm(r0), 1e-12);
        if (!(apart <= 1e-6)) problems.push('rank ' + rank + ' holds other weights than rank 0 (' + apart + ' relative)');
      }
    }
    if (problems.length) { console.error('gpu-check: FAILED: data-parallel $which:\n  ' + problems.join('\n  ')); process.exit(1); }
  "
done

data=${1:-}
source_flag=--data-dir
if [[ -z $data ]]; then
  # 2 classes x 40 generated JPEGs (an image folder: they lack the JFIF marker cats_vs_dogs asks for)
  data="$work/images"
  source_flag=--image-folder
  node --input-type=module -e "
    import sharp from 'sharp';
    import { mkdirSync } from 'node:fs';
    for (const [c, cls] of [[0, 'Cat'], [1, 'Dog']]) {
      mkdirSync('$data/' + cls, { recursive: true });
      for (let i = 0; i < 40; i++) {
        const px = Buffer.alloc(94 * 94 * 3, (i * 7 + c * 128) % 256);
        await sharp(px, { raw: { width: 94, height: 94, channels: 3 } }).jpeg().toFile('$data/' + cls + '/' + i + '.jpg');
      }
    }"
fi

# the bench measures the CPU engine (and libtorch's view of this machine) next to the GPU run below
echo "gpu-check: bench (--quick)"
node dist/bench/main.js --quick --no-pytorch
echo "gpu-check: compare --device cuda, CNN, 2 epochs"
node dist/lib/cli/main.js compare "$source_flag" "$data" --models cnn --image-size 94 --batch-size 16 --epochs 2 \
  --device cuda --out "$work/run" --cache-dir "$work/cache"
if grep -q '"device": "cuda:0"' "$work/run/environment.json"; then
  echo "gpu-check: ok (the run used cuda:0)"
else
  echo "gpu-check: the run did not record device cuda:0 in environment.json" >&2
  exit 1
fi
