#!/usr/bin/env bash
# Firmware tests for clifhe on a Cortex-M4F under QEMU (mps2-an386), and device measurements.
#
#   scripts/device-tests.sh            build the firmware (release), run every on-target test
#                                      image, the end-to-end round trip, the N=2^14 firmware ->
#                                      `host-eval infer` test and the enrolled N=2^15 device ->
#                                      circuit-private `infer` -> `release` test; last line
#                                      "N passed, M failed"
#   scripts/device-tests.sh --measure  run the benchmark images (N=4096 `bench`, N=2^14
#                                      `encrypt_scan_n14`, N=2^15 `encrypt_scan_n15`) with the
#                                      qemu-insncount plugin and print exact instruction counts per
#                                      window, RAM and flash
#
# Installs what is missing: the thumbv7em-none-eabihf target (rustup), qemu-system-arm (apt-get,
# when root), defmt-print (cargo install), and builds the TCG plugin from shared/tools.
# Every QEMU run is bounded by `timeout`: a hung firmware fails instead of hanging CI.
set -euo pipefail
# Every path below is a default cargo target directory (firmware, host-tool, host-eval).
unset CARGO_TARGET_DIR

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
  # An objdump that knows Thumb-2, for the constant-time disassembly test (ct-check).
  if [ -z "${OBJDUMP:-}" ]; then
    OBJDUMP="$(command -v llvm-objdump || command -v arm-none-eabi-objdump || ls /usr/lib/llvm-*/bin/llvm-objdump 2>/dev/null | tail -1 || true)"
    if [ -z "$OBJDUMP" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "installing llvm (apt-get) for llvm-objdump"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq llvm >&2 || true
      OBJDUMP="$(command -v llvm-objdump || ls /usr/lib/llvm-*/bin/llvm-objdump 2>/dev/null | tail -1 || true)"
    fi
    export OBJDUMP
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
  # Feature qemu: the emulator's entropy stand-in (src/entropy.rs; a build without an entropy
  # source fails on purpose). The part's driver is compiled too, so it cannot rot unbuilt.
  # encrypt_scan is provisioned like a real device: a fresh hospital key set (host-eval keygen)
  # and its device bundle (host-eval device-bundle: public material only), embedded at build time.
  build_hosteval || return 1
  rm -rf "$OUT/hospital-keys" "$OUT/device-bundle"
  "$HE" keygen --preset device-n12 --out "$OUT/hospital-keys" >&2 || return 1
  "$HE" device-bundle --keys "$OUT/hospital-keys/public.bundle" --out "$OUT/device-bundle" >&2 || return 1
  export CLIFHE_DEVICE_BUNDLE="$OUT/device-bundle"
  (cd "$DEV" && cargo build --release --features qemu --bins --quiet) || return 1
  log "checking that the STM32H7 RNG driver builds (feature stm32h7; QEMU cannot run it)"
  (cd "$DEV" && cargo build --release --features stm32h7 --lib --quiet) || return 1
  log "checking that a build for the part without a provisioned bundle is refused"
  if (cd "$DEV" && env -u CLIFHE_DEVICE_BUNDLE cargo build --release --features stm32h7 --lib --quiet >/dev/null 2>&1); then
    log "a stm32h7 build without CLIFHE_DEVICE_BUNDLE compiled (it would embed the test keys)"; return 1
  fi
  log "checking that a build without an entropy source is refused (compile_error!)"
  if (cd "$DEV" && cargo build --release --lib --quiet >/dev/null 2>&1); then
    log "a firmware build without an entropy source compiled"; return 1
  fi
  # The N=2^14 image: feature qemu-n14, linked with the emulator-only 4 MiB-flash layout
  # (memory-qemu-n14.x); every image above keeps the 2 MiB / 512 KiB budget layout.
  log "building encrypt_scan_n14 (LEVELED_N14, emulator-only flash layout)"
  (cd "$DEV" && cargo build --release --features qemu,qemu-n14 --bin encrypt_scan_n14 --quiet)
}

