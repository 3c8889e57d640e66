#!/usr/bin/env bash
# Builds the crate's API documentation (`cargo doc`, warnings denied) and copies it into the
# folder given as the only argument. Asks cargo where its target folder is, so it works with
# CARGO_TARGET_DIR set or a target-dir in a cargo config.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:?usage: scripts/api-docs.sh DEST}
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps
target=$(cargo metadata --locked --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
rm -rf "$dest"
mkdir -p "$dest"
cp -r "$target/doc/." "$dest/"
