"""The protocol through the package: numpy volumes -> features -> encrypted batch -> the
vendor's encrypted inference -> the hospital's budgeted release, equal to the plaintext model."""

from __future__ import annotations

import json

import numpy as np
import pytest

import clifhe
from conftest import run_cli, write_nifti


@pytest.fixture(scope="session")
def keys(workdir):
    d = workdir / "keys"
    r = clifhe.keygen(d, "private-n15")
    assert r["keyset"]["preset"] == "private-n15"
    assert (d / "secret.key").exists()
    e = clifhe.evalkeys(d)
    assert e["keys"] >= 1
    return d


@pytest.fixture(scope="session")
def profile_path(workdir, keys, model_path):
    out = workdir / "profile.json"
    # The vendor sees only the public bundle.
    p = clifhe.profile(model_path, keys / "public.bundle", out)
    assert p["circuit_private"] is True and out.exists()
    return out


@pytest.fixture(scope="session")
def volumes(model):
    """Unseen phantoms (numpy volumes, spacing) whose features lie inside the model's box."""
    vols = [clifhe.phantom(label, index) for index in range(2000, 2040) for label in range(3)]
    inside = model.in_box(np.array([clifhe.features(v, s) for v, s in vols]))
    vols = [v for v, ok in zip(vols, inside) if ok][:12]
    assert len(vols) >= 6
    return vols


@pytest.fixture(scope="session")
def patients(volumes):
    return np.array([clifhe.features(v, s) for v, s in volumes])


def test_round_trip_released_argmax_equals_the_plaintext_model(
    workdir, keys, profile_path, model, model_path, volumes, patients, host_eval
):
    """numpy volumes -> features (equal to the CLI's on the same volumes as NIfTI files) ->
    encrypted batch -> encrypted inference -> released argmax == the plaintext model's."""
    paths = [str(write_nifti(workdir / f"rt-{i}.nii", v, s)) for i, (v, s) in enumerate(volumes)]
    cli = json.loads(run_cli(host_eval, "predict", "--model", str(model_path), "--input", *paths, "--json"))
    assert np.array([p["scores"] for p in cli["patients"]]).tobytes() == model.predict(patients).tobytes()
    assert all(clifhe.scan_features(p).tobytes() == f.tobytes() for p, f in zip(paths, patients))
    batch = workdir / "batch.clhe"
    s = clifhe.encrypt(keys, profile_path, patients, batch)
    assert s["patients"] == len(patients)
    record = workdir / "batch.clhe.record.json"
    assert record.exists() and s["out_of_box"] == []
    scores = workdir / "scores"
    m = clifhe.infer(model_path, keys / "public.bundle", batch, scores)
    assert m["circuit_private"] is True
    r = clifhe.release(keys, scores, record)
    released = [p["class"] for p in r["predictions"]]
    assert released == list(model.classify(patients))
    assert r["labels"] == model.labels
    assert r["cost_bits"] > 0 and r["remaining_bits"] < r["budget_bits"]
    ledger = json.loads((keys / "leakage.json").read_text())
    assert ledger["releases"] == 1


def test_rounded_release_is_close_to_the_plaintext_scores(workdir, keys, profile_path, model, model_path, patients):
    batch = workdir / "batch2.clhe"
    clifhe.encrypt(keys, profile_path, patients[:3], batch)
    clifhe.infer(model_path, keys / "public.bundle", batch, workdir / "scores2")
    r = clifhe.release(keys, workdir / "scores2", workdir / "batch2.clhe.record.json", rounded=3)
    got = np.array([p["scores"] for p in r["predictions"]])
    assert np.allclose(got, model.predict(patients[:3]), atol=2e-3)


def test_cli_reads_what_the_package_writes(workdir, keys, profile_path, model_path, patients, host_eval, model):
    """The batch and record from `clifhe.encrypt` go through the `host-eval` binary's infer
    and release: the files are the command line's own."""
    batch = workdir / "batch3.clhe"
    clifhe.encrypt(keys, profile_path, patients[:4], batch, mode="seeded")
    run_cli(host_eval, "infer", "--model", str(model_path), "--keys", str(keys / "public.bundle"),
            "--input", str(batch), "--out", str(workdir / "scores3"))
    out = json.loads(run_cli(host_eval, "release", "--keys", str(keys), "--scores", str(workdir / "scores3"),
                             "--record", str(workdir / "batch3.clhe.record.json"), "--json"))
    assert [p["class"] for p in out] == list(model.classify(patients[:4]))