# The host's command line, release build (N=2^14 evaluation is too slow unoptimised).
build_hosteval() {
  if [ -z "${HE:-}" ]; then
    log "building host-eval (release)"
    (cd "$ROOT" && cargo build --release --quiet -p host-eval) || return 1
    HE="$ROOT/target/release/host-eval"
  fi
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
    rm -f "$OUT"/scan_*.clhe "$OUT"/scan_features.q32
    # Fresh entropy for the emulator's stand-in TRNG, per run (src/entropy/qemu.rs).
    head -c 4096 /dev/urandom >"$OUT/entropy.bin"
    qemu_run "$ELF_DIR/encrypt_scan" "$OUT/encrypt_scan.defmt" || rc=$?
    decode "$ELF_DIR/encrypt_scan" "$OUT/encrypt_scan.defmt" | sed "s/^/  [encrypt_scan] /"
    record "firmware encrypt_scan" "$rc"
    # The same scan twice: a second boot must encrypt with other u, e0, e1 (other entropy), so
    # the ciphertexts differ; both are decrypted below (the first one is kept aside).
    rc=0
    mkdir -p "$OUT/first"
    cp "$OUT"/scan_pk.clhe "$OUT/first/" 2>/dev/null || rc=1
    head -c 4096 /dev/urandom >"$OUT/entropy.bin"
    qemu_run "$ELF_DIR/encrypt_scan" "$OUT/encrypt_scan_2.defmt" || rc=$?
    if cmp -s "$OUT/first/scan_pk.clhe" "$OUT/scan_pk.clhe"; then
      log "two boots gave the same ciphertext"; rc=1
    fi
    record "firmware encrypt_scan twice: fresh entropy per boot, the ciphertexts differ" "$rc"
    # Without its entropy the firmware refuses to encrypt (no fixed-seed fallback).
    rc=0
    rm -f "$OUT/entropy.bin" "$OUT"/scan_*.clhe
    if qemu_run "$ELF_DIR/encrypt_scan" "$OUT/encrypt_scan_noentropy.defmt"; then
      log "encrypt_scan succeeded without an entropy source"; rc=1
    fi
    [ ! -e "$OUT/scan_pk.clhe" ] || { log "a ciphertext was written without entropy"; rc=1; }
    record "firmware encrypt_scan without entropy: refuses, writes nothing" "$rc"
    cp "$OUT/first/scan_pk.clhe" "$OUT/"
    # The hospital decrypts its device's ciphertext with the key set it provisioned it from.
    rc=0
    hosteval_decrypt_provisioned || rc=$?
    record "end-to-end: device provisioned from a fresh keygen -> host-eval decrypt -> features match" "$rc"
  fi
  # Constant time: the release image's per-patient path (voxels -> fixed-point features ->
  # integer encoding -> public-key encryption) reaches no soft-float or division routine and no
  # divide or FP arithmetic instruction (host-tool ct-check). The control: the float decoder in
  # the test image must be flagged, or the check proves nothing.
  rc=0
  if [ -z "${OBJDUMP:-}" ]; then
    log "no llvm-objdump / arm-none-eabi-objdump: cannot inspect the disassembly"; rc=1
  else
    "$HOSTTOOL" ct-check "$ELF_DIR/encrypt_scan" 'clifhe_device::device::encrypt_volume_pk' | sed 's/^/  [ct-check] /' || rc=1
  fi
  record "constant time: encrypt_scan's encrypt_volume_pk reaches no soft-float, division or FP instruction" "$rc"
  # The equivariant model's channels (intensity shells, principal axes: core's fixed_channels)
  # as the bench image computes them from the CT-like phantom.
  rc=0
  if [ -z "${OBJDUMP:-}" ]; then
    log "no llvm-objdump / arm-none-eabi-objdump: cannot inspect the disassembly"; rc=1
  else
    "$HOSTTOOL" ct-check "$ELF_DIR/bench" 'clifhe_device::device::channels_volume_fixed' | sed 's/^/  [ct-check channels] /' || rc=1
  fi
  record "constant time: bench's channels_volume_fixed (shells + principal axes) reaches no soft-float, division or FP instruction" "$rc"
  rc=0
  if [ -z "${OBJDUMP:-}" ]; then
    log "no llvm-objdump / arm-none-eabi-objdump: cannot inspect the disassembly"; rc=1
  else
    "$HOSTTOOL" ct-check "$ELF_DIR/bench" 'clifhe_device::device::depth_channel_volume_fixed' | sed 's/^/  [ct-check depth] /' || rc=1
  fi
  record "constant time: bench's depth_channel_volume_fixed (interior depth) reaches no soft-float, division or FP instruction" "$rc"
  rc=0
  if [ -n "${OBJDUMP:-}" ] && "$HOSTTOOL" ct-check "$ELF_DIR/test_encrypt" 'test_encrypt::encoding' >"$OUT/ct_check_control.txt" 2>&1; then
    log "ct-check passed the float decoder: the check cannot see soft float"; rc=1
  elif ! grep -q '__aeabi_d\|FORBIDDEN' "$OUT/ct_check_control.txt"; then
    log "ct-check control failed for another reason:"; cat "$OUT/ct_check_control.txt" >&2; rc=1
  else
    sed -n '1,3p' "$OUT/ct_check_control.txt" | sed 's/^/  [ct-check control] /'
  fi
  record "constant time control: ct-check flags the float decoder (soft-float calls)" "$rc"
  # N=2^14: the firmware encrypts two patients at the host's own preset (LEVELED_N14); the host
  # decrypts each, then the vendor's `host-eval infer` merges and evaluates them and the result
  # must match the plaintext model on the features the firmware reported.
  rc=0
  rm -rf "$OUT/n14" && mkdir -p "$OUT/n14"
  if [ -f "$ELF_DIR/encrypt_scan_n14" ]; then
    head -c 4096 /dev/urandom >"$OUT/entropy.bin"
    qemu_run "$ELF_DIR/encrypt_scan_n14" "$OUT/encrypt_scan_n14.defmt" || rc=$?
    decode "$ELF_DIR/encrypt_scan_n14" "$OUT/encrypt_scan_n14.defmt" | grep -v 'bench window' | sed "s/^/  [encrypt_scan_n14] /"
  else
    log "encrypt_scan_n14 was not built"; rc=1
  fi
  record "firmware encrypt_scan_n14 (N=2^14, emulator-only flash layout)" "$rc"
  rc=0
  for i in 0 1; do
    "$HOSTTOOL" decrypt leveled-n14 "$DEV/target/gen/leveled-n14/sk.clhe" "$OUT/n14/patient$i.clhe" \
      "$OUT/n14/patient$i.q32" | sed -n "s/^/  [decrypt n14 patient $i] /;/slot 8\|max |error|/p" || rc=$?
  done
  record "end-to-end N=2^14: firmware encrypts -> host decrypts -> features match, other slots zero" "$rc"
  rc=0
  n14_infer || rc=$?
  record "end-to-end N=2^14: firmware ciphertexts -> host-eval infer -> decrypt/release == plaintext model" "$rc"
  # N=2^15, the vendor's circuit-private preset, on the budget part: the hospital enrols the
  # device (its own secret key, the vendor's switching key), the firmware encrypts two patients
  # under the device key, the vendor evaluates them flooded and the hospital releases.
  local enrolled=0 built=0
  n15_enroll || enrolled=$?
  record "N=2^15 enrolment: keygen private-n15, evalkeys --merge-patients 2, train, profile, device-enroll" "$enrolled"
  if [ "$enrolled" = 0 ]; then n15_build || built=$?; else built=1; fi
  record "firmware encrypt_scan_n15 builds from the enrolment (budget layout), refused without one" "$built"
  rc=0
  rm -rf "$OUT/n15" && mkdir -p "$OUT/n15"
  N15_QEMU_S=""
  if [ "$built" = 0 ]; then
    head -c 4096 /dev/urandom >"$OUT/entropy.bin"
    local t0 t1
    t0=$(date +%s.%N)
    qemu_run "$ELF_DIR/encrypt_scan_n15" "$OUT/encrypt_scan_n15.defmt" || rc=$?
    t1=$(date +%s.%N)
    N15_QEMU_S=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
    decode "$ELF_DIR/encrypt_scan_n15" "$OUT/encrypt_scan_n15.defmt" | grep -v 'bench window' | sed "s/^/  [encrypt_scan_n15] /"
    log "encrypt_scan_n15 under QEMU: ${N15_QEMU_S} s"
  else
    rc=1
  fi
  record "firmware encrypt_scan_n15 (enrolled device, N=2^15, 2 MiB / 512 KiB budget layout)" "$rc"
  rc=0
  if [ "$built" != 0 ] || [ -z "${OBJDUMP:-}" ]; then
    log "ct-check of encrypt_scan_n15: no image or no objdump"; rc=1
  else
    "$HOSTTOOL" ct-check "$ELF_DIR/encrypt_scan_n15" 'clifhe_device::device::encrypt_volume_enrolled' | sed 's/^/  [ct-check n15] /' || rc=1
  fi
  record "constant time: encrypt_scan_n15's encrypt_volume_enrolled reaches no soft-float, division or FP instruction" "$rc"
  rc=0
  if [ "$built" = 0 ]; then n15_infer || rc=$?; else rc=1; fi
  record "end-to-end N=2^15: enrolled firmware -> host-eval infer --device-key (flooded) -> device-record -> release == plaintext model" "$rc"
}

