#!/usr/bin/env bash
# Scan loading speed: clifhe's readers (host_eval::data::load_volume, dicom-rs and nifti-rs
# underneath) against pydicom and nibabel on the same files, in one run on one machine.
#
#   scripts/load-bench.sh [RUNS]        (default 7 runs per file; the median is reported)
#
# Makes a virtual environment under target/load-bench/venv with pydicom 3.0.2 + its decoder
# plugins (pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg, pylibjpeg-rle, pyjpegls) and
# nibabel 5.4.2, writes the test data there (a 256 x 256 x 128 16-bit CT series by pydicom, the
# same volume as RLE and JPEG 2000 lossless multi-frame files, a 256^3 int16 volume as .nii and
# .nii.gz by nibabel) and takes pydicom's bundled compressed test files, then prints a table.
# What each side does per load:
#   clifhe:  load_volume(path): parse, decode, rescale to f32, sort a series, reorient to RAS+;
#   pydicom: dcmread + pixel_array per file, sort a series by position, stack, rescale to f32;
#   nibabel: as_closest_canonical(load(path)).get_fdata(dtype=float32).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
work=target/load-bench
mkdir -p "$work"
venv="$work/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pydicom==3.0.2 nibabel==5.4.2 numpy pylibjpeg pylibjpeg-libjpeg \
    pylibjpeg-openjpeg pylibjpeg-rle pyjpegls
fi
py="$venv/bin/python"

"$py" - "$work" <<'PY'
import os, sys, numpy as np, pydicom, nibabel as nib
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, JPEG2000Lossless, generate_uid
work = sys.argv[1]
data = os.path.join(work, "data")
os.makedirs(data, exist_ok=True)
rng = np.random.default_rng(1)
z, y, x = np.mgrid[0:128, 0:256, 0:256]
vol = (1000 * np.exp(-((x - 128) ** 2 + (y - 128) ** 2) / 4000.0) + 40 * np.sin(z / 9.0)
       + rng.normal(0, 20, size=z.shape)).astype(np.int16)
def ct(frames):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"; ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.Rows, ds.Columns = 256, 256
    ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16; ds.BitsStored = 16; ds.HighBit = 15; ds.PixelRepresentation = 1
    ds.PixelSpacing = [0.8, 0.8]; ds.SliceThickness = 1.5
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.RescaleSlope = 1; ds.RescaleIntercept = -1024
    if frames is not None:
        ds.NumberOfFrames = frames
    return ds
series = os.path.join(data, "ct_series")
if not os.path.isdir(series):
    os.makedirs(series)
    for k in range(128):
        ds = ct(None)
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-100, -100, 1.5 * k]
        ds.PixelData = vol[k].tobytes()
        ds.save_as(os.path.join(series, f"slice{(k * 37) % 128:03d}.dcm"), enforce_file_format=True)
for name, uid, n in [("ct_rle.dcm", RLELossless, 128), ("ct_j2k.dcm", JPEG2000Lossless, 32)]:
    out = os.path.join(data, name)
    if not os.path.exists(out):
        ds = ct(n)
        ds.PixelData = vol[:n].tobytes()
        ds.compress(uid, vol[:n], encoding_plugin="pylibjpeg" if uid == JPEG2000Lossless else "")
        ds.save_as(out, enforce_file_format=True)
# 256^3 int16, the same kind of content (a smooth blob plus noise: gzip gets about 2x, as on
# real scans, not the 50x of a synthetic ramp).
zz, yy, xx = np.mgrid[0:256, 0:256, 0:256].astype(np.float32)
big = (1000 * np.exp(-((xx - 128) ** 2 + (yy - 128) ** 2 + (zz - 128) ** 2) / 8000.0)
       + rng.normal(0, 20, size=xx.shape)).astype(np.int16)
del zz, yy, xx
aff = np.diag([-1.0, 1.0, 1.0, 1.0])  # LAS: the reader flips x
for name in ["vol256.nii", "vol256.nii.gz"]:
    out = os.path.join(data, name)
    if not os.path.exists(out):
        nib.save(nib.Nifti1Image(big, aff), out)
PY

