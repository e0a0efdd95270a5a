"""The rotation-invariant model from Python: trained by the Rust trainer (``train(arch=
"equivariant")``, as ``host-eval train --arch equivariant``), its channels computed by the same
function as ``host-eval predict`` (so the scores match the command line's bit for bit), and its
scores unchanged when the channels are rotated."""

from __future__ import annotations

import json

import numpy as np
import pytest

import clifhe

from conftest import run_cli, write_nifti


@pytest.fixture(scope="session")
def eq_model_path(workdir):
    out = workdir / "eq.json"
    summary = clifhe.train(out, per_class=8, seed=2, arch="equivariant", max_tilt_deg=30.0)
    assert summary["arch"] == "equivariant"
    assert "tilted up to 30 deg" in summary["dataset"]
    assert summary["channels"] == {"shells": 4, "principal_axes": True, "depth": True, "shell_weighting": "Tent"}
    return out


@pytest.fixture(scope="session")
def eq_model(eq_model_path):
    return clifhe.EquivariantModel.load(eq_model_path)


def rotation(axis, angle):
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def rotate_channels(ch, r):
    """Rotates every channel (K, 8): vectors (e1, e2, e3) by r, bivectors through their dual
    vector (e23, -e13, e12), scalars and pseudoscalars unchanged."""
    out = ch.copy()
    out[:, 1:4] = ch[:, 1:4] @ r.T
    dual = np.stack([ch[:, 6], -ch[:, 5], ch[:, 4]], axis=1) @ r.T
    out[:, 6], out[:, 5], out[:, 4] = dual[:, 0], -dual[:, 1], dual[:, 2]
    return out


def test_load_round_trip_and_shape(eq_model, eq_model_path, workdir):
    assert eq_model.classes == 3 and eq_model.labels == ["healthy", "benign", "malignant"]
    assert eq_model.channel_count == 8 and eq_model.shells == 4 and eq_model.principal_axes and eq_model.depth
    assert eq_model.shell_weighting == "tent"
    again = clifhe.EquivariantModel.from_json(eq_model.to_json())
    assert again.to_json() == eq_model.to_json()
    eq_model.save(workdir / "eq-copy.json")
    assert clifhe.EquivariantModel.load(workdir / "eq-copy.json").to_json() == eq_model.to_json()
    assert "EquivariantModel" in repr(eq_model)
    # A GNN model file is not an equivariant one (and the other way round).
    gnn = workdir / "gnn-for-eq.json"
    clifhe.train(gnn, per_class=8, seed=2)
    with pytest.raises(clifhe.InputError, match="equivariant"):
        clifhe.EquivariantModel.load(gnn)
    with pytest.raises(clifhe.InputError):
        clifhe.Model.load(eq_model_path)
    with pytest.raises(clifhe.FileError):
        clifhe.EquivariantModel.load(workdir / "no-such-model.json")
    with pytest.raises(TypeError, match="EquivariantModel.load"):
        clifhe.EquivariantModel(object())


def test_channels_and_scores_match_the_command_line(eq_model, eq_model_path, host_eval, workdir):
    volume, spacing = clifhe.phantom(2, 3, seed=5)
    ch = eq_model.channels(volume, spacing)
    assert ch.shape == (8, 8) and np.all(np.isfinite(ch))
    path = write_nifti(workdir / "eq-phantom.nii", volume, spacing)
    assert np.array_equal(eq_model.scan_channels(path), ch)
    out = json.loads(run_cli(host_eval, "predict", "--model", str(eq_model_path), "--input", str(path), "--json"))
    cli_scores = np.asarray(out["patients"][0]["scores"])
    assert np.array_equal(eq_model.predict(ch), cli_scores)
    assert clifhe.predict(eq_model_path, [path])["patients"][0]["class"] == int(eq_model.classify(ch)[0])


def test_scores_are_invariant_under_rotations_of_the_channels(eq_model):
    rng = np.random.default_rng(7)
    volume, spacing = clifhe.phantom(1, 4, seed=5)
    ch = eq_model.channels(volume, spacing)
    stack = np.stack([rotate_channels(ch, rotation(rng.normal(size=3), rng.uniform(0, np.pi))) for _ in range(20)])
    base = eq_model.predict(ch)
    scores = eq_model.predict(stack)
    assert scores.shape == (20, 3)
    assert np.max(np.abs(scores - base)) < 1e-9
    # Rotating one channel alone is not a rotation of the scan: the scores move.
    partly = ch.copy()
    partly[4:5] = rotate_channels(ch[4:5], rotation([1.0, 2.0, 0.5], 1.0))
    assert np.max(np.abs(eq_model.predict(partly) - base)) > 1e-6


def test_bad_inputs_are_input_errors(eq_model):
    with pytest.raises(clifhe.InputError, match=r"\(n, 8, 8\)"):
        eq_model.predict(np.zeros((6, 8)))
    bad = np.zeros((8, 8))
    bad[2, 3] = np.nan
    with pytest.raises(clifhe.InputError, match="finite"):
        eq_model.predict(bad)
    with pytest.raises(clifhe.InputError, match="3D"):
        eq_model.channels(np.zeros((4, 4)))
    with pytest.raises(clifhe.InputError, match="architecture"):
        clifhe.train("unused.json", arch="resnet")


