//! ModRaise and sparse-secret encapsulation (Bossuat, Troncoso-Pastoriza, Hubaux, ACNS 2022,
//! "Bootstrapping for approximate homomorphic encryption with negligible failure-probability by
//! using sparse-secret encapsulation").
//!
//! ModRaise reads a level-0 ciphertext's residues mod q0 as centred integers and keeps them at
//! every prime: it then decrypts to `t = m + q0 I`, where `I` is the integer polynomial with
//! `|I_k| <= (h + 1) / 2` for a secret of Hamming weight `h` (`|c0 + c1 s| <= q0/2 (1 + h)`).
//! With the dense secret (`h ~ 2N/3`) `I` is far too large for EvalMod, so the level-0
//! ciphertext is first switched to an ephemeral sparse secret `s'` (Hamming weight 32), raised,
//! and switched back to `s` at the top level. The key `s -> s'` is an RLWE sample under the
//! sparse `s'`, which is only secure at a small modulus: it is generated over `q0 * p0` and
//! nothing else ([`DenseToSparseKey::moduli`]); the key `s' -> s` is an ordinary full switching
//! key under the dense `s`.

use crate::context::EvalContext;
use crate::error::EvalError;
use crate::keyswitch::SwitchingKey;
use clifhe_core::arith::Modulus;
use clifhe_core::ciphertext::{Ciphertext, CiphertextOwned};
use clifhe_core::keys::expand_public_limb;
use clifhe_core::rns::{reduce_small_into, Representation, RnsPoly};
use clifhe_core::sample::{fresh_seed, sample_cbd, sample_fixed_weight_ternary, SeedPurpose, SEED_BYTES};
use clifhe_core::SecretKey;
use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;
use zeroize::Zeroizing;

/// Stream index of the dense-to-sparse key's `a` (distinct from the full keys' digit streams).
const DENSE_TO_SPARSE_STREAM: u32 = 0xE000;

/// The key switching `s` to the ephemeral sparse `s'` over the two primes `q0` and `p0` only.
pub struct DenseToSparseKey {
    params_id: u16,
    a_seed: [u8; SEED_BYTES],
    /// `b` mod q0 and mod p0 (NTT form).
    b: [Vec<u64>; 2],
    a: [Vec<u64>; 2],
    moduli: [u64; 2],
}

impl core::fmt::Debug for DenseToSparseKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DenseToSparseKey")
            .field("moduli", &self.moduli)
            .finish_non_exhaustive()
    }
}

/// Both encapsulation keys.
#[derive(Debug)]
pub struct EncapsulationKeys {
    pub dense_to_sparse: DenseToSparseKey,
    pub sparse_to_dense: SwitchingKey,
}

impl DenseToSparseKey {
    /// The key's modulus: exactly `[q0, p0]`.
    pub fn moduli(&self) -> [u64; 2] {
        self.moduli
    }
    pub fn a_seed(&self) -> &[u8; SEED_BYTES] {
        &self.a_seed
    }
    pub fn b_limbs(&self) -> &[Vec<u64>; 2] {
        &self.b
    }
    pub fn memory_bytes(&self) -> usize {
        (self.b[0].len() + self.b[1].len()) * 16
    }

    /// Rebuilds the key from its seed and `b` limbs (after deserialisation).
    pub fn from_seed_and_b(ectx: &EvalContext, a_seed: [u8; SEED_BYTES], b: [Vec<u64>; 2]) -> Result<Self, EvalError> {
        if ectx.params().p().is_empty() {
            return Err(EvalError::NoSpecialPrimes);
        }
        let n = ectx.n();
        let moduli = [ectx.q_moduli()[0], *ectx.p0_table()?.modulus()];
        if b.iter().any(|l| l.len() != n) {
            return Err(EvalError::KeyShape);
        }
        let mut a = [vec![0u64; n], vec![0u64; n]];
        for (t, m) in moduli.iter().enumerate() {
            expand_public_limb(&a_seed, SeedPurpose::KeySwitchA, DENSE_TO_SPARSE_STREAM | t as u32, m, &mut a[t]);
        }
        Ok(Self {
            params_id: ectx.params().id(),
            a_seed,
            b,
            a,
            moduli: [moduli[0].value(), moduli[1].value()],
        })
    }
}

