//! Hospital-side release of results: flood, decode, reduce, count.

use super::{add_to_c0, flood_noise_pow2, DEFAULT_STATISTICAL_SECURITY, MAX_LOG_FLOOD};
use crate::error::EvalError;
use clifhe_core::ciphertext::Ciphertext;
use clifhe_core::context::Context;
use clifhe_core::decrypt::decrypt;
use clifhe_core::{Params, SecretKey};
use rand_core::{CryptoRng, RngCore};

/// What leaves the key holder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReleaseFormat {
    /// Index of the largest score per group of `classes` consecutive slots.
    Argmax,
    /// Scores rounded to `digits` decimal digits.
    Rounded { digits: u32 },
}

#[derive(Clone, Debug)]
pub struct ReleasePolicy {
    pub format: ReleaseFormat,
    /// Statistical security of the decryption flooding (default 30).
    pub statistical_security: u32,
    /// Bound, per coefficient in coefficient units, on the key-dependent noise of the result
    /// ciphertexts: what the vendor's [`super::Sanitized::release_noise_bound`] reports
    /// (evaluation and re-randomisation noise; the vendor's own flood is independent of the key
    /// and known to the vendor, so it needs no hiding).
    pub noise_bound: f64,
    /// Maximum number of releases for this key.
    pub budget: u64,
    /// The releasing party's own flood width (log2), from the precision it needs
    /// ([`crate::protocol::leakage::hospital_flood_log2`]): the flood is the larger of this and
    /// 2^s times `noise_bound`, so a small bound stated by the other party cannot shrink it.
    pub min_flood_log2: u32,
}

impl ReleasePolicy {
    pub fn argmax(noise_bound: f64, budget: u64) -> Self {
        Self {
            format: ReleaseFormat::Argmax,
            statistical_security: DEFAULT_STATISTICAL_SECURITY,
            noise_bound,
            budget,
            min_flood_log2: 0,
        }
    }

    /// log2 of the release flood width W: max(2^ceil(s + log2 noise_bound), 2^min_flood_log2).
    pub fn log_flood(&self) -> f64 {
        (self.statistical_security as f64 + self.noise_bound.max(1.0).log2())
            .ceil()
            .max(f64::from(self.min_flood_log2))
    }

    /// Whether the flood fits a result ciphertext at `level` and `scale`: its decoded standard
    /// deviation, sqrt(N/6) W / scale, must stay below half a unit, and the flooded value inside
    /// the modulus. [`Releaser::decrypt_for_release`] refuses what this refuses; a caller that
    /// persists its counter before releasing checks here first, so a release that cannot
    /// happen does not use budget.
    pub fn check_fits(&self, params: &Params, level: usize, scale: f64) -> Result<(), EvalError> {
        if self.statistical_security < super::MIN_STATISTICAL_SECURITY {
            return Err(EvalError::Invalid("statistical security below 30 bits is refused"));
        }
        let log_w = self.log_flood();
        let log_q: f64 = params.q().iter().take(level + 1).map(|&q| (q as f64).log2()).sum();
        if log_w.is_nan()
            || level > params.max_level()
            || !(scale.is_finite() && scale > 0.0)
            || log_w + (params.n() as f64 / 6.0).sqrt().log2() >= scale.log2() - 1.0
            || log_w > log_q - 3.0
            || log_w > MAX_LOG_FLOOD as f64
        {
            return Err(EvalError::Invalid("release flooding would exceed the scale"));
        }
        Ok(())
    }
}

/// The released values.
#[derive(Clone, Debug, PartialEq)]
pub enum Release {
    Classes(Vec<usize>),
    Scores(Vec<f64>),
}

/// Returned once the key's budget is spent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReleaseBudgetExceeded {
    pub budget: u64,
}

impl core::fmt::Display for ReleaseBudgetExceeded {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "release budget of {} decryptions for this key is spent", self.budget)
    }
}

/// Where the score of (group g, class c) sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultLayout {
    /// One ciphertext; score (g, c) in slot `g * stride + c`.
    Interleaved { groups: usize, classes: usize, stride: usize },
    /// One ciphertext per class; score (g, c) in slot g of ciphertext c (blade-major outputs).
    CiphertextPerClass { groups: usize, classes: usize },
    /// One ciphertext; score (g, c) in slot `c * block + g` (block-layout outputs).
    Blocked { groups: usize, classes: usize, block: usize },
}