@pytest.fixture(scope="session")
def eq_private_path(workdir):
    out = workdir / "eq-private.json"
    summary = clifhe.train(out, per_class=8, seed=3, arch="equivariant", circuit_private=True)
    assert summary["circuit_private"] is True and summary["hidden"] == [8]
    return out


def test_circuit_private_network_and_input_domain(workdir, eq_private_path):
    m = clifhe.EquivariantModel.load(eq_private_path)
    assert m.hidden == [8]
    volume, spacing = clifhe.phantom(0, 2, seed=3)
    ch = m.channels(volume, spacing)
    # Far outside the training scans' grade norms: outside the recorded domain.
    assert list(m.in_domain(np.stack([ch * 100.0]))) == [False]
    with pytest.raises(clifhe.InputError, match="circuit_private"):
        clifhe.train(workdir / "unused.json", per_class=8, circuit_private=True)


@pytest.fixture(scope="session")
def eq_keys(workdir):
    """The hospital's own key set for these tests (its leakage ledger apart from the GNN's)."""
    d = workdir / "eq-keys"
    clifhe.keygen(d, "private-n15")
    clifhe.evalkeys(d)
    return d


def test_channels_through_the_protocol(workdir, eq_keys, eq_private_path):
    """profile -> encrypt(channels=...) -> infer -> release: the released argmax equals the
    plaintext model's on every patient inside the domain; the others are flagged."""
    keys = eq_keys
    m = clifhe.EquivariantModel.load(eq_private_path)
    profile = workdir / "eq-profile.json"
    p = clifhe.profile(eq_private_path, keys / "public.bundle", profile)
    assert "channels" in p and "input_box" not in p
    vols = [clifhe.phantom(label, index, seed=3) for index in range(500, 505) for label in range(3)]
    ch = np.stack([m.channels(v, s) for v, s in vols])
    inside = list(m.in_domain(ch))
    assert sum(inside) >= 6
    batch = workdir / "eq-batch.clhe"
    s = clifhe.encrypt(keys, profile, out=batch, channels=ch)
    assert s["patients"] == len(vols)
    assert s["out_of_box"] == [i for i, ok in enumerate(inside) if not ok]
    scores = workdir / "eq-scores"
    assert clifhe.infer(eq_private_path, keys / "public.bundle", batch, scores)["circuit_private"] is True
    r = clifhe.release(keys, scores, workdir / "eq-batch.clhe.record.json")
    released = [q["class"] for q in r["predictions"]]
    want = list(m.classify(ch))
    assert [a for a, ok in zip(released, inside) if ok] == [b for b, ok in zip(want, inside) if ok]
    # 8 features are not channels, and channels of the wrong count are refused.
    with pytest.raises(clifhe.ClifheError):
        clifhe.encrypt(keys, profile, np.zeros((2, 8)), workdir / "x.clhe")
    with pytest.raises(clifhe.ClifheError, match="channels"):
        clifhe.encrypt(keys, profile, out=workdir / "y.clhe", channels=ch[:, :3, :])
    assert not (workdir / "x.clhe").exists() and not (workdir / "y.clhe").exists()


def test_block_layout_through_the_protocol(workdir, eq_keys, eq_private_path):
    """The block layout (a few patients at low latency): the profile lists its rotations, the
    hospital makes their keys, and the released argmax equals the plaintext model's."""
    keys = eq_keys
    m = clifhe.EquivariantModel.load(eq_private_path)
    bprofile = workdir / "eq-bprofile.json"
    p = clifhe.profile(eq_private_path, keys / "public.bundle", bprofile, layout="blocks")
    assert (p["layout"], p["capacity"], len(p["rotations"])) == ("blocks", 32, 9)
    clifhe.evalkeys(keys, profile=bprofile)
    vols = [clifhe.phantom(label, index, seed=3) for index in range(600, 603) for label in range(3)]
    ch = np.stack([m.channels(v, s) for v, s in vols])
    inside = list(m.in_domain(ch))
    batch = workdir / "eq-bbatch.clhe"
    s = clifhe.encrypt(keys, bprofile, out=batch, channels=ch)
    assert (s["patients"], s["ciphertexts"]) == (len(vols), 2 * m.channel_count)
    scores = workdir / "eq-bscores"
    clifhe.infer(eq_private_path, keys / "public.bundle", batch, scores)
    r = clifhe.release(keys, scores, workdir / "eq-bbatch.clhe.record.json")
    released = [q["class"] for q in r["predictions"]]
    want = list(m.classify(ch))
    assert [a for a, ok in zip(released, inside) if ok] == [b for b, ok in zip(want, inside) if ok]
    with pytest.raises(clifhe.InputError, match="layout"):
        clifhe.profile(eq_private_path, keys / "public.bundle", workdir / "p.json", layout="diagonal")