impl EncapsulationKeys {
    /// Samples an ephemeral secret of Hamming weight `weight` and both keys; the ephemeral
    /// secret is wiped before returning.
    pub fn generate<R: RngCore + CryptoRng, K: AsRef<[i8]> + AsMut<[i8]>>(
        ectx: &EvalContext,
        sk: &SecretKey<K>,
        weight: usize,
        rng: &mut R,
    ) -> Result<Self, EvalError> {
        let params = ectx.params();
        if sk.params_id() != params.id() {
            return Err(EvalError::ParamsMismatch);
        }
        if params.p().is_empty() {
            return Err(EvalError::NoSpecialPrimes);
        }
        super::check_ephemeral_weight(Some(weight))?;
        let n = ectx.n();
        let mut sparse = Zeroizing::new(vec![0i8; n]);
        if !sample_fixed_weight_ternary(rng, weight, &mut sparse) {
            return Err(EvalError::Invalid("ephemeral secret weight must be at most N/2"));
        }
        // s' -> s over Q*P: an ordinary switching key with s' as the source.
        let nq = params.q().len();
        let mut sp_q = RnsPoly::zero(n, nq, Representation::Ntt);
        let filled = sp_q.as_mut_slice().par_chunks_mut(n).enumerate().try_for_each(|(i, l)| {
            reduce_small_into(&sparse, &ectx.q_moduli()[i], l);
            ectx.q_tables()[i].forward(l).map_err(|_| EvalError::Representation)
        });
        // s' in NTT form is wiped on every path, including an error while it was being built.
        let sparse_to_dense = filled.and_then(|()| SwitchingKey::generate(ectx, sk, &sp_q, rng));
        zeroize::Zeroize::zeroize(sp_q.as_mut_slice());
        let sparse_to_dense = sparse_to_dense?;

        // s -> s' over q0 * p0: b = -a s' + e + p0 s.
        let tables = [&ectx.q_tables()[0], ectx.p0_table()?];
        let moduli = [ectx.q_moduli()[0], *tables[1].modulus()];
        let a_seed = fresh_seed(rng);
        let mut e = Zeroizing::new(vec![0i8; n]);
        sample_cbd(rng, &mut e);
        let mut b = [vec![0u64; n], vec![0u64; n]];
        let mut a = [vec![0u64; n], vec![0u64; n]];
        let mut s_hat = Zeroizing::new(vec![0u64; n]);
        let mut sp_hat = Zeroizing::new(vec![0u64; n]);
        for t in 0..2 {
            let m = &moduli[t];
            expand_public_limb(&a_seed, SeedPurpose::KeySwitchA, DENSE_TO_SPARSE_STREAM | t as u32, m, &mut a[t]);
            reduce_small_into(&sparse, m, &mut sp_hat);
            tables[t].forward(&mut sp_hat).map_err(|_| EvalError::Representation)?;
            reduce_small_into(&e, m, &mut b[t]);
            tables[t].forward(&mut b[t]).map_err(|_| EvalError::Representation)?;
            for ((o, x), s) in b[t].iter_mut().zip(&a[t]).zip(sp_hat.iter()) {
                *o = m.sub(*o, m.mul(*x, *s));
            }
            if t == 0 {
                // p0 s vanishes mod p0; mod q0 it is the gadget term.
                sk.ntt_limb_into(tables[0], &mut s_hat)?;
                let p0 = m.reduce(moduli[1].value());
                for (o, s) in b[0].iter_mut().zip(s_hat.iter()) {
                    *o = m.add(*o, m.mul(p0, *s));
                }
            }
        }
        Ok(Self {
            dense_to_sparse: DenseToSparseKey {
                params_id: params.id(),
                a_seed,
                b,
                a,
                moduli: [moduli[0].value(), moduli[1].value()],
            },
            sparse_to_dense,
        })
    }
}

