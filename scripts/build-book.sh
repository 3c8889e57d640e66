#!/usr/bin/env bash
# Builds what is published: the book (mdBook, failing on any warning), checked for offline
# reading and broken links, with the crate's API documentation (`cargo doc`, warnings denied)
# under book/api/ so chapters can link to items as api/dlfs/... (from a chapter at the top)
# or ../api/dlfs/... (from a chapter in a folder). .ci/run and the Pages workflow both run
# this script, so what CI checks is exactly what gets deployed.
#
# Needs mdBook and mdbook-katex on PATH (scripts/install-book-tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

rm -rf book
log=$(mktemp)
trap 'rm -f "$log"' EXIT
mdbook build 2>&1 | tee "$log"
if grep -E 'WARN|ERROR' "$log"; then
  echo "the book build printed warnings or errors (above)" >&2
  exit 1
fi

bash scripts/api-docs.sh book/api

bash scripts/check-book-html.sh book
python3 scripts/link-check.py
