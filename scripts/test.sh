#!/usr/bin/env bash
# Runs the test suite from a fresh clone: installs what the tests need, then jest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --tests

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
status=0
npx jest --ci --json --outputFile="$results" "$@" || status=$?

# one plain closing line that any CI reads: 'tests: N passed, N failed'
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` +
    (skipped ? `, ${skipped} skipped` : ""));
' "$results" || true
exit "$status"
