"""Encode + public-key encryption of Microsoft SEAL 4.1 on chains like clifhe's presets.

Compare with `cargo bench -p clifhe-benches --bench core -- "encode.encrypt pk"` run in the same
minutes (BENCHMARKS.md, issue 14, 5 December 2026, morning). SEAL is reached through TenSEAL's
raw bindings (`tenseal.sealapi`; install as `benches/peers/compare.sh` does). Chains: N = 2^14,
60 + 7 x 40 with special prime 60 (leveled-n14's sizes); N = 2^15, 60 + 11 x 55 with special
prime 60 (private-n15 has q0 61 and P 2 x 61; SEAL takes no prime above 60 bits). 8 values at
the preset's scale, top level; SEAL's encoder runs its full N/2-slot transform for them.
Prints the median, min and max process CPU time of 15 runs per chain. Run with
OMP_NUM_THREADS=1.
"""
import statistics
import time

import numpy as np
import tenseal.sealapi as seal


def run(logn, bits, scale):
    n = 1 << logn
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(n)
    parms.set_coeff_modulus(seal.CoeffModulus.Create(n, bits))
    ctx = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
    assert ctx.parameters_set(), ctx.parameters_error_message()
    kg = seal.KeyGenerator(ctx); pk = seal.PublicKey(); kg.create_public_key(pk)
    enc = seal.CKKSEncoder(ctx); encr = seal.Encryptor(ctx, pk)
    vals = np.random.default_rng(1).uniform(-1, 1, 8).tolist()
    def f():
        pt = seal.Plaintext(); enc.encode(vals, scale, pt)
        ct = seal.Ciphertext(ctx); encr.encrypt(pt, ct)
    f(); cpu = []
    for _ in range(15):
        c = time.process_time(); f(); cpu.append((time.process_time() - c) * 1e3)
    print(f"SEAL N=2^{logn} bits={len(bits)-1}q+1p encode+encrypt pk: median {statistics.median(cpu):.2f} ms (min {min(cpu):.2f}, max {max(cpu):.2f})")


run(14, [60] + [40]*7 + [60], 2.0**40)
run(15, [60] + [55]*11 + [60], 2.0**55)
