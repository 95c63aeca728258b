#!/usr/bin/env bash
# Runs the test suite from a fresh clone: installs what the tests need, then jest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --tests
npx jest --ci "$@"
