"""Shared fixtures: a model trained by the Rust `train` (phantoms), the `host-eval` binary, and
a small NIfTI-1 writer for volumes the command line reads."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

import clifhe

REPO = Path(__file__).resolve().parents[2]


def write_nifti(path: Path, volume: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> Path:
    """A NIfTI-1 single file (float32, no orientation codes) of ``volume[x, y, z]``."""
    v = np.asarray(volume, dtype="<f4")
    hdr = bytearray(348)
    struct.pack_into("<i", hdr, 0, 348)
    struct.pack_into("<8h", hdr, 40, 3, *v.shape, 1, 1, 1, 1)
    struct.pack_into("<hh", hdr, 70, 16, 32)  # datatype FLOAT32, bitpix
    struct.pack_into("<8f", hdr, 76, 1.0, *spacing, 1.0, 1.0, 1.0, 1.0)
    struct.pack_into("<fff", hdr, 108, 352.0, 0.0, 0.0)  # vox_offset, scl_slope 0: no scaling
    hdr[344:348] = b"n+1\0"
    path.write_bytes(bytes(hdr) + b"\0\0\0\0" + v.tobytes(order="F"))
    return path


@pytest.fixture(scope="session")
def host_eval() -> str:
    """The `host-eval` binary: $CLIFHE_HOST_EVAL (scripts/test-all.sh sets it; a missing one is
    an error), else the workspace's target directories, else PATH."""
    env = os.environ.get("CLIFHE_HOST_EVAL")
    if env:
        assert Path(env).is_file(), f"CLIFHE_HOST_EVAL={env} does not exist"
        return env
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for p in (target / "debug" / "host-eval", target / "release" / "host-eval"):
        if p.is_file():
            return str(p)
    found = shutil.which("host-eval")
    if found:
        return found
    pytest.skip("no host-eval binary: build it (cargo build -p host-eval) or set CLIFHE_HOST_EVAL")


def run_cli(exe: str, *args: str) -> str:
    r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"host-eval {' '.join(args)} failed ({r.returncode}): {r.stderr}"
    return r.stdout


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clifhe")


@pytest.fixture(scope="session")
def model_path(workdir) -> Path:
    """A model trained by the Rust `train` on the built-in phantoms (seed 1)."""
    path = workdir / "model.json"
    summary = clifhe.train(path, per_class=60, seed=1)
    assert summary["classes"] == 3
    return path


@pytest.fixture(scope="session")
def model(model_path) -> clifhe.Model:
    return clifhe.Model.load(model_path)
