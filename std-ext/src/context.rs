//! Evaluation context: core's [`Context`] plus everything key switching and automorphisms
//! precompute. Immutable after construction (apart from a pool of reusable key-switching
//! buffers) and shared by reference (`Send + Sync`).

use crate::error::EvalError;
use crate::galois::GaloisPermutation;
use crate::keyswitch::{digit_ranges, KeySwitchScratch, LevelPrecomp};
use clifhe_core::arith::Modulus;
use clifhe_core::context::Context;
use clifhe_core::ntt::NttTableOwned;
use clifhe_core::{Params, SecretKey};
use zeroize::Zeroizing;

#[derive(Debug)]
pub struct EvalContext {
    core: Context,
    qp_moduli: Vec<Modulus>,
    levels: Vec<LevelPrecomp>,
    /// The key-switching digits ([`digit_ranges`]).
    digits: Vec<core::ops::Range<usize>>,
    /// Key-switching buffers reused by the owned-output operations (see
    /// [`EvalContext::with_switch_scratch`]); a cache, not state: results never depend on it.
    switch_pool: std::sync::Mutex<Vec<KeySwitchScratch>>,
}

impl EvalContext {
    pub fn new(params: Params) -> Result<Self, EvalError> {
        let core = Context::new(params)?;
        let qp_moduli: Vec<Modulus> = core.q_moduli().iter().chain(core.p_moduli()).copied().collect();
        let digits = digit_ranges(params.q(), params.p());
        let levels = if params.p().is_empty() {
            Vec::new()
        } else {
            (0..params.q().len())
                .map(|l| LevelPrecomp::new(core.q_moduli(), core.p_moduli(), &digits, l))
                .collect()
        };
        Ok(Self {
            core,
            qp_moduli,
            levels,
            digits,
            switch_pool: std::sync::Mutex::new(Vec::new()),
        })
    }

    pub fn core(&self) -> &Context {
        &self.core
    }
    pub fn params(&self) -> &Params {
        self.core.params()
    }
    pub fn n(&self) -> usize {
        self.core.n()
    }
    pub fn max_level(&self) -> usize {
        self.params().max_level()
    }
    /// Number of key-switching digits ([`digit_ranges`]).
    pub fn digits(&self) -> usize {
        self.digits.len()
    }
    /// The key-switching digits: ranges of ciphertext primes ([`digit_ranges`]).
    pub fn digit_ranges(&self) -> &[core::ops::Range<usize>] {
        &self.digits
    }
    pub fn q_moduli(&self) -> &[Modulus] {
        self.core.q_moduli()
    }
    pub fn q_tables(&self) -> &[NttTableOwned] {
        self.core.q_tables()
    }
    pub fn p_tables(&self) -> &[NttTableOwned] {
        self.core.p_tables()
    }
    /// The first special prime's table, or [`EvalError::NoSpecialPrimes`]: a context may be
    /// built for a parameter set without special primes (it can still add, multiply by
    /// plaintexts and rescale), so everything that needs p_0 asks here instead of indexing.
    pub fn p0_table(&self) -> Result<&NttTableOwned, EvalError> {
        self.p_tables().first().ok_or(EvalError::NoSpecialPrimes)
    }
    /// q_0..q_L, p_0..p_{k-1}.
    pub fn qp_moduli(&self) -> &[Modulus] {
        &self.qp_moduli
    }
    /// Tables in the same order as [`EvalContext::qp_moduli`].
    pub fn qp_tables(&self) -> Vec<&NttTableOwned> {
        self.q_tables().iter().chain(self.p_tables()).collect()
    }

    /// The pool of key-switching scratch buffers. A poisoned lock only means a thread
    /// panicked while holding a buffer; the buffers carry no invariant, so keep using them.
    pub(crate) fn switch_pool(&self) -> std::sync::MutexGuard<'_, Vec<KeySwitchScratch>> {
        self.switch_pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn level_precomp(&self, level: usize) -> Result<&LevelPrecomp, EvalError> {
        if self.params().p().is_empty() {
            return Err(EvalError::NoSpecialPrimes);
        }
        self.levels.get(level).ok_or(EvalError::OutOfLevels)
    }

    /// s in NTT form over every prime of Q*P (limb-major), wiped on drop.
    pub(crate) fn secret_ntt_qp<K: AsRef<[i8]> + AsMut<[i8]>>(&self, sk: &SecretKey<K>) -> Result<Zeroizing<Vec<u64>>, EvalError> {
        let n = self.n();
        let mut out = Zeroizing::new(vec![0u64; n * self.qp_moduli.len()]);
        for (t, table) in self.qp_tables().into_iter().enumerate() {
            sk.ntt_limb_into(table, &mut out[t * n..(t + 1) * n])?;
        }
        Ok(out)
    }

    /// The NTT-slot permutation of the automorphism X -> X^g ([`GaloisPermutation`]).
    pub fn galois_permutation(&self, g: usize) -> Result<GaloisPermutation, EvalError> {
        GaloisPermutation::new(self.n(), g)
    }

    /// The centred lift modulo q_(l-1) q_l of one polynomial's two top limbs at `level` = l,
    /// given in coefficient form (`lower`: limb l-1, `upper`: limb l): Garner's
    /// x = a + q_(l-1) ((b - a) q_(l-1)^-1 mod q_l) in [0, q_(l-1) q_l), centred without a
    /// branch. What a division by q_(l-1) q_l subtracts (`Evaluator::rescale_twice_owned`).
    pub(crate) fn centred_pair_lift(&self, lower: &[u64], upper: &[u64], level: usize) -> Vec<i128> {
        let (lo, up) = (&self.q_moduli()[level - 1], &self.q_moduli()[level]);
        let (ql1, ql) = (lo.value(), up.value());
        let inv = up.inv(up.reduce(ql1));
        let inv_s = up.shoup(inv);
        let q2 = ql1 as u128 * ql as u128;
        let half = (q2 / 2) as i128;
        lower
            .iter()
            .zip(upper)
            .map(|(&ra, &rb)| {
                let d = up.mul_shoup(up.sub(rb, up.reduce(ra)), inv, inv_s);
                let x = (ra as u128 + ql1 as u128 * d as u128) as i128;
                // x - q2 when x > q2 / 2, without a branch.
                let over = ((half - x) >> 127) as u128;
                (x as u128).wrapping_sub(q2 & over) as i128
            })
            .collect()
    }
}
