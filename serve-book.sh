#!/usr/bin/env bash
# Installs the pinned book tools if they are missing, builds the crate's API documentation into
# chapters/api/ (ignored by git; mdBook copies it into the served book, so the chapters' links
# into api/ work as they do in the published book), then serves the book with live reload at
# http://localhost:3000 and opens it in a browser. Extra arguments go to `mdbook serve`.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/install-book-tools.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
bash scripts/api-docs.sh chapters/api
exec mdbook serve --open "$@"
