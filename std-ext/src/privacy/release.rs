//! Hospital-side release of results: flood, decode, reduce, count.

use super::{flood_noise, DEFAULT_STATISTICAL_SECURITY};
use crate::error::EvalError;
use clifhe_core::ciphertext::Ciphertext;
use clifhe_core::context::Context;
use clifhe_core::decrypt::decrypt;
use clifhe_core::SecretKey;
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
    /// Bound on the ciphertext noise to hide, coefficient units.
    pub noise_bound: f64,
    /// Maximum number of releases for this key.
    pub budget: u64,
}

impl ReleasePolicy {
    pub fn argmax(noise_bound: f64, budget: u64) -> Self {
        Self {
            format: ReleaseFormat::Argmax,
            statistical_security: DEFAULT_STATISTICAL_SECURITY,
            noise_bound,
            budget,
        }
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
}

impl ResultLayout {
    pub fn groups(&self) -> usize {
        match self {
            Self::Interleaved { groups, .. } | Self::CiphertextPerClass { groups, .. } => *groups,
        }
    }
    pub fn classes(&self) -> usize {
        match self {
            Self::Interleaved { classes, .. } | Self::CiphertextPerClass { classes, .. } => *classes,
        }
    }
    /// (ciphertext index, slot) of score (g, c).
    pub fn position(&self, g: usize, c: usize) -> (usize, usize) {
        match self {
            Self::Interleaved { stride, .. } => (0, g * stride + c),
            Self::CiphertextPerClass { .. } => (c, g),
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
            ResultLayout::Interleaved { .. } => 1,
            ResultLayout::CiphertextPerClass { classes, .. } => *classes,
        };
        if cts.len() != expected_cts {
            return Err(EvalError::Invalid("number of result ciphertexts does not match the layout"));
        }
        let n = ctx.n();
        let mut decoded = Vec::with_capacity(cts.len());
        for ct in cts {
            let log_w = self.policy.statistical_security as f64 + self.policy.noise_bound.max(1.0).log2();
            if log_w >= ct.meta.scale.log2() || log_w >= 62.0 {
                return Err(EvalError::Invalid("release flooding would exceed the scale"));
            }
            let w = libm::exp2(log_w.ceil()) as u64;
            let mut noise = zeroize::Zeroizing::new(vec![0i64; n]);
            flood_noise(rng, w, &mut noise);
            let dec = decrypt(ctx, sk, *ct)?;
            decoded.push(dec.decode_flooded(&noise)?);
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