# make_keyset PRESET ID N LOG2QP DIR: a host-eval key directory from the firmware's test keys
# of PRESET (host-tool gen wrote them; secret.key and public.key are the same wire objects).
make_keyset() {
  local preset="$1" id="$2" n="$3" log2qp="$4" keys="$5" gen="$DEV/target/gen/$1"
  rm -rf "$keys" && mkdir -p "$keys"
  cp "$gen/sk.clhe" "$keys/secret.key" && cp "$gen/pk.clhe" "$keys/public.key" || return 1
  chmod 600 "$keys/secret.key"
  local fp size now
  fp=$(sha256sum "$keys/public.key" | cut -d' ' -f1)
  size=$(stat -c %s "$keys/public.key")
  now=$(date -u +%s)
  cat > "$keys/keyset.json" <<JSON
{"format": "clifhe-keyset/1", "preset": "$preset", "preset_id": $id, "n": $n, "log2_qp": $log2qp,
 "created": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "created_unix": $now, "fingerprint_sha256": "$fp",
 "public_key": "public.key", "public_key_bytes": $size, "secret_key": "secret.key"}
JSON
}

# Decrypts the provisioned firmware's ciphertext with `host-eval decrypt --from-device --json`
# under the fresh key set it was provisioned from, comparing with the features it reported.
hosteval_decrypt_provisioned() {
  "$HE" decrypt --keys "$OUT/hospital-keys" --input "$OUT/scan_pk.clhe" --from-device --json > "$OUT/hosteval_pk.json" || return 1
  python3 - "$OUT/hosteval_pk.json" "$OUT/scan_features.q32" <<'PY' || return 1
import json, struct, sys
rows = json.load(open(sys.argv[1]))["patients"]
want = [v / 2**32 for v in struct.unpack("<8q", open(sys.argv[2], "rb").read()[:64])]
names = ["scalar", "e1", "e2", "e3", "e12", "e13", "e23", "e123"]
got = [rows[0][k] for k in names]
err = max(abs(a - b) for a, b in zip(got, want))
print(f"  [host-eval decrypt] patient 0, max |error| = {err:.3e}")
sys.exit(0 if err < 1e-6 else 1)
PY
}

