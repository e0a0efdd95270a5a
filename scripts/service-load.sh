#!/usr/bin/env bash
# Bounded load measurement of the inference service on loopback (issue 11, section 5):
#   - throughput (patients/s) of full box-encoded batches (N/2 = 16384 patients on private-n15)
#     pushed through `submit` -> queue -> evaluation -> `fetch`, with 1 and 2 workers
#     (embedded `serve --workers 1`, and `serve --nats` + 1 or 2 `worker` processes);
#   - p50/p99 end-to-end latency (submit to fetched scores) of single-patient jobs;
#   - `host-eval demo --json` in the same run: the in-process figure to compare against.
# Usage: scripts/service-load.sh [FULL_BATCHES (default 4)] [SINGLE_JOBS (default 10)]
# Needs a release build (built here) and nats-server (apt-get install nats-server).
# Every wait is bounded by `timeout`; every process started here is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
FULL=${1:-4}
SINGLE=${2:-10}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --quiet -p host-eval
BIN="$CARGO_TARGET_DIR/release/host-eval"
NATS_BIN=$(command -v nats-server || echo /usr/sbin/nats-server)
W=$(mktemp -d /tmp/clifhe-load.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
now() { date +%s.%N; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { timeout 60 bash -c "until curl -sf http://127.0.0.1:$1/healthz >/dev/null; do sleep 0.1; done"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$BIN" train --per-class 400 --out "$W/model.json" >/dev/null
"$BIN" keygen --preset private-n15 --out "$W/keys" >/dev/null
"$BIN" evalkeys --keys "$W/keys" --relin-only >/dev/null
"$BIN" tenant add load --tenants "$W/tenants.json" >"$W/token"

# Features inside the model's box, from the profile (fetched once from an embedded server).
prepare() {
  local url=$1
  "$BIN" fetch-profile --server "$url" --token-file "$W/token" --keys "$W/keys" --out "$W/profile.json" >/dev/null
  python3 - "$W" <<'PY'
import json, random, sys
w = sys.argv[1]
p = json.load(open(f"{w}/profile.json"))
c, h = p["input_box"]["center"], p["input_box"]["half_width"]
rnd = random.Random(1)
feats = [[ci + hi * (2 * rnd.random() - 1) * 0.9 for ci, hi in zip(c, h)] for _ in range(p["capacity"])]
json.dump(feats, open(f"{w}/full.json", "w"))
json.dump(feats[:1], open(f"{w}/one.json", "w"))
PY
  "$BIN" encrypt --keys "$W/keys" --profile "$W/profile.json" --input "$W/full.json" --out "$W/full.clhe" >/dev/null
  "$BIN" encrypt --keys "$W/keys" --profile "$W/profile.json" --input "$W/one.json" --out "$W/one.clhe" >/dev/null
}

# measure LABEL URL: FULL full batches submitted at once, then SINGLE single-patient jobs in turn.
measure() {
  local label=$1 url=$2 t0 t1 ids=() lat=() last=
  local cap; cap=$(python3 -c "import json; print(json.load(open('$W/profile.json'))['capacity'])")
  t0=$(now)
  for i in $(seq "$FULL"); do ids+=("$(timeout 120 "$BIN" submit --server "$url" --token-file "$W/token" --keys "$W/keys" --batch "$W/full.clhe")"); done
  for id in "${ids[@]}"; do timeout 600 "$BIN" fetch --server "$url" --token-file "$W/token" --job "$id" --out "$W/s-$id" --no-progress >/dev/null; done
  t1=$(now)
  for i in $(seq "$SINGLE"); do
    local a b id; a=$(now)
    id=$(timeout 60 "$BIN" submit --server "$url" --token-file "$W/token" --keys "$W/keys" --batch "$W/one.clhe")
    timeout 120 "$BIN" fetch --server "$url" --token-file "$W/token" --job "$id" --out "$W/s-$id" --no-progress >/dev/null
    b=$(now); lat+=("$(python3 -c "print(($b - $a) * 1000)")")
    last=$id
  done
  # The hospital's release of the last single-patient job (a full batch of N/2 patients costs
  # more bits than one key set's leakage budget holds: see docs/leakage.md).
  "$BIN" release --keys "$W/keys" --scores "$W/s-$last" --record "$W/one.clhe.record.json" --json >/dev/null
  python3 - "$label" "$FULL" "$cap" "$t0" "$t1" "${lat[@]}" <<'PY'
import sys
label, full, cap, t0, t1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
lat = sorted(float(x) for x in sys.argv[6:])
pct = lambda q: lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))]
print(f"| {label} | {full} x {cap} | {full * cap / (t1 - t0):.0f} | {t1 - t0:.1f} | {pct(0.5):.0f} | {pct(0.99):.0f} | {len(lat)} |")
PY
}

echo "| setup | full batches | patients/s | wall s | single-patient p50 ms | p99 ms | single jobs |"
echo "|---|---|---|---|---|---|---|"
P=$(free_port)
"$BIN" serve --model "$W/model.json" --tenants "$W/tenants.json" --store "$W/store" --listen 127.0.0.1:$P --workers 1 2>"$W/serve.log" &
PIDS+=($!); wait_http "$P"
prepare "http://127.0.0.1:$P"
measure "embedded, 1 worker" "http://127.0.0.1:$P"
kill -TERM "${PIDS[-1]}"; timeout 60 tail --pid="${PIDS[-1]}" -f /dev/null

NP=$(free_port)
"$NATS_BIN" -js -sd "$W/nats" -a 127.0.0.1 -p "$NP" 2>"$W/nats.log" &
PIDS+=($!)
timeout 20 bash -c "until (exec 3<>/dev/tcp/127.0.0.1/$NP) 2>/dev/null; do sleep 0.1; done"
P=$(free_port)
"$BIN" serve --model "$W/model.json" --tenants "$W/tenants.json" --nats "nats://127.0.0.1:$NP" --listen 127.0.0.1:$P 2>"$W/api.log" &
PIDS+=($!); wait_http "$P"
"$BIN" worker --nats "nats://127.0.0.1:$NP" --model "$W/model.json" --cache "$W/c1" 2>"$W/w1.log" &
PIDS+=($!)
measure "NATS, 1 worker" "http://127.0.0.1:$P"
"$BIN" worker --nats "nats://127.0.0.1:$NP" --model "$W/model.json" --cache "$W/c2" 2>"$W/w2.log" &
PIDS+=($!)
measure "NATS, 2 workers" "http://127.0.0.1:$P"

echo
echo "in-process (host-eval demo --json, same run):"
timeout 600 "$BIN" demo --json --single-patient-latency >"$W/demo.json"
python3 - "$W/demo.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"| demo in-process | {r['patients_evaluated']} patients | {r['patients_per_second']:.0f} | | {r['single_patient_latency_ms']:.0f} | | 1 |")
PY
