//! What a release can tell about the secret key, counted in bits, and the budget a key set may
//! spend before it must be rotated.
//!
//! Flooding hides the noise of a decryption, not its message. A vendor that breaks protocol can
//! send a ciphertext whose *message* depends on the secret key (c1 = Delta + a', c0 = b' for a
//! fresh encryption of zero (b', a') decrypts to Delta * s + e), and no check on a ciphertext
//! can tell it from a real score. So every release is treated as an answer to an adaptive query
//! about s, and charged for the most it can say:
//! - an argmax over C classes: log2(C) bits per released patient;
//! - a score rounded to D decimals and clamped to [-R, R] ([`ROUNDED_RANGE`]):
//!   log2(2 R 10^D + 1) bits per released score;
//! - a refusal after the vendor's result was read: 1 bit (the vendor learns that it failed).
//!
//! The budget ([`default_budget_bits`]) follows the "LWE with side information" framework of
//! Dachman-Soled, Ducas, Gong and Rossi (CRYPTO 2020): a perfect hint <s, v> = l removes one
//! dimension from the lattice attack. We charge every leaked bit as a whole perfect hint (an
//! adaptive bit can at best pin one more linear constraint; a hint on one ternary coefficient
//! carries log2(3) bits, so this overcharges), and allow a key set to lose only the dimensions
//! its parameters can spare while staying within the HomomorphicEncryption.org 128-bit table:
//! with log2 QP used and the table's bound B(N) for dimension N, and the bound taken as linear
//! in N (it is, to within 1% across the table), the key stays at >= 128 bits while
//! N - leaked >= N log2 QP / B(N). `docs/leakage.md` works the numbers for every preset.

use crate::privacy::MAX_LOG_FLOOD;
use clifhe_core::params::{max_log_qp_128, Params};

/// Largest |score| a rounded release carries: scores are clamped to [-R, R] before rounding,
/// so each rounded value is one of at most 2 R 10^D + 1 values.
pub const ROUNDED_RANGE: f64 = 1024.0;

/// Bits a refusal costs once the vendor's result was read.
pub const REFUSAL_BITS: f64 = 1.0;

/// The dimensions `params` can lose to hints and keep its 128-bit bound: N - ceil(N log2 QP /
/// B(N)); 0 for a set without a bound (the insecure test sets) or without a margin.
pub fn margin_dimensions(params: &Params) -> u64 {
    let Some(bound) = max_log_qp_128(params.log_n()) else {
        return 0;
    };
    let n = params.n() as f64;
    let needed = (n * params.log_qp() / f64::from(bound)).ceil();
    (n - needed).max(0.0) as u64
}

/// The largest leakage budget, in bits, a key set of `params` may have (see module docs).
pub fn default_budget_bits(params: &Params) -> u64 {
    margin_dimensions(params)
}

/// What one release discloses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Disclosure {
    /// The argmax class of each patient.
    Argmax,
    /// Every score rounded to `digits` decimals (clamped to [-R, R]), and the argmax.
    Rounded {
        /// Decimal digits.
        digits: u32,
    },
}

impl Disclosure {
    /// Bits a release of `patients` patients over `classes` classes costs.
    pub fn cost_bits(self, patients: usize, classes: usize) -> f64 {
        let per_patient = match self {
            Self::Argmax => (classes.max(1) as f64).log2(),
            Self::Rounded { digits } => {
                let values = 2.0 * ROUNDED_RANGE * 10f64.powi(digits.min(300) as i32) + 1.0;
                classes as f64 * values.log2()
            }
        };
        patients as f64 * per_patient
    }

    /// Bits of precision the released values need: the decoded flood's standard deviation
    /// stays below 2^-bits of a score unit. An argmax needs the flood far below the smallest
    /// gap between two scores (16 bits: 1.5e-5); a rounded score needs its last digit plus
    /// four bits.
    pub fn precision_bits(self) -> u32 {
        match self {
            Self::Argmax => 16,
            Self::Rounded { digits } => (f64::from(digits.min(15)) * 10f64.log2()).ceil() as u32 + 4,
        }
    }
}

/// The hospital's own release flood (log2 of the uniform width W) for results at `scale`: as
/// large as `precision_bits` allow, since the decoded flood has standard deviation
/// sqrt(N/6) W / scale per slot, and at most the sampler's 2^[`MAX_LOG_FLOOD`] (results at
/// large scales, e.g. an equivariant model's at 2^150, would allow more). Independent of
/// anything the vendor states.
pub fn hospital_flood_log2(params: &Params, scale: f64, precision_bits: u32) -> u32 {
    let log_sd = (params.n() as f64 / 6.0).sqrt().log2();
    ((scale.log2() - f64::from(precision_bits) - log_sd).floor().max(0.0) as u32).min(MAX_LOG_FLOOD)
}

