#!/usr/bin/env bash
# Firmware tests for clifhe on a Cortex-M4F under QEMU (mps2-an386), and device measurements.
#
#   scripts/device-tests.sh            build the firmware (release), run every on-target test
#                                      image and the end-to-end round trip; last line "N passed, M failed"
#   scripts/device-tests.sh --measure  run the benchmark image with the qemu-insncount plugin and
#                                      print exact instruction counts per window, RAM and flash
#
# Installs what is missing: the thumbv7em-none-eabihf target (rustup), qemu-system-arm (apt-get,
# when root), defmt-print (cargo install), and builds the TCG plugin from shared/tools.
# Every QEMU run is bounded by `timeout`: a hung firmware fails instead of hanging CI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV="$ROOT/device-examples"
TARGET=thumbv7em-none-eabihf
ELF_DIR="$DEV/target/$TARGET/release"
OUT="$DEV/target/device-out"
PLUGIN="$DEV/target/libinsncount.so"
PLUGIN_SRC="$ROOT/../shared/tools/qemu-insncount/insncount.c"
QEMU_TIMEOUT="${DEVICE_QEMU_TIMEOUT:-300}"
MODE="${1:-test}"

log() { printf '[device] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- tools
ensure_tools() {
  if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx "$TARGET"; then
      log "installing rust target $TARGET"
      rustup target add "$TARGET"
    fi
  fi
  if ! command -v qemu-system-arm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "installing qemu-system-arm (apt-get)"
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-arm >&2
    else
      log "qemu-system-arm is missing and cannot be installed (not root / no apt-get)"
      exit 1
    fi
  fi
  if ! command -v defmt-print >/dev/null 2>&1; then
    log "installing defmt-print (cargo install --locked)"
    cargo install defmt-print --locked >&2 || log "defmt-print unavailable: logs stay undecoded"
  fi
  if command -v llvm-nm >/dev/null 2>&1; then NM=llvm-nm
  elif command -v arm-none-eabi-nm >/dev/null 2>&1; then NM=arm-none-eabi-nm
  else NM=nm; fi
  if [ -f "$PLUGIN_SRC" ] && { [ ! -f "$PLUGIN" ] || [ "$PLUGIN_SRC" -nt "$PLUGIN" ]; }; then
    mkdir -p "$(dirname "$PLUGIN")"
    gcc -shared -fPIC -O2 -o "$PLUGIN" "$PLUGIN_SRC"
  fi
}

# ---------------------------------------------------------------- build
build_firmware() {
  mkdir -p "$OUT"
  # Host side first: test keys, flash images and known answers the firmware compiles in.
  # Explicit host --target: device-examples/.cargo/config.toml selects the firmware target.
  local host_triple
  host_triple="$(rustc -vV | sed -n 's/^host: //p')"
  log "building host-tool ($host_triple) and generating target/gen"
  (cd "$DEV/host-tool" && cargo build --release --quiet --target "$host_triple") || return 1
  HOSTTOOL="$DEV/host-tool/target/$host_triple/release/clifhe-device-host"
  "$HOSTTOOL" gen "$DEV/target/gen" >&2 || return 1
  log "building firmware (release, $TARGET)"
  # cd: the target and runner come from device-examples/.cargo/config.toml.
  (cd "$DEV" && cargo build --release --bins --quiet)
}

# qemu_run ELF LOGFILE [extra qemu args...]: runs one image; stdout (semihosting console, where
# the defmt frames go) into LOGFILE, QEMU's stderr to LOGFILE.stderr; returns QEMU's status.
qemu_run() {
  local elf="$1" logf="$2"; shift 2
  local rc=0
  # cwd = device-examples: the firmware's semihosting file paths are relative to it.
  (cd "$DEV" && timeout --kill-after=10 "$QEMU_TIMEOUT" qemu-system-arm \
      -machine mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial none \
      -semihosting-config enable=on,target=native "$@" -kernel "$elf") \
      >"$logf" 2>"$logf.stderr" || rc=$?
  return "$rc"
}

decode() {
  local elf="$1" logf="$2"
  if command -v defmt-print >/dev/null 2>&1; then
    defmt-print -e "$elf" <"$logf" 2>&1 || true
  else
    log "(raw defmt log in $logf)"
  fi
}

# ---------------------------------------------------------------- tests
PASSED=0
FAILED=0
record() { # record NAME RC
  if [ "$2" = 0 ]; then PASSED=$((PASSED + 1)); echo "PASS $1"
  else FAILED=$((FAILED + 1)); echo "FAIL $1 (exit $2)"; fi
}

run_tests() {
  local found=0 src name elf rc
  for src in "$DEV"/src/bin/test_*.rs; do
    [ -e "$src" ] || continue
    found=1
    name="$(basename "$src" .rs)"
    elf="$ELF_DIR/$name"
    rc=0
    qemu_run "$elf" "$OUT/$name.defmt" || rc=$?
    decode "$elf" "$OUT/$name.defmt" | sed "s/^/  [$name] /"
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then log "$name: timed out after ${QEMU_TIMEOUT}s"; fi
    if [ -s "$OUT/$name.defmt.stderr" ]; then sed "s/^/  [$name stderr] /" "$OUT/$name.defmt.stderr"; fi
    record "firmware $name" "$rc"
  done
  if [ "$found" = 0 ]; then log "no firmware test images found"; FAILED=$((FAILED + 1)); fi
  # Byte-wise evidence next to the on-target digests: the streamed files equal the host's.
  local kat
  for kat in ct_pk_kat ct_sk_kat; do
    rc=0
    cmp "$OUT/$kat.clhe" "$DEV/target/gen/device-n12/$kat.clhe" || rc=$?
    record "host cmp $kat.clhe (device stream == host one-shot)" "$rc"
  done
  # End to end: the example firmware encrypts the scan features; the host decrypts its files.
  if [ -f "$ELF_DIR/encrypt_scan" ]; then
    rc=0
    rm -f "$OUT"/scan_*.clhe "$OUT"/scan_features.f64
    qemu_run "$ELF_DIR/encrypt_scan" "$OUT/encrypt_scan.defmt" || rc=$?
    decode "$ELF_DIR/encrypt_scan" "$OUT/encrypt_scan.defmt" | sed "s/^/  [encrypt_scan] /"
    record "firmware encrypt_scan" "$rc"
    for mode in pk sk; do
      rc=0
      "$HOSTTOOL" decrypt device-n12 "$DEV/target/gen/device-n12/sk.clhe" \
        "$OUT/scan_$mode.clhe" "$OUT/scan_features.f64" | sed "s/^/  [decrypt $mode] /" || rc=$?
      record "end-to-end $mode: firmware encrypts -> host decrypts -> features match" "$rc"
    done
    # The same files through the product's CLI: a host-eval key set made of the firmware's test
    # keys (secret.key and public.key are the same wire objects), then `host-eval decrypt`.
    rc=0
    hostevalkeys_and_decrypt || rc=$?
    record "end-to-end: firmware ciphertexts -> host-eval decrypt -> features match" "$rc"
  fi
}

# Builds a host-eval key directory from the firmware's test keys and decrypts both firmware
# ciphertexts with `host-eval decrypt --json`, comparing with the features the firmware reported.
hostevalkeys_and_decrypt() {
  local gen="$DEV/target/gen/device-n12" keys="$OUT/hosteval-keys" he
  (cd "$ROOT" && cargo build --quiet -p host-eval) || return 1
  he="$ROOT/target/debug/host-eval"
  rm -rf "$keys" && mkdir -p "$keys"
  cp "$gen/sk.clhe" "$keys/secret.key" && cp "$gen/pk.clhe" "$keys/public.key" || return 1
  local fp size now
  fp=$(sha256sum "$keys/public.key" | cut -d' ' -f1)
  size=$(stat -c %s "$keys/public.key")
  now=$(date -u +%s)
  cat > "$keys/keyset.json" <<JSON
{"format": "clifhe-keyset/1", "preset": "device-n12", "preset_id": 4, "n": 4096, "log2_qp": 100.0,
 "created": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "created_unix": $now, "fingerprint_sha256": "$fp",
 "public_key": "public.key", "public_key_bytes": $size, "secret_key": "secret.key"}
JSON
  for mode in pk sk; do
    "$he" decrypt --keys "$keys" --input "$OUT/scan_$mode.clhe" --json > "$OUT/hosteval_$mode.json" || return 1
    python3 - "$OUT/hosteval_$mode.json" "$OUT/scan_features.f64" <<'PY' || return 1
import json, struct, sys
rows = json.load(open(sys.argv[1]))["patients"]
want = struct.unpack("<8d", open(sys.argv[2], "rb").read()[:64])
names = ["scalar", "e1", "e2", "e3", "e12", "e13", "e23", "e123"]
got = [rows[0][k] for k in names]
err = max(abs(a - b) for a, b in zip(got, want))
print(f"  [host-eval decrypt] patient 0, max |error| = {err:.3e}")
sys.exit(0 if err < 1e-6 else 1)
PY
  done
}

# ---------------------------------------------------------------- measure
symbol_addr() { # symbol_addr ELF DEMANGLED-SUFFIX
  "$NM" -C "$1" | awk -v s="$2" '!f && $0 ~ s"(::h[0-9a-f]+)?$" {f = "0x"$1} END {print f}'
}

measure() {
  local elf="$ELF_DIR/bench" start stop rc=0
  start="$(symbol_addr "$elf" 'clifhe_device::bench::bench_start')"
  stop="$(symbol_addr "$elf" 'clifhe_device::bench::bench_stop')"
  if [ -z "$start" ] || [ -z "$stop" ] || [ "$start" = "$stop" ]; then
    log "bench markers not found (start=$start stop=$stop)"; exit 1
  fi
  qemu_run "$elf" "$OUT/bench.defmt" -plugin "$PLUGIN,start=$start,stop=$stop" || rc=$?
  decode "$elf" "$OUT/bench.defmt" >"$OUT/bench.log"
  cat "$OUT/bench.log"
  if [ "$rc" != 0 ]; then log "benchmark firmware failed (exit $rc)"; cat "$OUT/bench.defmt.stderr" >&2; exit 1; fi
  echo
  echo "== instruction counts (qemu-insncount, exact guest instructions; markers start=$start stop=$stop)"
  # Pair the n-th logged window name with the plugin's n-th region.
  paste <(sed -n 's/.*bench window \(.*\)$/\1/p' "$OUT/bench.log") \
        <(sed -n 's/^insncount: region [0-9]* (start..stop) = \([0-9]*\) instructions$/\1/p' "$OUT/bench.defmt.stderr") \
    | awk -F'\t' '{printf "  %-44s %14s\n", $1, $2}'
  grep '^insncount: total' "$OUT/bench.defmt.stderr" | sed 's/^/  /'
  echo
  echo "== sizes (ELF sections; flash = text + rodata + data image, static RAM = data + bss + uninit)"
  local f
  for f in "$ELF_DIR"/bench "$ELF_DIR"/encrypt_scan; do
    [ -f "$f" ] || continue
    if command -v llvm-size >/dev/null 2>&1; then
      llvm-size -A "$f" | awk -v n="$(basename "$f")" '
        $1==".vector_table"||$1==".text"||$1==".rodata"||$1==".data"||$1==".defmt" {fl+=$2}
        $1==".data"||$1==".bss"||$1==".uninit" {ram+=$2}
        END {printf "  %-14s flash %8d bytes   static RAM %8d bytes\n", n, fl, ram}'
    fi
  done
}

ensure_tools
case "$MODE" in
  --measure) build_firmware; measure ;;
  test|--test)
    if ! build_firmware; then
      echo "FAIL firmware build"
      echo "0 passed, 1 failed"
      exit 1
    fi
    run_tests
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ]
    ;;
  *) echo "usage: $0 [--measure]" >&2; exit 2 ;;
esac