def test_encrypt_inputs_takes_cli_specs(workdir, keys, profile_path, patients):
    feats = workdir / "features.json"
    feats.write_text(json.dumps(patients[:2].tolist()))
    s = clifhe.encrypt(keys, profile_path, out=workdir / "b4.clhe", inputs=[feats])
    assert s["patients"] == 2


def test_errors_are_typed(workdir, keys, profile_path, model_path):
    with pytest.raises(clifhe.InputError):
        clifhe.keygen(workdir / "k2", "no-such-preset")
    with pytest.raises(clifhe.KeyExists):
        clifhe.keygen(keys, "private-n15")
    with pytest.raises(clifhe.InputError):
        clifhe.encrypt(keys, profile_path, np.ones((2, 7)), workdir / "x.clhe")
    with pytest.raises(clifhe.InputError):
        clifhe.encrypt(keys, profile_path, np.full((1, 8), np.nan), workdir / "x.clhe")
    with pytest.raises(clifhe.InputError):
        clifhe.encrypt(keys, profile_path, np.ones((1, 8)), workdir / "x.clhe", mode="other")
    with pytest.raises(clifhe.FileError):
        clifhe.release(keys, workdir / "absent", workdir / "absent.record.json")
    with pytest.raises(clifhe.ProtocolError):
        (workdir / "bad.clhe").write_bytes(b"garbage")
        clifhe.infer(model_path, keys / "public.bundle", workdir / "bad.clhe", workdir / "s-bad")


def test_other_key_set_is_a_key_mismatch(workdir, keys, profile_path, model_path, patients):
    other = workdir / "other-keys"
    clifhe.keygen(other, "leveled-n14")
    with pytest.raises(clifhe.KeyMismatch):
        clifhe.encrypt(other, profile_path, patients[:1], workdir / "y.clhe")


def test_spent_budget_raises_budget_exhausted(workdir, model_path, patients, model):
    d = workdir / "small-budget"
    clifhe.keygen(d, "private-n15", leakage_budget_bits=4)
    clifhe.evalkeys(d)
    prof = workdir / "small-profile.json"
    clifhe.profile(model_path, d, prof)
    batch = workdir / "b5.clhe"
    clifhe.encrypt(d, prof, patients[:3], batch)  # 3 x log2(3) = 4.75 bits > 4
    clifhe.infer(model_path, d / "public.bundle", batch, workdir / "scores5")
    with pytest.raises(clifhe.BudgetExhausted, match="rotate"):
        clifhe.release(d, workdir / "scores5", workdir / "b5.clhe.record.json")
    # Rotating gives a fresh budget (and the old batch no longer fits the keys).
    clifhe.keygen(d, "private-n15", rotate=True)
    with pytest.raises(clifhe.ClifheError):
        clifhe.release(d, workdir / "scores5", workdir / "b5.clhe.record.json")


def test_enrolled_device_through_the_package(workdir, model, model_path, patients):
    """An enrolled device (hospital: device_enroll; the device's path on the host:
    device_encrypt; vendor: infer_devices; hospital: device_record, release): released argmax
    == the plaintext model's, and the device's key seed is private to its owner."""
    keys = workdir / "device-keys"
    clifhe.keygen(keys, "private-n15")
    clifhe.evalkeys(keys, merge_patients=2)
    profile = workdir / "device-profile.json"
    clifhe.profile(model_path, keys / "public.bundle", profile)
    bundle, swk = workdir / "device-1", workdir / "device-1.swk"
    r = clifhe.device_enroll(keys, profile, bundle, swk)
    assert r["manifest"]["format"] == "clifhe-device-enrollment/1"
    assert (bundle / "device-key.seed").stat().st_mode & 0o077 == 0
    with pytest.raises(clifhe.InputError):
        clifhe.device_enroll(keys, profile, bundle, workdir / "again.swk")
    sent = workdir / "device-1-sent"
    e = clifhe.device_encrypt(bundle, patients[:4], sent)
    files = [str(f) for f in e["files"]]
    assert len(files) == 4 and e["out_of_box"] == []
    scores = workdir / "device-1-scores"
    m = clifhe.infer_devices(model_path, keys / "public.bundle", files, swk, scores)
    assert m["circuit_private"] is True and m["patients"] == 4
    record = workdir / "device-1.record.json"
    clifhe.device_record(keys, profile, files, record)
    rel = clifhe.release(keys, scores, record)
    assert [p["class"] for p in rel["predictions"]] == model.classify(patients[:4]).tolist()
