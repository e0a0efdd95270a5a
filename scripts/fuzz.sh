#!/usr/bin/env bash
# Fuzzes every reader (the cargo-fuzz targets in fuzz/, see docs/fuzzing.md), one target at a
# time, each for a bounded time or number of executions.
#
#   scripts/fuzz.sh 10                 # 10 s per target (the smoke run)
#   scripts/fuzz.sh 300 wire nifti     # 5 min each, two targets
#   scripts/fuzz.sh --runs 10000000    # 10^7 executions per target (or FUZZ_MAX_TIME, 1800 s)
#
# Installs cargo-fuzz when missing (cargo install cargo-fuzz --locked) and builds with the
# machine's stable toolchain: cargo-fuzz passes nightly-only flags, which RUSTC_BOOTSTRAP=1
# lets stable accept. Each target runs as one libFuzzer process (no -jobs/-workers) over its
# seeds (fuzz/corpus/<target>, read only) and a working corpus (fuzz/work/<target>, where new
# inputs go; gitignored, kept between runs). Crashes land in fuzz/artifacts/<target>/.
#
# Prints one line per target (executions, exec/s, seconds, corpus) and `N passed, M failed`;
# exits non-zero when any target crashes, leaks past the memory limit, hits the per-input
# timeout, or cannot be built or run. Every step runs under `timeout`.
#
# Environment: FUZZ_SANITIZER (none | address; default none: the readers are safe Rust, and
# without ASan the run does about twice the executions; debug assertions and overflow checks
# are on either way), FUZZ_MAX_TIME (--runs mode: seconds per target at most, default 1800),
# FUZZ_INPUT_TIMEOUT (seconds one input may take, default 10), FUZZ_RSS_MB (default 2048),
# FUZZ_BUILD_TIMEOUT (default 3600), CARGO (default cargo).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

mode=time
amount=
case "${1:-}" in
  --runs)
    mode=runs
    amount="${2:-}"
    shift 2 || usage
    ;;
  '' | -h | --help) usage ;;
  *)
    amount="$1"
    shift
    ;;
esac
[[ "$amount" =~ ^[0-9]+$ && "$amount" -gt 0 ]] || usage

cargo="${CARGO:-cargo}"
sanitizer="${FUZZ_SANITIZER:-none}"
max_time="${FUZZ_MAX_TIME:-1800}"
input_timeout="${FUZZ_INPUT_TIMEOUT:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"
build_timeout="${FUZZ_BUILD_TIMEOUT:-3600}"
triple="$(rustc -vV | sed -n 's/^host: //p')"

all_targets=(wire eval_keys model_json batchfile profile_json bundle npz nifti dicom raw features)
if [[ $# -gt 0 ]]; then
  targets=("$@")
  for t in "${targets[@]}"; do
    [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "unknown target '$t' (${all_targets[*]})" >&2; exit 2; }
  done
else
  targets=("${all_targets[@]}")
fi

if ! "$cargo" fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  timeout 1800 "$cargo" install cargo-fuzz --locked
fi

echo "== building ${#targets[@]} target(s) (sanitizer: $sanitizer, $(rustc --version))"
(
  cd fuzz
  for t in "${targets[@]}"; do
    RUSTC_BOOTSTRAP=1 timeout "$build_timeout" "$cargo" fuzz build --sanitizer "$sanitizer" "$t"
  done
)

passed=0
failed=0
summary=()
for t in "${targets[@]}"; do
  bin="fuzz/target/$triple/release/$t"
  work="fuzz/work/$t"
  log="fuzz/work/$t.log"
  mkdir -p "$work" "fuzz/artifacts/$t"
  if [[ $mode == time ]]; then
    limit=("-max_total_time=$amount")
    wall=$((amount + 120))
  else
    limit=("-runs=$amount" "-max_total_time=$max_time")
    wall=$((max_time + 120))
  fi
  start=$(date +%s)
  set +e
  timeout --kill-after=10 "$wall" "$bin" "$work" "fuzz/corpus/$t" "${limit[@]}" \
    -print_final_stats=1 -timeout="$input_timeout" -rss_limit_mb="$rss_mb" \
    -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1
  rc=$?
  set -e
  secs=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | sed 's/corp: //')
  line=$(printf '%-13s execs %10s  exec/s %7s  %5s s  corpus %s' "$t" "${execs:-?}" "${rate:-?}" "$secs" "${corp:-?}")
  if [[ $rc -eq 0 && -n "$execs" ]]; then
    passed=$((passed + 1))
    summary+=("PASS $line")
  else
    failed=$((failed + 1))
    artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -1 | sed 's/Test unit written to //')
    summary+=("FAIL $line  (exit $rc${artifact:+, input $artifact}; log $log)")
    echo "---- $t failed (exit $rc), end of $log:" >&2
    tail -n 40 "$log" >&2
  fi
  echo "${summary[-1]}"
done

echo "== summary"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
