#!/usr/bin/env bash
# One command: clifhe's full-slot bootstrapping next to DESILO FHE's, on this machine, in this
# hour, one thread each, and the ratio BENCHMARKS.md quotes.
#
#   benches/peers/compare_bootstrap.sh                  # DESILO with its medium bootstrap key
#   DESILO_KEY=small benches/peers/compare_bootstrap.sh     # its small key: less memory, 3x slower
#
# Installs DESILO FHE from PyPI into the virtual environment compare.sh uses
# (target/peers-venv), then runs, back to back:
#   clifhe: `cargo bench -p clifhe-benches --bench bootstrap` filtered to the full-slot
#           bootstrap at bootstrap-n16 (criterion, 10 samples; RAYON_NUM_THREADS=1);
#   DESILO: benches/peers/desilo_bootstrap.py (DESILO_REPS repetitions, default 1: its keys take
#           about 2 minutes and one full-slot bootstrap most of one on one thread, and the
#           medium key needs about 17 GiB of memory; OMP_NUM_THREADS=1);
# and prints the table (benches/peers/bootstrap_ratio.py). The whole run takes about 6 minutes. Lattigo, the issue's reference, is not on the registries this project may reach; its
# figure in BENCHMARKS.md is from a source build on the same machine class, not from this run.
# Precision, levels and peak memory of clifhe's bootstrap come from the heavy test
# (`CLIFHE_HEAVY=1 cargo test --release -p clifhe-std --test bootstrap_heavy -- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
venv="$target/peers-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -c "import desilofhe" 2>/dev/null || "$venv/bin/pip" install --quiet desilofhe numpy
out="$target/peers"
mkdir -p "$out"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) (nproc $(nproc)); $(grep -m1 -o -w avx512ifma /proc/cpuinfo || echo no IFMA on this CPU)"
RAYON_NUM_THREADS=1 cargo bench --quiet -p clifhe-benches --bench bootstrap -- --noplot "bootstrap full slots" >&2
OMP_NUM_THREADS=1 "$venv/bin/python" benches/peers/desilo_bootstrap.py --threads 1 --reps "${DESILO_REPS:-1}" \
  --key "${DESILO_KEY:-medium}" | tee "$out/desilo_bootstrap.jsonl" >&2
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$venv/bin/python" benches/peers/bootstrap_ratio.py "$target/criterion" "$out/desilo_bootstrap.jsonl"
