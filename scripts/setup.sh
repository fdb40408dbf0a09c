#!/usr/bin/env bash
# Installs what TransferLab needs on a fresh Debian/Ubuntu machine, then the npm packages and the
# native engine. Safe to run again: it installs only what is missing.
#   --with-bench   also Debian's python3-torch, for the PyTorch side of `npm run bench`
set -euo pipefail
cd "$(dirname "$0")/.."

# libopenblas0-openmp: Debian's libtorch links the reference BLAS unless OpenBLAS provides it;
# its Dense layers (matrix products) run several times faster with it.
# libgloo-dev: the gloo headers that libtorch's c10d headers (ProcessGroupGloo) include.
# libdnnl-dev: the headers of the oneDNN libtorch runs on; inference convolutions call it directly.
packages=(libtorch-dev libgloo-dev libdnnl-dev libopenblas0-openmp fonts-dejavu-core chromium)
[[ " $* " == *" --with-bench "* ]] && packages+=(python3-torch)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root to install: ${missing[*]} (apt-get install ${missing[*]})" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm ci also builds the native engine (the package's install script runs node-gyp).
npm ci --no-audit --no-fund
npm run build
