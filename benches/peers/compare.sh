#!/usr/bin/env bash
# One command: clifhe's key switching next to Microsoft SEAL's, on this machine, in this hour,
# and the ratio table BENCHMARKS.md quotes.
#
#   benches/peers/compare.sh            # N = 2^14 and 2^15
#   benches/peers/compare.sh 14         # one ring degree
#   CLIFHE_NTT=avx2 benches/peers/compare.sh   # clifhe without its AVX-512 IFMA NTT passes
#
# Installs SEAL from PyPI (the TenSEAL wheel's raw bindings) into a virtual environment under
# target/peers-venv, then for each N runs, back to back and on one thread each:
#   clifhe: `cargo bench -p clifhe-benches --bench evaluator` filtered to the key-switching
#           operations (criterion, 10 samples of about 3 s; RAYON_NUM_THREADS=1);
#   SEAL:   benches/peers/seal_keyswitch.py (9 repetitions; OMP_NUM_THREADS=1);
# and prints the table (benches/peers/ratio_table.py). Shared machines are noisy: read the
# ratio of one run, repeat the command for a range, and report the load next to it.
# Lattigo and OpenFHE are not on the registries this project may reach; their figures in
# BENCHMARKS.md came from source builds (Go 1.22 + Lattigo v6.2.0; OpenFHE 1.5.1 with CMake),
# which this script does not attempt. The SEAL in that wheel is built without Intel HEXL (no
# AVX-512 IFMA instructions in its binaries); clifhe's NTT uses IFMA for primes below 2^62
# where the CPU has it, so on such a CPU also run it with CLIFHE_NTT=avx2 for the like-for-like
# ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
logns=("$@")
[ ${#logns[@]} -gt 0 ] || logns=(14 15)
target="${CARGO_TARGET_DIR:-target}"
venv="$target/peers-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet tenseal numpy
fi
out="$target/peers"
mkdir -p "$out"
: > "$out/seal.jsonl"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) (nproc $(nproc)); clifhe NTT path: ${CLIFHE_NTT:-best available}; $(grep -m1 -o -w avx512ifma /proc/cpuinfo || echo no IFMA on this CPU)"
for logn in "${logns[@]}"; do
  RAYON_NUM_THREADS=1 cargo bench --quiet -p clifhe-benches --bench evaluator -- --noplot \
    "^eval/N=2\\^${logn}/(ct\\*ct mul\\+relin|rotate 1)\$" >&2
  OMP_NUM_THREADS=1 "$venv/bin/python" benches/peers/seal_keyswitch.py --logn "$logn" --reps 9 | tee -a "$out/seal.jsonl" >&2
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$venv/bin/python" benches/peers/ratio_table.py "$target/criterion" "$out/seal.jsonl" "${logns[@]}"
