#!/usr/bin/env bash
# Checks the CUDA path on a machine with an NVIDIA GPU: the engine must be built against a CUDA
# libtorch (LIBTORCH=/path/to/libtorch npm run build:native, docs/distributed.md). Runs the bench
# and a small `compare --device cuda`; on a machine without a GPU or a CPU-only engine it says so
# and exits 0 without running anything.
#   scripts/gpu-check.sh [DATA_DIR]   DATA_DIR: a PetImages folder (default: generated images)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi finds none): nothing to check"
  exit 0
fi
nvidia-smi -L
[[ -d dist ]] || npm run build
device_info=$(node --input-type=module -e "import { native } from './dist/lib/engine/native.js'; console.log(JSON.stringify(native().deviceInfo()))")
echo "gpu-check: engine $device_info"
if [[ $device_info != *'"cudaAvailable":true'* ]]; then
  echo "gpu-check: the engine cannot use the GPU (built against a CPU-only libtorch?). Rebuild with"
  echo "  LIBTORCH=/path/to/libtorch-cuda npm run build:native   (node scripts/find-libtorch.mjs --explain shows what is found)"
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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
