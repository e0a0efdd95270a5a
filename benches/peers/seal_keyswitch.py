"""Key-switching operations of Microsoft SEAL 4.1 on the chain clifhe's peer benchmarks use.

SEAL is reached through the raw bindings the TenSEAL wheel ships (`tenseal.sealapi`), the one
way to install SEAL from PyPI. Chain: q0 = 60 bits, then L primes of 40 bits (L = 7 at N = 2^14,
16 at N = 2^15), and SEAL's single special prime of 60 bits (SEAL's key switching has one
digit per ciphertext prime). clifhe's bench (`benches/benches/evaluator.rs`, `peer_literal`)
uses the same q chain with its own special primes (1 at 2^14, 3 at 2^15).

Measures, single thread (SEAL has no intra-operation threads), at the top level:
  ct*ct mul+relin   multiply then relinearize (one key switch)
  rotate 1          rotate the slots left by one (one key switch)
and prints one `RESULT {json}` line per operation: lib, op, logn, median_ms, min_ms,
median_cpu_ms (process CPU time, the figure that shared machines disturb least), reps.
"""
import argparse
import json
import statistics
import time

import numpy as np
import tenseal
import tenseal.sealapi as seal

LEVELS = {13: 2, 14: 7, 15: 16, 16: 35}


def measure(fn, reps):
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(reps):
        c, t = time.process_time(), time.perf_counter()
        fn()
        wall.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logn", type=int, default=14)
    ap.add_argument("--reps", type=int, default=9)
    a = ap.parse_args()
    n = 1 << a.logn
    bits = [60] + [40] * LEVELS[a.logn] + [60]
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(n)
    parms.set_coeff_modulus(seal.CoeffModulus.Create(n, bits))
    ctx = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
    if not ctx.parameters_set():
        raise SystemExit(ctx.parameters_error_message())
    keygen = seal.KeyGenerator(ctx)
    pk = seal.PublicKey()
    keygen.create_public_key(pk)
    rlk = seal.RelinKeys()
    keygen.create_relin_keys(rlk)
    gks = seal.GaloisKeys()
    keygen.create_galois_keys([3], gks)  # 3^1 mod 2N: rotation left by one step
    encoder = seal.CKKSEncoder(ctx)
    encryptor = seal.Encryptor(ctx, pk)
    ev = seal.Evaluator(ctx)
    rng = np.random.default_rng(1)
    cts = []
    for _ in range(2):
        pt = seal.Plaintext()
        encoder.encode(rng.uniform(-1, 1, n // 2).tolist(), 2.0 ** 40, pt)
        ct = seal.Ciphertext(ctx)
        encryptor.encrypt(pt, ct)
        cts.append(ct)

    def mul_relin():
        out = seal.Ciphertext(ctx)
        ev.multiply(cts[0], cts[1], out)
        ev.relinearize_inplace(out, rlk)

    def rotate():
        out = seal.Ciphertext(ctx)
        ev.rotate_vector(cts[0], 1, gks, out)

    for op, fn in [("ct*ct mul+relin", mul_relin), ("rotate 1", rotate)]:
        med, mn, cpu = measure(fn, a.reps)
        print("RESULT " + json.dumps({
            "lib": "SEAL 4.1 (tenseal " + tenseal.__version__ + ")", "op": op, "logn": a.logn,
            "median_ms": round(med, 3), "min_ms": round(mn, 3), "median_cpu_ms": round(cpu, 3),
            "reps": a.reps}), flush=True)


if __name__ == "__main__":
    main()