# The N=2^14 firmware's ciphertexts through the vendor's pipeline. Hospital: a key set of the
# firmware's test keys plus evaluation keys (with the rotation that merges 2 device
# ciphertexts). Vendor: a model trained on the built-in phantoms, `infer --device-ciphertexts`
# (merge from slot 0, blade-major, the GNN; --no-flooding because leveled-n14 cannot absorb
# s = 30 flooding: unused slots masked only) and `predict` on the features the firmware reported
# (the plaintext reference). These results are NOT circuit-private, so the product refuses to
# decrypt or release them; the harness checks them with its own decryption under the published
# test key (`clifhe-device-host scores`). Fails unless every argmax agrees and every score is
# within 1e-2 of the plaintext's, and unless `host-eval decrypt` refuses the vendor's files.
n14_infer() {
  local keys="$OUT/n14-keys" work="$OUT/n14-host"
  build_hosteval || return 1
  make_keyset leveled-n14 1 16384 400.0 "$keys" || return 1
  rm -rf "$work" && mkdir -p "$work"
  "$HE" evalkeys --keys "$keys" --merge-patients 2 | sed 's/^/  [evalkeys] /' || return 1
  "$HE" train --per-class 100 --seed 1 --out "$work/model.json" | sed 's/^/  [train] /' || return 1
  python3 - "$OUT/n14/patient0.q32" "$OUT/n14/patient1.q32" > "$work/features.json" <<'PY' || return 1
import json, struct, sys
print(json.dumps([[v / 2**32 for v in struct.unpack("<8q", open(f, "rb").read())] for f in sys.argv[1:]]))
PY
  "$HE" predict --model "$work/model.json" --input "$work/features.json" --json > "$work/plain.json" || return 1
  local t0 t1
  t0=$(date +%s.%N)
  "$HE" infer --model "$work/model.json" --keys "$keys" --device-ciphertexts "$OUT/n14" \
    --out "$work/scores" --no-flooding | sed 's/^/  [infer] /' || return 1
  t1=$(date +%s.%N)
  local c
  for c in 0 1 2; do
    "$HOSTTOOL" scores leveled-n14 "$DEV/target/gen/leveled-n14/sk.clhe" "$work/scores/class-$c.ct" 2 8 > "$work/class-$c.json" || return 1
  done
  if "$HE" decrypt --keys "$keys" --input "$work/scores/class-0.ct" >/dev/null 2>&1; then
    log "host-eval decrypt opened a vendor score file"
    return 1
  fi
  python3 - "$work" "$t0" "$t1" <<'PY'
import json, sys
work = sys.argv[1]
plain = json.load(open(f"{work}/plain.json"))
labels = plain["labels"]
cls = [json.load(open(f"{work}/class-{c}.json")) for c in range(len(labels))]
ok, worst = True, 0.0
for p, row in enumerate(plain["patients"]):
    enc = [cls[c][p] for c in range(len(labels))]
    err = max(abs(a - b) for a, b in zip(enc, row["scores"]))
    worst = max(worst, err)
    arg = max(range(len(enc)), key=lambda c: enc[c])
    good = arg == row["class"] and err < 1e-2
    ok &= good
    print(f"  [n14 infer] patient {p}: plaintext {labels[row['class']]} {['%.6f' % v for v in row['scores']]}, "
          f"encrypted argmax {labels[arg]}, max |score error| {err:.2e} {'ok' if good else 'MISMATCH'}")
print(f"  [n14 infer] 2 device ciphertexts merged and evaluated in {float(sys.argv[3]) - float(sys.argv[2]):.2f} s; "
      f"max |score error| {worst:.2e}; largest plaintext intermediate {plain['max_abs_intermediate']:.2f}")
sys.exit(0 if ok else 1)
PY
}

