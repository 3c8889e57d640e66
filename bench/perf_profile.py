"""Where each workload's step spends its time: samples the crate's bench at one thread with
`perf record` (the software clock, which works where hardware counters are not exposed), sorts
the samples into a few kinds of work, and prints the performance appendix's profile table
(Markdown, on stdout).

    python3 bench/perf_profile.py [WORKLOAD ...] > chapters/appendix/performance-profiles.md

Each workload runs twice: as the chapters run it, and with `DLFS_ALLOCATOR_DEFAULTS=1`, which
leaves glibc's allocator at its defaults (see `runner::keep_freed_memory`), so the table shows
what that one change saved and where the rest of the time goes. A second table gives the page
faults of a timed step at two threads (which the bench counts over its timed steps) with the
allocator at its defaults, with only its two thresholds set
(`DLFS_ALLOCATOR_DEFAULTS=arenas`) and as the chapters set it (one arena as well). Needs `perf`
(Debian's linux-perf) and a release build of the bench (`cargo build --release --example bench`).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

BENCH = "target/release/examples/bench"
WORKLOADS = ["mlp", "dropout", "lstm", "made", "attention", "transformer", "vae"]

# (column, test on the shared object and the symbol), first match wins.
KINDS = [
    # the gemm crates (gemm, gemm_common, gemm_f32: kernels, packing, dispatch), and ndarray's
    # matrixmultiply, which the classical modules still use
    ("matrix products", lambda dso, sym: re.match(r"<?(gemm\w*|matrixmultiply)::", sym) is not None),
    # glibc's libm, the pure-Rust `libm` crate linked into the binary, and the crate's own
    # vector kernels (src/vmath.rs: exp, tanh, sigmoid, the GELU's normal CDF, ln(1 + e^-|x|)).
    ("exp, tanh, erf, log", lambda dso, sym: dso.startswith("libm") or sym.startswith("libm::")
     or sym.startswith("dlfs::vmath::") or re.match(r"_*(exp|tanh|erf|log|expm1)", sym)),
    ("kernel: page faults and mappings", lambda dso, sym: dso.startswith("[kernel")),
    ("memset, memcpy", lambda dso, sym: re.match(r"_*(memset|memmove|memcpy)", sym) is not None),
    ("allocator", lambda dso, sym: re.match(r"_*(malloc|free|_int_malloc|_int_free|cfree|realloc|calloc|malloc_consolidate|unlink_chunk|sysmalloc)", sym) is not None),
    ("the crate's own loops", lambda dso, sym: True),
]


def bench_env(allocator):
    """This environment with DLFS_ALLOCATOR_DEFAULTS set to `allocator`, or unset for None (so
    that a value left in the caller's environment cannot change the chapters' setting)."""
    env = dict(os.environ)
    env.pop("DLFS_ALLOCATOR_DEFAULTS", None)
    if allocator is not None:
        env["DLFS_ALLOCATOR_DEFAULTS"] = allocator
    return env


def profile(workload, defaults):
    env = bench_env("1" if defaults else None)
    with tempfile.TemporaryDirectory() as tmp:
        data = f"{tmp}/perf.data"
        run = subprocess.run(
            ["perf", "record", "-q", "-e", "cpu-clock", "-F", "1999", "-o", data, BENCH, workload,
             "--threads", "1", "--steps", "100"],
            env=env, capture_output=True, text=True, check=True,
        )
        line = json.loads(next(l for l in run.stdout.splitlines() if l.startswith("{")))
        report = subprocess.run(
            ["perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol", "--stdio", "-q",
             "-g", "none"],
            capture_output=True, text=True, check=True,
        ).stdout
    shares = {k: 0.0 for k, _ in KINDS}
    for row in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*?)\s*(-\s+-\s*)?$", row)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
        for kind, test in KINDS:
            if test(dso, sym):
                shares[kind] += pct
                break
    return line["step_ms_median"], shares


def faults_per_step(workload, allocator):
    """Page faults per timed step at two threads (as the bench counts them over its timed steps)
    and the step's median (ms), with DLFS_ALLOCATOR_DEFAULTS set to `allocator` (None: unset)."""
    run = subprocess.run([BENCH, workload, "--threads", "2"], env=bench_env(allocator),
                         capture_output=True, text=True, check=True)
    line = json.loads(next(l for l in run.stdout.splitlines() if l.startswith("{")))
    return line["page_faults_per_step"], line["step_ms_median"]


def main():
    if shutil.which("perf") is None:
        sys.exit("error: perf not found (Debian: apt-get install linux-perf)")
    if not os.access(BENCH, os.X_OK):
        sys.exit(f"error: {BENCH} not found: run `cargo build --release --example bench` first")
    names = sys.argv[1:] or WORKLOADS
    listed = subprocess.run([BENCH, "--list"], capture_output=True, text=True, check=True).stdout.split()
    missing = [n for n in names if n not in listed]
    if missing:
        print(f"note: this build of the bench has no {', '.join(missing)}; skipped", file=sys.stderr)
    names = [n for n in names if n in listed]
    kinds = [k for k, _ in KINDS]
    print("Share of each workload's samples (percent), one thread, 100 timed steps under `perf record`"
          " (which slows a step a little); *defaults* is glibc's allocator left at its defaults,"
          " *kept* is the chapters' setting.")
    print()
    print("| workload | allocator | step (ms) | " + " | ".join(kinds) + " |")
    print("|---|---|---:|" + "---:|" * len(kinds))
    for n in names:
        for defaults in (True, False):
            ms, shares = profile(n, defaults)
            cells = " | ".join(f"{shares[k]:.1f}" for k in kinds)
            print(f"| `{n}` | {'defaults' if defaults else 'kept'} | {ms:.2f} | {cells} |", flush=True)
    print()
    print("Page faults per timed step at two threads, as the bench counts them (the process's minor"
          " and major faults over its 50 timed steps, from `getrusage`, divided by 50), and the"
          " step's median time from the same run: one run each, so the times are only a rough"
          " guide. *defaults* is glibc's allocator at its defaults, *thresholds* sets the mmap and"
          " trim thresholds only, *kept* is the chapters' setting (the thresholds and one arena).")
    print()
    modes = [("defaults", "1"), ("thresholds", "arenas"), ("kept", None)]
    print("| workload | " + " | ".join(f"{m}: faults per step | {m}: step (ms)" for m, _ in modes) + " |")
    print("|---|" + "---:|---:|" * len(modes))
    for n in names:
        cells = []
        for _, value in modes:
            faults, ms = faults_per_step(n, value)
            cells += [f"{faults:.1f}", f"{ms:.2f}"]
        print(f"| `{n}` | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
