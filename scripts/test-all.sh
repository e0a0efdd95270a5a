#!/usr/bin/env bash
# Runs every clifhe test on a fresh machine, installing what is missing:
#   - the thumbv7em-none-eabihf target (rustup) for the no_std core and the firmware,
#   - qemu-system-arm (apt-get) and the instruction-count plugin for on-target tests
#     (scripts/device-tests.sh),
#   - nats-server (apt-get) for the inference service's tests (host-eval/tests/service_*.rs),
#   - cargo-fuzz (cargo install) for the fuzzers' smoke run (scripts/fuzz.sh, docs/fuzzing.md).
# Exit status is non-zero if anything fails. `.ci/run` calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# A run from a clean checkout never reuses incremental state, which takes gigabytes beside the
# test binaries (CI's disk is limited); a developer may set CARGO_INCREMENTAL=1 to keep it.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

if ! rustup target list --installed 2>/dev/null | grep -qx thumbv7em-none-eabihf; then
  step "installing the thumbv7em-none-eabihf target"
  rustup target add thumbv7em-none-eabihf
fi

if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing nats-server (apt-get) for the service tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server
  else
    echo "nats-server is missing and cannot be installed (not root / no apt-get)" >&2
    exit 1
  fi
fi

step "no_std core builds for Cortex-M4F (no allocator, no default features)"
cargo build --quiet -p clifhe-core --target thumbv7em-none-eabihf --no-default-features

step "formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "lints (clippy, warnings are errors)"
cargo clippy --quiet --workspace --all-targets -- -D warnings

step "library tests (real presets run optimised, see [profile.test]; the toy presets of the
     insecure-test-params feature are enabled here through the crates' dev-dependencies)"
cargo test --workspace --exclude host-eval --all-targets

step "real scan files for the readers' tests and the README's worked example: pydicom's and
     nibabel's bundled test data, nilearn's MNI152 template (PyPI)"
# host-eval/tests/data_real_files.rs checks the DICOM and NIfTI readers against these files, with
# values computed once by pydicom and nibabel; host-eval/tests/example_mni152.rs takes nilearn's
# MNI152 T1 template through encrypt -> infer -> release. Under CI=true a missing corpus fails.
corpus=target/test-corpora
if [ ! -d "$corpus/pydicom/data/test_files" ] || [ ! -d "$corpus/nibabel/tests/data" ] || [ ! -d "$corpus/nilearn/datasets/data" ]; then
  mkdir -p "$corpus"
  python3 -m pip download --quiet --no-deps pydicom==3.0.2 nibabel==5.4.2 nilearn==0.14.1 -d "$corpus"
  for wheel in "$corpus"/pydicom-3.0.2-*.whl "$corpus"/nibabel-5.4.2-*.whl "$corpus"/nilearn-0.14.1-*.whl; do
    python3 -m zipfile -e "$wheel" "$corpus"
  done
fi
export CLIFHE_PYDICOM_TEST_FILES="$PWD/$corpus/pydicom/data/test_files"
export CLIFHE_NIBABEL_TEST_DATA="$PWD/$corpus/nibabel/tests/data"
export CLIFHE_NILEARN_DATA="$PWD/$corpus/nilearn/datasets/data"

step "command-line tests, built as shipped: without insecure-test-params"
cargo test -p host-eval --all-targets

step "Python package (python/: PyO3 + maturin, pytest in a fresh virtual environment under target/;
     scripts/python-tests.sh)"
scripts/python-tests.sh

step "fuzzing smoke run: every reader's cargo-fuzz target for 3 s from its seeds (scripts/fuzz.sh;
     the long runs are recorded in docs/fuzzing.md)"
scripts/fuzz.sh 3

if [ -x scripts/device-tests.sh ]; then
  step "firmware tests under QEMU"
  scripts/device-tests.sh
fi
