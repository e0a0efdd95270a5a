"""DESILO FHE's CKKS bootstrapping, timed the way compare_bootstrap.sh times clifhe's.

DESILO (`desilofhe` on PyPI, CPU build) fixes its own bootstrapping parameters: N = 2^16, full
slots (32768), 128-bit security by the library's choice. This script generates the keys the
bootstrap needs (relinearization, conjugation, and either the rotation keys with the small
bootstrap key, or one larger bootstrap key), encrypts random real values in [-1, 1] at level 0,
bootstraps `--reps` times on `--threads` threads and prints one line

    RESULT {"lib": ..., "op": "bootstrap", "median_ms": ..., "median_cpu_ms": ..., ...}

with the wall and process-CPU medians, the precision after decryption (-log2 of the largest
and of the mean absolute error over the slots, the same two figures clifhe's heavy test prints),
the level left, and the process's peak resident memory.
"""
import argparse
import json
import math
import resource
import statistics
import time
from importlib.metadata import version

import desilofhe
import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--key", choices=["small", "medium"], default="medium")
    a = p.parse_args()

    engine = desilofhe.Engine(bootstrap=True, thread_count=a.threads)
    slots = engine.slot_count
    sk = engine.create_secret_key()
    pk = engine.create_public_key(sk)
    t0, c0 = time.perf_counter(), time.process_time()
    relin = engine.create_relinearization_key(sk)
    conj = engine.create_conjugation_key(sk)
    if a.key == "small":
        roll = engine.create_roll_key(sk)
        small = engine.create_small_bootstrap_key(sk)
        refresh = lambda ct: engine.bootstrap(ct, relin, conj, roll, small)
    else:
        key = engine.create_bootstrap_key(sk, size=a.key)
        refresh = lambda ct: engine.bootstrap(ct, relin, conj, key)
    keygen_ms, keygen_cpu_ms = (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3

    values = np.random.default_rng(7).uniform(-1.0, 1.0, slots)
    ct = engine.encrypt(values, pk, level=0)
    wall, cpu = [], []
    for _ in range(a.reps):
        t0, c0 = time.perf_counter(), time.process_time()
        out = refresh(ct)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    err = np.abs(np.asarray(engine.decrypt(out, sk), dtype=np.float64)[:slots] - values)
    print("RESULT " + json.dumps({
        "lib": "DESILO FHE",
        "version": version("desilofhe"),
        "op": "bootstrap",
        "slots": slots,
        "logn": int(math.log2(2 * slots)),
        "threads": a.threads,
        "key": a.key,
        "reps": a.reps,
        "median_ms": round(statistics.median(wall), 1),
        "median_cpu_ms": round(statistics.median(cpu), 1),
        "keygen_ms": round(keygen_ms, 1),
        "keygen_cpu_ms": round(keygen_cpu_ms, 1),
        "min_bits": round(-math.log2(float(err.max())), 2),
        "mean_bits": round(-math.log2(float(err.mean())), 2),
        "levels_after": out.level,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }), flush=True)


if __name__ == "__main__":
    main()
