#!/usr/bin/env bash
# The side-by-side measurement of the performance appendix: the crate's bench and the PyTorch
# script, alternating, several rounds at 1 and at 2 threads, on this machine in this session;
# then the parity check; then bench/report.py writes the appendix's tables from the JSON.
#
#   bash bench/setup-venv.sh     # once
#   bash bench/run.sh [ROUNDS]   # default 5 rounds
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
py=bench/.venv/bin/python
[ -x "$py" ] || { echo "error: run bench/setup-venv.sh first" >&2; exit 1; }
cargo build --locked --release --example bench
out=bench/results
mkdir -p "$out"
runs=$out/runs.jsonl
: > "$runs"
{
  echo "{\"machine\": \"$(lscpu | sed -n 's/^Model name: *//p')\", \"cores\": $(nproc), \"date\": \"$(date -u +%Y-%m-%d)\", \"rustc\": \"$(rustc --version)\", \"torch\": \"$($py -c 'import torch; print(torch.__version__)')\", \"load_before\": $(cut -d' ' -f1 /proc/loadavg)}"
} > "$out/machine.json"
for threads in 1 2; do
  for round in $(seq "$rounds"); do
    echo "threads $threads, round $round of $rounds" >&2
    target/release/examples/bench all --threads "$threads" --peak >> "$runs"
    "$py" bench/pytorch_bench.py all --threads "$threads" --peak >> "$runs"
  done
done
parity=$(mktemp -d)
target/release/examples/bench all --parity "$parity" >&2
"$py" bench/pytorch_bench.py all --parity "$parity" > "$out/parity.jsonl"
rm -r "$parity"
sed -i "s/}\$/, \"load_after\": $(cut -d' ' -f1 /proc/loadavg)}/" "$out/machine.json"
python3 bench/report.py "$out" > chapters/appendix/performance-tables.md
echo "wrote chapters/appendix/performance-tables.md" >&2