impl ResultLayout {
    pub fn groups(&self) -> usize {
        match self {
            Self::Interleaved { groups, .. } | Self::CiphertextPerClass { groups, .. } | Self::Blocked { groups, .. } => *groups,
        }
    }
    pub fn classes(&self) -> usize {
        match self {
            Self::Interleaved { classes, .. } | Self::CiphertextPerClass { classes, .. } | Self::Blocked { classes, .. } => *classes,
        }
    }
    /// (ciphertext index, slot) of score (g, c).
    pub fn position(&self, g: usize, c: usize) -> (usize, usize) {
        match self {
            Self::Interleaved { stride, .. } => (0, g * stride + c),
            Self::CiphertextPerClass { .. } => (c, g),
            Self::Blocked { block, .. } => (0, c * block + g),
        }
    }
}

/// The only way results leave the key holder: owns the per-key release counter.
#[derive(Debug)]
pub struct Releaser {
    policy: ReleasePolicy,
    released: u64,
}

impl Releaser {
    pub fn new(policy: ReleasePolicy) -> Self {
        Self { policy, released: 0 }
    }
    /// Restores a counter persisted by the caller (e.g. beside the key files).
    pub fn with_count(policy: ReleasePolicy, released: u64) -> Self {
        Self { policy, released }
    }
    pub fn released(&self) -> u64 {
        self.released
    }
    pub fn remaining(&self) -> u64 {
        self.policy.budget.saturating_sub(self.released)
    }

    /// Decrypts, floods before decoding, decodes, and reduces to the policy's format.
    /// `cts` holds the result ciphertexts as described by `layout`.
    pub fn decrypt_for_release<R: RngCore + CryptoRng, S: AsRef<[u64]>, K: AsRef<[i8]> + AsMut<[i8]>>(
        &mut self,
        ctx: &Context,
        sk: &SecretKey<K>,
        cts: &[&Ciphertext<S>],
        layout: &ResultLayout,
        rng: &mut R,
    ) -> Result<Release, EvalError> {
        if self.released >= self.policy.budget {
            return Err(EvalError::Invalid("release budget for this key is spent"));
        }
        let (groups, classes) = (layout.groups(), layout.classes());
        let expected_cts = match layout {
            ResultLayout::Interleaved { .. } | ResultLayout::Blocked { .. } => 1,
            ResultLayout::CiphertextPerClass { classes, .. } => *classes,
        };
        if cts.len() != expected_cts {
            return Err(EvalError::Invalid("number of result ciphertexts does not match the layout"));
        }
        let n = ctx.n();
        let log_w = self.policy.log_flood();
        for ct in cts {
            self.policy.check_fits(ctx.params(), ct.meta.level, ct.meta.scale)?;
        }
        let mut decoded = Vec::with_capacity(cts.len());
        for ct in cts {
            // Flood before anything is decoded: the noise goes into c0 of a copy, so the
            // decryption this process computes is already m + e + flood.
            let mut owned = clifhe_core::ciphertext::Ciphertext {
                c0: ct.c0.to_owned_poly(),
                c1: ct.c1.to_owned_poly(),
                meta: ct.meta,
            };
            let mut noise = zeroize::Zeroizing::new(vec![0i128; n]);
            flood_noise_pow2(rng, log_w as u32, &mut noise)?;
            add_to_c0(ctx.q_tables(), &mut owned, &noise)?;
            let dec = decrypt(ctx, sk, &owned)?;
            // Patient scores: wiped when `decoded` goes out of scope, error paths included.
            decoded.push(zeroize::Zeroizing::new(dec.decode()?));
        }
        let mut scores = Vec::with_capacity(groups * classes);
        for g in 0..groups {
            for c in 0..classes {
                let (ci, slot) = layout.position(g, c);
                let v = decoded
                    .get(ci)
                    .and_then(|d| d.get(slot))
                    .ok_or(EvalError::Invalid("result slot outside the ciphertext"))?;
                scores.push(v.re);
            }
        }
        // Count before returning anything: a failure after this point still uses budget.
        self.released += 1;
        Ok(match self.policy.format {
            ReleaseFormat::Argmax => Release::Classes(
                scores
                    .chunks(classes.max(1))
                    .map(|g| {
                        g.iter()
                            .enumerate()
                            .fold((0, f64::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
                            .0
                    })
                    .collect(),
            ),
            ReleaseFormat::Rounded { digits } => {
                let f = 10f64.powi(digits as i32);
                Release::Scores(scores.iter().map(|v| (v * f).round() / f).collect())
            }
        })
    }
}
