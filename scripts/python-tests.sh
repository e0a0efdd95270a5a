#!/usr/bin/env bash
# The Python package `clifhe` (python/: PyO3 + maturin) in a fresh virtual environment under
# the target directory, and its pytest suite (python/tests). Needs python3 with venv and pip,
# and the package registry for maturin, numpy and pytest.
#
# The package is installed as a user installs it, `pip install ./python` (maturin through pip's
# build isolation, cargo's release profile, stripped), so CI builds what users get. The build
# reuses nothing from the cargo test steps (other profile): on 2 cores it is the bulk of this
# step's time.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$PWD/target}"
venv="$target/py-venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q pytest numpy
start=$(date +%s)
CARGO_TARGET_DIR="$target" "$venv/bin/python" -m pip install -q ./python
echo "pip install ./python: $(($(date +%s) - start)) s"

# The tests compare against the command line as built by the cargo test steps.
export CLIFHE_HOST_EVAL="${CLIFHE_HOST_EVAL:-$target/debug/host-eval}"
if [ ! -x "$CLIFHE_HOST_EVAL" ]; then
  cargo build --quiet --profile test -p host-eval --bin host-eval
fi
# Run from outside the source tree so that the installed package, not python/clifhe, is imported.
cd python/tests
"$venv/bin/python" -m pytest -q -p no:cacheprovider .
