#!/usr/bin/env bash
# Reruns every chapter program with its defaults, rewriting every figure and results table in
# chapters/. Each program's default seed is the one the book reports.
set -euo pipefail
cd "$(dirname "$0")/.."
# Every [[example]] in Cargo.toml, except a benchmark (named `bench`), which writes no figures.
examples=$(awk '/^\[\[example\]\]/ {e = 1; next} e && /^name *=/ {gsub(/^name *= *"|"$/, ""); print; e = 0}' Cargo.toml | grep -vx bench || true)
for example in $examples; do
  echo "==> $example"
  cargo run --locked --release --example "$example"
done