# The enrolled N=2^15 device (encrypt_scan_n15). Hospital: a fresh private-n15 key set and its
# evaluation keys (with the rotations 1..7 a device batch needs); vendor: a model trained on the
# built-in phantoms (as the N=2^14 step) and its circuit-private input profile; hospital: the
# device's enrolment (its secret key seed and input image for the firmware build, the switching
# key for the vendor).
N15_WORK="$OUT/n15-host"
n15_enroll() {
  local keys="$N15_WORK/keys"
  build_hosteval || return 1
  rm -rf "$N15_WORK" && mkdir -p "$N15_WORK"
  "$HE" keygen --preset private-n15 --out "$keys" | sed 's/^/  [n15 keygen] /' || return 1
  "$HE" evalkeys --keys "$keys" --merge-patients 2 | sed 's/^/  [n15 evalkeys] /' || return 1
  "$HE" train --per-class 100 --seed 1 --out "$N15_WORK/model.json" | sed 's/^/  [n15 train] /' || return 1
  "$HE" profile --model "$N15_WORK/model.json" --keys "$keys" --out "$N15_WORK/profile.json" | sed 's/^/  [n15 profile] /' || return 1
  "$HE" device-enroll --keys "$keys" --profile "$N15_WORK/profile.json" --out "$N15_WORK/enrollment" \
    --switch-key "$N15_WORK/device.swk" | sed 's/^/  [n15 device-enroll] /' || return 1
}