/// Re-encrypts a level-0 ciphertext under the ephemeral sparse secret (key switch over q0*p0).
pub fn switch_to_sparse(ectx: &EvalContext, ct: &CiphertextOwned, key: &DenseToSparseKey) -> Result<CiphertextOwned, EvalError> {
    if ct.meta.params_id != ectx.params().id() || key.params_id != ectx.params().id() {
        return Err(EvalError::ParamsMismatch);
    }
    if ct.meta.level != 0 || ct.c1.limbs() != 1 || ct.c0.limbs() != 1 {
        return Err(EvalError::LevelMismatch {
            left: ct.meta.level,
            right: 0,
        });
    }
    let n = ectx.n();
    let (tq, tp) = (&ectx.q_tables()[0], ectx.p0_table()?);
    let (mq, mp) = (&ectx.q_moduli()[0], tp.modulus());
    let c1 = ct.c1.limb(0).ok_or(EvalError::OutOfLevels)?;
    // c1 mod p0 from its centred coefficients (exact: one prime, no conversion error)
    let mut c1p = c1.to_vec();
    tq.inverse(&mut c1p).map_err(|_| EvalError::Representation)?;
    lift_centred(mq, mp, &mut c1p);
    tp.forward(&mut c1p).map_err(|_| EvalError::Representation)?;
    let p_inv = mq.inv(mq.reduce(mp.value()));
    let p_inv_s = mq.shoup(p_inv);
    let mut out = [vec![0u64; n], vec![0u64; n]];
    for (which, o) in out.iter_mut().enumerate() {
        let (kq, kp) = if which == 0 {
            (&key.b[0], &key.b[1])
        } else {
            (&key.a[0], &key.a[1])
        };
        let mut xp: Vec<u64> = c1p.iter().zip(kp).map(|(x, k)| mp.mul(*x, *k)).collect();
        tp.inverse(&mut xp).map_err(|_| EvalError::Representation)?;
        lift_centred(mp, mq, &mut xp);
        tq.forward(&mut xp).map_err(|_| EvalError::Representation)?;
        for ((o, x), (k, d)) in o.iter_mut().zip(c1).zip(kq.iter().zip(&xp)) {
            *o = mq.mul_shoup(mq.sub(mq.mul(*x, *k), *d), p_inv, p_inv_s);
        }
    }
    let [d0, d1] = out;
    let c0 = ct.c0.limb(0).ok_or(EvalError::OutOfLevels)?;
    let c0: Vec<u64> = c0.iter().zip(&d0).map(|(a, b)| mq.add(*a, *b)).collect();
    Ok(Ciphertext {
        c0: RnsPoly::from_storage(n, 1, Representation::Ntt, c0)?,
        c1: RnsPoly::from_storage(n, 1, Representation::Ntt, d1)?,
        meta: ct.meta,
    })
}

/// Replaces residues mod `from` (coefficient form) by the residues mod `to` of their centred
/// representatives.
fn lift_centred(from: &Modulus, to: &Modulus, v: &mut [u64]) {
    for x in v.iter_mut() {
        *x = to.reduce_i64(from.center(*x));
    }
}

/// ModRaise: a level-0 ciphertext to `level`, each coefficient mod q0 lifted to its centred
/// representative at every prime. The result decrypts to `m + q0 I` (module docs).
pub fn mod_raise(ectx: &EvalContext, ct: &CiphertextOwned, level: usize) -> Result<CiphertextOwned, EvalError> {
    if ct.meta.params_id != ectx.params().id() {
        return Err(EvalError::ParamsMismatch);
    }
    if ct.meta.level != 0 {
        return Err(EvalError::LevelMismatch {
            left: ct.meta.level,
            right: 0,
        });
    }
    if level > ectx.max_level() {
        return Err(EvalError::OutOfLevels);
    }
    let n = ectx.n();
    let q0 = &ectx.q_moduli()[0];
    let raise = |p: &clifhe_core::rns::RnsPolyOwned| -> Result<clifhe_core::rns::RnsPolyOwned, EvalError> {
        let mut coef = p.limb(0).ok_or(EvalError::OutOfLevels)?.to_vec();
        ectx.q_tables()[0].inverse(&mut coef).map_err(|_| EvalError::Representation)?;
        let centred: Vec<i64> = coef.iter().map(|&x| q0.center(x)).collect();
        let mut out = RnsPoly::zero(n, level + 1, Representation::Ntt);
        out.as_mut_slice().par_chunks_mut(n).enumerate().try_for_each(|(i, l)| {
            if i == 0 {
                l.copy_from_slice(p.limb(0).ok_or(EvalError::OutOfLevels)?);
                return Ok(());
            }
            let m = &ectx.q_moduli()[i];
            for (o, c) in l.iter_mut().zip(&centred) {
                *o = m.reduce_i64(*c);
            }
            ectx.q_tables()[i].forward(l).map_err(|_| EvalError::Representation)
        })?;
        Ok(out)
    };
    let c0 = raise(&ct.c0)?;
    let c1 = raise(&ct.c1)?;
    let mut meta = ct.meta;
    meta.level = level;
    Ok(Ciphertext { c0, c1, meta })
}

/// Switches a ciphertext under `s'` back to `s` at its level (full hybrid key switch).
pub fn switch_to_dense(ectx: &EvalContext, ct: &CiphertextOwned, key: &SwitchingKey) -> Result<CiphertextOwned, EvalError> {
    let (d0, d1) = ectx.key_switch(&ct.c1, key)?;
    let mut c0 = ct.c0.clone();
    c0.add_assign(&d0, &ectx.q_moduli()[..=ct.meta.level])?;
    Ok(Ciphertext { c0, c1: d1, meta: ct.meta })
}
