"""Writes the performance appendix's matrix-product trial table (Markdown, on stdout) from
bench/gemm-trial.sh's JSON lines. Every number is computed here from that file."""

import datetime
import json
import sys


def main():
    path, machine = sys.argv[1], sys.argv[2]
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if not rows:
        sys.exit(f"error: {path} has no measurements")
    print(
        f"Measured on {datetime.date.today().isoformat()} on a {machine}: GFLOP/s of one "
        "single-precision product, the median of several timed batches with the two libraries "
        "alternating; *apart* is the largest difference of the two results over the largest "
        "entry (they add in different orders); *same bits* says whether `gemm` at this thread "
        "count gives exactly its one-thread result."
    )
    print()
    print("| product | m x k x n | operands | threads | ndarray (GFLOP/s) | gemm (GFLOP/s) | gemm / ndarray | apart | same bits |")
    print("|---|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        ratio = r["gemm_gflops"] / r["ndarray_gflops"]
        print(
            f"| {r['product']} | {r['m']} x {r['k']} x {r['n']} | `{r['layout']}` | {r['threads']} "
            f"| {r['ndarray_gflops']:.1f} | {r['gemm_gflops']:.1f} | {ratio:.2f} "
            f"| {r['max_difference_relative']:.1e} | {'yes' if r['gemm_same_bits_as_one_thread'] else 'no'} |"
        )


if __name__ == "__main__":
    main()