# Builds encrypt_scan_n15 from the enrolment (default budget layout); a build without
# CLIFHE_DEVICE_ENROLLMENT must be refused (no test key fallback).
n15_build() {
  log "checking that encrypt_scan_n15 without an enrolment is refused"
  if (cd "$DEV" && env -u CLIFHE_DEVICE_ENROLLMENT cargo build --release --features qemu,enrolled-n15 --bin encrypt_scan_n15 --quiet >/dev/null 2>&1); then
    log "encrypt_scan_n15 compiled without CLIFHE_DEVICE_ENROLLMENT"; return 1
  fi
  log "building encrypt_scan_n15 (PRIVATE_N15, enrolled device, budget layout)"
  (cd "$DEV" && CLIFHE_DEVICE_ENROLLMENT="$N15_WORK/enrollment" cargo build --release --features qemu,enrolled-n15 --bin encrypt_scan_n15 --quiet)
}

# The enrolled firmware's ciphertexts through the circuit-private pipeline. Vendor: `infer
# --device-ciphertexts --device-key` (switch to the hospital's key, batch, evaluate, flood);
# hospital: `device-record` of what the device sent, then `release` (flooded decryption,
# argmax). Reference: `predict` on the features the firmware reported. Fails unless every
# released class equals the plaintext argmax.
n15_infer() {
  local keys="$N15_WORK/keys" work="$N15_WORK"
  python3 - "$OUT/n15/patient0.q32" "$OUT/n15/patient1.q32" > "$work/features.json" <<'PY' || return 1
import json, struct, sys
print(json.dumps([[v / 2**32 for v in struct.unpack("<8q", open(f, "rb").read())] for f in sys.argv[1:]]))
PY
  "$HE" predict --model "$work/model.json" --input "$work/features.json" --json > "$work/plain.json" || return 1
  local t0 t1
  rm -rf "$work/scores"
  t0=$(date +%s.%N)
  "$HE" infer --model "$work/model.json" --keys "$keys" --device-ciphertexts "$OUT/n15" \
    --device-key "$work/device.swk" --out "$work/scores" | sed 's/^/  [n15 infer] /' || return 1
  t1=$(date +%s.%N)
  "$HE" device-record --keys "$keys" --profile "$work/profile.json" --device-ciphertexts "$OUT/n15" \
    --out "$work/record.json" | sed 's/^/  [n15 device-record] /' || return 1
  "$HE" release --keys "$keys" --scores "$work/scores" --record "$work/record.json" --json > "$work/released.json" || return 1
  python3 - "$work" "$t0" "$t1" "${N15_QEMU_S:-?}" <<'PY'
import json, sys
work = sys.argv[1]
plain = json.load(open(f"{work}/plain.json"))
labels = plain["labels"]
released = json.load(open(f"{work}/released.json"))
ok = len(released) == len(plain["patients"])
for p, row in enumerate(plain["patients"]):
    got = released[p]["class"] if p < len(released) else None
    good = got == row["class"]
    ok &= good
    print(f"  [n15 release] patient {p}: plaintext {labels[row['class']]} {['%.6f' % v for v in row['scores']]}, "
          f"released {labels[got] if got is not None else None} {'ok' if good else 'MISMATCH'}")
print(f"  [n15 release] timings: QEMU run (2 patients) {sys.argv[4]} s, infer (switch, batch, evaluate, flood) "
      f"{float(sys.argv[3]) - float(sys.argv[2]):.2f} s")
sys.exit(0 if ok else 1)
PY
}

