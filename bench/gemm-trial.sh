#!/usr/bin/env bash
# The matrix-product trial of the performance appendix: ndarray's product (matrixmultiply, what
# every layer of the crate used before src/matmul.rs) against the pure-Rust `gemm` crate (what
# src/matmul.rs calls), on the products of the
# workloads, at 1 and at 2 threads, alternating in each process; then writes the appendix's table
# chapters/appendix/performance-gemm.md from the JSON lines (bench/results/gemm.jsonl).
#
#   bash bench/gemm-trial.sh [ROUNDS]   # default 7 rounds per product; about two minutes
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
cargo build --locked --release --manifest-path bench/gemm-trial/Cargo.toml
out=bench/results
mkdir -p "$out"
: > "$out/gemm.jsonl"
for threads in 1 2; do
  echo "threads $threads" >&2
  MATMUL_NUM_THREADS=$threads bench/gemm-trial/target/release/gemm-trial "$rounds" >> "$out/gemm.jsonl"
done
python3 bench/gemm_report.py "$out/gemm.jsonl" "$(lscpu | sed -n 's/^Model name: *//p')" \
  > chapters/appendix/performance-gemm.md
echo "wrote chapters/appendix/performance-gemm.md" >&2