corpus="${CLIFHE_PYDICOM_TEST_FILES:-}"
if [ -z "$corpus" ] || [ ! -d "$corpus" ]; then
  corpus="$work/pydicom/data/test_files"
  if [ ! -d "$corpus" ]; then
    "$venv/bin/pip" download --quiet --no-deps pydicom==3.0.2 -d "$work"
    python3 -m zipfile -e "$work"/pydicom-3.0.2-*.whl "$work"
  fi
fi
files=("$work/data/ct_series" "$work/data/ct_rle.dcm" "$work/data/ct_j2k.dcm")
for f in MR_small.dcm MR_small_bigendian.dcm MR_small_RLE.dcm MR_small_jp2klossless.dcm CT_small.dcm \
         JPEG2000.dcm 693_J2KI.dcm image_dfl.dcm rtdose_expb.dcm; do
  files+=("$corpus/$f")
done
files+=("$work/data/vol256.nii" "$work/data/vol256.nii.gz")

# Both sides run under `chrt -f 1` when allowed (as the other tables in BENCHMARKS.md): on a
# shared machine, real-time priority keeps builds on the other core from time-slicing the timed
# process.
prio=()
if chrt -f 1 true 2>/dev/null; then prio=(chrt -f 1); fi
# LOAD_BENCH_PROFILE=test reuses the test build (opt-level 3 too, but with debug assertions and
# overflow checks on) when a release build of the whole dependency tree is too slow to wait for.
profile=${LOAD_BENCH_PROFILE:-release}
cargo build --quiet --profile "$profile" -p host-eval --example load_bench
dir=$profile; [ "$profile" = test ] && dir=debug
bin="${CARGO_TARGET_DIR:-target}/$dir/examples/load_bench"
"${prio[@]}" "$bin" --runs "$runs" "${files[@]}" > "$work/clifhe.tsv"

"${prio[@]}" "$py" - "$runs" "$work/clifhe.tsv" "${files[@]}" <<'PY'
import os, sys, time, statistics, numpy as np, pydicom, nibabel as nib
runs, tsv, files = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
def dicom_one(path):
    ds = pydicom.dcmread(path)
    a = ds.pixel_array.astype(np.float32)
    return a * float(getattr(ds, "RescaleSlope", 1) or 1) + float(getattr(ds, "RescaleIntercept", 0) or 0)
def dicom_series(d):
    sl = [pydicom.dcmread(os.path.join(d, f)) for f in sorted(os.listdir(d))]
    sl.sort(key=lambda s: float(s.ImagePositionPatient[2]))
    a = np.stack([s.pixel_array for s in sl]).astype(np.float32)
    return a * float(sl[0].RescaleSlope) + float(sl[0].RescaleIntercept)
def nifti(path):
    return nib.as_closest_canonical(nib.load(path)).get_fdata(dtype=np.float32)
def size(p):
    return sum(os.path.getsize(os.path.join(p, f)) for f in os.listdir(p)) if os.path.isdir(p) else os.path.getsize(p)
ours = {}
for line in open(tsv):
    path, nbytes, secs, vox = line.rstrip("\n").split("\t")
    ours[path] = (float(secs), int(vox))
print(f"| file | on disk (MB) | voxels (M) | clifhe (ms) | clifhe (MB/s) | reference | reference (ms) | reference (MB/s) | speed-up |")
print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
for p in files:
    if os.path.isdir(p):
        f, ref = dicom_series, "pydicom"
    elif p.endswith((".nii", ".nii.gz")):
        f, ref = nifti, "nibabel"
    else:
        f, ref = dicom_one, "pydicom"
    try:
        f(p)
        t = []
        for _ in range(runs):
            s = time.perf_counter(); f(p); t.append(time.perf_counter() - s)
        rt = statistics.median(t)
    except Exception as e:
        rt = None
    mb = size(p) / 1e6
    secs, vox = ours[p]
    name = os.path.basename(p.rstrip("/"))
    rcol = f"{rt * 1e3:.1f} | {mb / rt:.1f}" if rt else "fails | -"
    speed = f"{rt / secs:.1f}x" if rt else "-"
    print(f"| {name} | {mb:.3f} | {vox / 1e6:.3f} | {secs * 1e3:.1f} | {mb / secs:.1f} | {ref} | {rcol} | {speed} |")
PY
