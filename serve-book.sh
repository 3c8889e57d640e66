#!/usr/bin/env bash
# Installs the pinned book tools if they are missing, then serves the book with live reload
# at http://localhost:3000 and opens it in a browser. Extra arguments go to `mdbook serve`.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/install-book-tools.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
exec mdbook serve --open "$@"
