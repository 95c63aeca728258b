#!/usr/bin/env bash
# One command from a fresh clone: install everything, build the frozen encoders, and run the
# main job on the embedded default dataset (espeak-ng speech + MNIST digits).
# Extra arguments go to `dyncim run`, e.g. `bash scripts/setup.sh --source fsdd`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
node dist/orchestrator/cli/main.js encoders build
node dist/orchestrator/cli/main.js run "$@"
