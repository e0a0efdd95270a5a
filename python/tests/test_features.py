"""Features of numpy volumes: the same bits as the command line's, in every path."""

from __future__ import annotations

import json

import numpy as np
import pytest

import clifhe
from conftest import run_cli, write_nifti


def test_load_scan_round_trips_a_nifti_file(workdir):
    rng = np.random.default_rng(3)
    vol = rng.random((7, 5, 4), dtype=np.float32)
    path = write_nifti(workdir / "rt.nii", vol, spacing=(0.5, 1.0, 2.0))
    loaded, spacing = clifhe.load_scan(path)
    assert loaded.shape == (7, 5, 4) and loaded.dtype == np.float32
    assert np.array_equal(loaded, vol)
    assert spacing == (0.5, 1.0, 2.0)


def test_volume_features_equal_the_cli_bit_for_bit(workdir, host_eval, model, model_path):
    """numpy volume -> features in Python == the features `host-eval` computes from the same
    volume written as NIfTI: checked on the features themselves (the loader's path) and on the
    CLI's `predict --json` scores (its own process)."""
    rows, paths = [], []
    for label in range(3):
        vol, spacing = clifhe.phantom(label, 1000 + label)
        anisotropic = (spacing[0], 1.5 * spacing[1], 2.0 * spacing[2])
        f = clifhe.features(vol, anisotropic)
        assert f.shape == (8,) and f.dtype == np.float64
        path = write_nifti(workdir / f"phantom-{label}.nii", vol, anisotropic)
        assert clifhe.scan_features(path).tobytes() == f.tobytes()
        # float64 voxels are converted to float32 as the loaders do: same bits.
        assert clifhe.features(vol.astype(np.float64), anisotropic).tobytes() == f.tobytes()
        rows.append(f)
        paths.append(str(path))
    out = json.loads(run_cli(host_eval, "predict", "--model", str(model_path), "--input", *paths, "--json"))
    cli_scores = np.array([p["scores"] for p in out["patients"]], dtype=np.float64)
    py_scores = model.predict(np.array(rows))
    assert cli_scores.tobytes() == py_scores.tobytes()
    assert clifhe.predict(model_path, paths)["patients"] == out["patients"]


@pytest.mark.parametrize("pipeline", ["raw", "ct", "mr"])
def test_pipelines_match_the_cli_features_command(workdir, host_eval, model, model_path, pipeline):
    """A pipeline given by preset name, as a dict, or through a Model: the same bits as
    `host-eval features` (docs/preprocessing.md) on the same volume written as NIfTI."""
    rng = np.random.default_rng(11)
    vol = (rng.random((40, 30, 20), dtype=np.float32) * 600.0 - 200.0).astype(np.float32)
    spacing = (0.75, 1.25, 2.5)  # exact in the NIfTI header's float32
    path = write_nifti(workdir / f"pipe-{pipeline}.nii", vol, spacing)
    cli = run_cli(host_eval, "features", "--pipeline", pipeline, "--input", str(path))
    want = np.array([float(v) for v in cli.splitlines()[1].split(",")[1:]])
    got = clifhe.features(vol, spacing, pipeline=pipeline)
    assert got.tobytes() == want.tobytes()
    assert clifhe.scan_features(path, pipeline=pipeline).tobytes() == want.tobytes()
    as_dict = json.loads(clifhe._clifhe.pipeline_json(pipeline))
    assert clifhe.features(vol, spacing, pipeline=as_dict).tobytes() == want.tobytes()
    # The model trained on the phantoms records the raw pipeline.
    if pipeline == "raw":
        assert json.loads(model.preprocessing) == as_dict
        assert clifhe.features(vol, spacing, pipeline=model).tobytes() == want.tobytes()
        cli_m = run_cli(host_eval, "features", "--model", str(model_path), "--input", str(path))
        assert cli_m == cli


def test_bad_pipelines_are_input_errors():
    vol = np.ones((4, 4, 4), dtype=np.float32)
    for bad in ["gamma", {"version": 1, "resample_mm": -1, "intensity": {"kind": "scale", "divisor": 1}, "crop": {"kind": "none"}},
                {"version": 9, "resample_mm": None, "intensity": {"kind": "scale", "divisor": 1}, "crop": {"kind": "none"}}]:
        with pytest.raises(clifhe.InputError):
            clifhe.features(vol, pipeline=bad)


def test_axis_order_is_x_first():
    """volume[x, y, z]: mass placed at large x moves the e1 (x) centroid feature, not e3."""
    vol = np.zeros((16, 8, 4), dtype=np.float32)
    vol[12:, :, :] = 1.0
    f = clifhe.features(vol)
    x_centroid, z_centroid = f[1], f[3]
    assert x_centroid > 0 and abs(z_centroid) < 1e-6


def test_intensity_scale_default_matches_the_cli():
    assert clifhe.default_intensity_scale("data.npz#test:0") == 255.0
    assert clifhe.default_intensity_scale("scan.nii.gz") == 1.0
    vol, spacing = clifhe.phantom(0, 1)
    a = clifhe.features(vol, spacing, intensity_scale=1.0)
    b = clifhe.features(vol, spacing, intensity_scale=255.0)
    assert a[0] != b[0]


def test_integer_volumes_are_accepted():
    vol = np.zeros((4, 4, 4), dtype=np.uint8)
    vol[1:3, 1:3, 1:3] = 255
    f = clifhe.features(vol, intensity_scale=255.0)
    assert f.tobytes() == clifhe.features(vol.astype(np.float32), intensity_scale=255.0).tobytes()


@pytest.mark.parametrize("shape", [(8,), (4, 4), (2, 2, 2, 2)])
def test_wrong_rank_is_an_input_error(shape):
    with pytest.raises(clifhe.InputError):
        clifhe.features(np.ones(shape, dtype=np.float32))


def test_nan_voxels_are_an_input_error():
    vol = np.ones((4, 4, 4), dtype=np.float32)
    vol[1, 2, 3] = np.nan
    with pytest.raises(clifhe.InputError):
        clifhe.features(vol)


def test_bad_intensity_scale_and_spacing_are_input_errors():
    vol = np.ones((4, 4, 4), dtype=np.float32)
    with pytest.raises(clifhe.InputError):
        clifhe.features(vol, intensity_scale=0.0)
    with pytest.raises(clifhe.InputError):
        clifhe.features(vol, spacing_mm=(1.0, -1.0, 1.0))
    with pytest.raises(clifhe.InputError):
        clifhe.features(vol, spacing_mm=(1.0, 1.0))


def test_missing_and_corrupt_scans(workdir):
    with pytest.raises(clifhe.FileError):
        clifhe.load_scan(workdir / "absent.nii")
    junk = workdir / "junk.nii"
    junk.write_bytes(b"not a nifti file" * 10)
    with pytest.raises(clifhe.InputError):
        clifhe.load_scan(junk)
    with pytest.raises(clifhe.ClifheError):
        clifhe.scan_features(junk)


def test_tilted_phantoms_are_the_same_anatomy_turned():
    """``max_tilt_deg`` turns the patient: the volume changes, its total intensity (an
    invariant, up to the voxel grid) barely does, and a bad angle is a typed error."""
    upright, _ = clifhe.phantom(2, 5)
    tilted, _ = clifhe.phantom(2, 5, max_tilt_deg=180.0)
    assert not np.array_equal(upright, tilted)
    assert abs(float(tilted.sum()) / float(upright.sum()) - 1.0) < 0.02
    with pytest.raises(clifhe.InputError):
        clifhe.phantom(0, 0, max_tilt_deg=200.0)