# ---------------------------------------------------------------- measure
symbol_addr() { # symbol_addr ELF DEMANGLED-SUFFIX
  "$NM" -C "$1" | awk -v s="$2" '!f && $0 ~ s"(::h[0-9a-f]+)?$" {f = "0x"$1} END {print f}'
}

# measure_image ELF: runs one image with the plugin and prints its windows' instruction counts.
measure_image() {
  local elf="$1" name start stop rc=0
  name="$(basename "$elf")"
  start="$(symbol_addr "$elf" 'clifhe_device::bench::bench_start')"
  stop="$(symbol_addr "$elf" 'clifhe_device::bench::bench_stop')"
  if [ -z "$start" ] || [ -z "$stop" ] || [ "$start" = "$stop" ]; then
    log "$name: bench markers not found (start=$start stop=$stop)"; exit 1
  fi
  qemu_run "$elf" "$OUT/$name.bench.defmt" -plugin "$PLUGIN,start=$start,stop=$stop" || rc=$?
  decode "$elf" "$OUT/$name.bench.defmt" >"$OUT/$name.bench.log"
  grep -v 'bench window' "$OUT/$name.bench.log" || true
  if [ "$rc" != 0 ]; then log "$name failed (exit $rc)"; cat "$OUT/$name.bench.defmt.stderr" >&2; exit 1; fi
  echo
  echo "== $name: instruction counts (qemu-insncount, exact guest instructions; markers start=$start stop=$stop)"
  # Pair the n-th logged window name with the plugin's n-th region.
  paste <(sed -n 's/.*bench window \(.*\)$/\1/p' "$OUT/$name.bench.log") \
        <(sed -n 's/^insncount: region [0-9]* (start..stop) = \([0-9]*\) instructions$/\1/p' "$OUT/$name.bench.defmt.stderr") \
    | awk -F'\t' '{printf "  %-52s %14s\n", $1, $2}'
  grep '^insncount: total' "$OUT/$name.bench.defmt.stderr" | sed 's/^/  /'
  echo
}

measure() {
  measure_image "$ELF_DIR/bench"
  # N=2^14 (emulator-only flash layout): patient 0 prime by prime, patient 1 as one total.
  rm -rf "$OUT/n14" && mkdir -p "$OUT/n14"
  head -c 4096 /dev/urandom >"$OUT/entropy.bin"
  measure_image "$ELF_DIR/encrypt_scan_n14"
  # N=2^15, enrolled device (budget layout): a fresh enrolment, then per patient the features
  # and the whole path (encrypt_volume_enrolled) as windows.
  n15_enroll || { log "N=2^15 enrolment failed"; exit 1; }
  n15_build || { log "encrypt_scan_n15 build failed"; exit 1; }
  rm -rf "$OUT/n15" && mkdir -p "$OUT/n15"
  head -c 4096 /dev/urandom >"$OUT/entropy.bin"
  measure_image "$ELF_DIR/encrypt_scan_n15"
  echo "== sizes (ELF sections; flash = text + rodata + data image, static RAM = data + bss + uninit)"
  local f
  for f in "$ELF_DIR"/bench "$ELF_DIR"/encrypt_scan "$ELF_DIR"/encrypt_scan_n14 "$ELF_DIR"/encrypt_scan_n15; do
    [ -f "$f" ] || continue
    if command -v llvm-size >/dev/null 2>&1; then
      llvm-size -A "$f" | awk -v n="$(basename "$f")" '
        $1==".vector_table"||$1==".text"||$1==".rodata"||$1==".data"||$1==".defmt" {fl+=$2}
        $1==".data"||$1==".bss"||$1==".uninit" {ram+=$2}
        END {printf "  %-16s flash %8d bytes   static RAM %8d bytes\n", n, fl, ram}'
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
