"""The service client against an embedded `host-eval serve` (API, in-process worker and an
on-disk store in one process) on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

import clifhe
from conftest import run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(workdir, host_eval, model_path):
    d = workdir / "svc"
    d.mkdir()
    token = d / "token"
    token.write_text(run_cli(host_eval, "tenant", "add", "hospital-a", "--tenants", str(d / "tenants.json")))
    port = free_port()
    log = open(d / "serve.log", "wb")
    proc = subprocess.Popen(
        [host_eval, "serve", "--model", str(model_path), "--tenants", str(d / "tenants.json"),
         "--store", str(d / "store"), "--workers", "1", "--listen", f"127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, (d / "serve.log").read_text()
            assert time.monotonic() < deadline, "host-eval serve did not listen within 60 s"
            time.sleep(0.2)
    yield url, token
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_submit_fetch_release(workdir, service, model):
    url, token = service
    keys = workdir / "svc-keys"
    clifhe.keygen(keys, "private-n15")
    clifhe.evalkeys(keys)
    client = clifhe.Client(url, token)
    prof = workdir / "svc-profile.json"
    client.fetch_profile(keys, prof)
    feats = [clifhe.features(*clifhe.phantom(label, 4000)) for label in range(3)]
    feats = [f for f in feats if model.in_box(f)[0]]
    batch = workdir / "svc-batch.clhe"
    clifhe.encrypt(keys, prof, feats, batch)
    job = client.submit(keys, batch)
    assert client.fetch(job, workdir / "svc-scores", timeout=300) == len(feats)
    assert client.status(job)["state"] == "done"
    r = clifhe.release(keys, workdir / "svc-scores", workdir / "svc-batch.clhe.record.json")
    assert [p["class"] for p in r["predictions"]] == list(model.classify(feats))


def test_service_errors_are_service_errors(workdir, service):
    url, _ = service
    bad = workdir / "bad-token"
    bad.write_text("not-a-token\n")
    keys = workdir / "svc-keys2"
    clifhe.keygen(keys, "private-n15")
    with pytest.raises(clifhe.ServiceError):
        clifhe.Client(url, bad).fetch_profile(keys, workdir / "p.json")
    with pytest.raises(clifhe.FileError):
        clifhe.Client(url, workdir / "absent-token")