/// The widest flood [`hospital_flood_log2`] gives for results at `scale` over every disclosure
/// (the least precise: scores rounded to 0 digits): what the vendor keeps room for in the
/// modulus of the results it sanitises, so that any release the hospital asks for fits.
pub fn widest_hospital_flood_log2(params: &Params, scale: f64) -> u32 {
    let least = Disclosure::Argmax
        .precision_bits()
        .min(Disclosure::Rounded { digits: 0 }.precision_bits());
    hospital_flood_log2(params, scale, least)
}

/// Format tag of a leakage ledger.
pub const LEDGER_FORMAT: &str = "clifhe-leakage/1";

/// A key set's leakage account: created with the key set, spent by every release and refusal,
/// never reset (a spent key set is rotated, not refilled).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LeakageLedger {
    /// [`LEDGER_FORMAT`].
    pub format: String,
    /// The key set it accounts for.
    pub keyset_fingerprint: String,
    /// Preset name.
    pub preset: String,
    /// Bits this key set may disclose ([`default_budget_bits`] at most).
    pub budget_bits: f64,
    /// Bits disclosed so far.
    pub spent_bits: f64,
    /// Releases made.
    pub releases: u64,
    /// Refusals charged.
    pub refusals: u64,
}

impl LeakageLedger {
    /// A fresh ledger for a key set of `params` with `budget_bits` (refused above
    /// [`default_budget_bits`]: a larger budget would leave the key below 128 bits by the
    /// module's argument).
    pub fn new(params: &Params, keyset_fingerprint: &str, budget_bits: Option<u64>) -> Result<Self, super::ProtocolError> {
        let max = default_budget_bits(params);
        let budget = budget_bits.unwrap_or(max);
        if budget > max {
            return Err(super::ProtocolError::refused(
                "leakage budget",
                format!(
                    "{budget} bits exceeds the {max} bits {} can disclose and keep 128-bit security",
                    params.name()
                ),
            ));
        }
        Ok(Self {
            format: LEDGER_FORMAT.into(),
            keyset_fingerprint: keyset_fingerprint.into(),
            preset: params.name().into(),
            budget_bits: budget as f64,
            spent_bits: 0.0,
            releases: 0,
            refusals: 0,
        })
    }

    /// Bits left.
    pub fn remaining_bits(&self) -> f64 {
        (self.budget_bits - self.spent_bits).max(0.0)
    }

    /// Parses a ledger and checks it belongs to the key set (`keyset_fingerprint`, `params`)
    /// and is sane; anything else fails closed.
    pub fn from_json_checked(bytes: &[u8], params: &Params, keyset_fingerprint: &str) -> Result<Self, super::ProtocolError> {
        let l: Self = serde_json::from_slice(bytes).map_err(|e| super::ProtocolError::corrupt("leakage ledger", e))?;
        let sane = l.format == LEDGER_FORMAT
            && l.preset == params.name()
            && l.keyset_fingerprint == keyset_fingerprint
            && l.budget_bits.is_finite()
            && (0.0..=default_budget_bits(params) as f64).contains(&l.budget_bits)
            && l.spent_bits.is_finite()
            && l.spent_bits >= 0.0;
        if !sane {
            return Err(super::ProtocolError::corrupt(
                "leakage ledger",
                "format, key set, budget or count out of range",
            ));
        }
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default budgets documented in docs/leakage.md and SECURITY.md, from each preset's
    /// log2(QP) on its actual primes against the 128-bit table.
    #[test]
    fn default_budgets_are_the_documented_margins() {
        for (preset, bits) in [
            ("leveled-n14", 1421),
            ("private-n15", 3459),
            ("bootstrap-n16", 600),
            ("device-n12", 338),
        ] {
            let params = Params::from_name(preset).unwrap();
            assert_eq!(default_budget_bits(&params), bits, "{preset}");
            assert_eq!(margin_dimensions(&params), bits, "{preset}");
        }
    }

    #[test]
    fn costs_follow_the_disclosure() {
        assert_eq!(Disclosure::Argmax.cost_bits(10, 2), 10.0);
        assert!((Disclosure::Argmax.cost_bits(1, 3) - 3f64.log2()).abs() < 1e-12);
        let per_score = (2.0 * ROUNDED_RANGE * 1e4 + 1.0).log2();
        assert!((Disclosure::Rounded { digits: 4 }.cost_bits(12, 2) - 24.0 * per_score).abs() < 1e-9);
    }
}
