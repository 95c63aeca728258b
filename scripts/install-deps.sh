#!/usr/bin/env bash
# Installs what dyncim needs on a Debian machine with Node.js 20: Debian packages (only those
# missing), the npm dependencies from package-lock.json, and the compiled CLI in dist/.
#
#   bash scripts/install-deps.sh            everything, including PyTorch for the encoder export
#   bash scripts/install-deps.sh --tests    only what the test suite needs (no PyTorch)
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(espeak-ng sox)
if [[ "${1:-}" != "--tests" ]]; then
  debian_packages+=(python3-torch python3-torchvision python3-onnx)
fi

missing=()
for package in "${debian_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done

if ((${#missing[@]} > 0)); then
  echo "dyncim setup: installing Debian packages: ${missing[*]}"
  sudo_prefix=()
  [[ "$(id -u)" == 0 ]] || sudo_prefix=(sudo)
  "${sudo_prefix[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_prefix[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# onnxruntime-node's install script would download CUDA provider binaries from outside the npm
# registry; the CPU provider ships in the package. See models/README.md for CUDA.
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "dyncim setup: installing npm dependencies (npm ci)"
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
fi

echo "dyncim setup: compiling TypeScript"
npm run --silent build
