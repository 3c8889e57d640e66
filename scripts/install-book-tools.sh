#!/usr/bin/env bash
# Installs the pinned mdBook and mdbook-katex with `cargo install --locked`, unless the right
# versions are already on PATH. mdbook-katex 0.10.0 was built against mdBook 0.5.3: the two are
# pinned together (under any other mdBook it prints a warning on every build).
set -euo pipefail
MDBOOK_VERSION=0.5.3
MDBOOK_KATEX_VERSION=0.10.0
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

have() { # have COMMAND VERSION: is COMMAND on PATH and does `COMMAND --version` print VERSION?
  command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -qw "v\?$2"
}

if have mdbook "$MDBOOK_VERSION"; then
  echo "mdbook $MDBOOK_VERSION: already installed"
else
  echo "installing mdbook $MDBOOK_VERSION (a few minutes, once)"
  cargo install --locked "mdbook@$MDBOOK_VERSION"
fi
if have mdbook-katex "$MDBOOK_KATEX_VERSION"; then
  echo "mdbook-katex $MDBOOK_KATEX_VERSION: already installed"
else
  echo "installing mdbook-katex $MDBOOK_KATEX_VERSION (about two minutes, once)"
  cargo install --locked "mdbook-katex@$MDBOOK_KATEX_VERSION"
fi
