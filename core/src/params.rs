//! CKKS parameter literals, validation, presets and `const` buffer sizing.
//!
//! A [`ParamsLiteral`] is plain data (Lattigo's `ParametersLiteral`); [`Params::new`] validates
//! it: every modulus is an NTT-friendly prime for the ring degree, all are distinct, and
//! log2(Q*P) over the *actual* primes (special primes included) is within the
//! HomomorphicEncryption.org 128-bit bound for uniform ternary secrets (OpenFHE's table,
//! docs/architecture.md §4). The same check runs in `const` context on every preset below, so a preset
//! that breaks it fails to compile.
//!
//! Insecure toy literals exist only with the `insecure-test-params` feature; objects made from
//! them carry [`Params::is_insecure`] and the wire format refuses them outside tests.

use crate::arith::{is_prime_u64, Modulus};

/// Most ciphertext primes any preset uses (the N=2^16 bootstrappable chain has 28).
pub const MAX_Q_PRIMES: usize = 40;
/// Most special primes.
pub const MAX_P_PRIMES: usize = 8;
/// Smallest and largest supported ring degrees (log2).
pub const MIN_LOG_N: u32 = 10;
pub const MAX_LOG_N: u32 = 16;

/// HomomorphicEncryption.org standard, classical 128-bit security, uniform ternary secret:
/// maximum log2(Q*P) for N = 2^10 .. 2^16 (Albrecht et al. 2018 table; 2^16 as in OpenFHE).
pub const SECURITY_128_MAX_LOG_QP: [(u32, u32); 7] = [(10, 27), (11, 54), (12, 109), (13, 218), (14, 438), (15, 881), (16, 1747)];

/// The 128-bit bound for degree 2^log_n, if the table has that row.
pub const fn max_log_qp_128(log_n: u32) -> Option<u32> {
    let mut i = 0;
    while i < SECURITY_128_MAX_LOG_QP.len() {
        if SECURITY_128_MAX_LOG_QP[i].0 == log_n {
            return Some(SECURITY_128_MAX_LOG_QP[i].1);
        }
        i += 1;
    }
    None
}

/// log2(q) to about 2^-40 accuracy, computable in `const` context: integer part from the bit
/// length, fractional bits by repeated squaring of the mantissa.
pub const fn log2_u64(q: u64) -> f64 {
    if q == 0 {
        return f64::NEG_INFINITY;
    }
    let int = 63 - q.leading_zeros();
    let mut y = q as f64 / (1u64 << int) as f64; // in [1, 2)
    let mut frac = 0.0;
    let mut bit = 0.5;
    let mut i = 0;
    while i < 40 {
        y *= y;
        if y >= 2.0 {
            y /= 2.0;
            frac += bit;
        }
        bit /= 2.0;
        i += 1;
    }
    int as f64 + frac
}

/// Secret-key distribution. Only uniform ternary is offered: the security table above is for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretDistribution {
    /// Coefficients uniform in {-1, 0, 1}.
    UniformTernary,
}

/// Plain description of a parameter set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamsLiteral {
    /// Stable identifier carried in every wire header.
    pub id: u16,
    pub name: &'static str,
    pub log_n: u32,
    /// Ciphertext primes q_0 (the base prime) .. q_L, consumed from the top by rescaling.
    pub q: &'static [u64],
    /// Special primes P for hybrid key switching.
    pub p: &'static [u64],
    /// log2 of the default encoding scale.
    pub log_default_scale: u32,
    pub secret: SecretDistribution,
    /// Marks a toy set that does not meet 128-bit security (only with `insecure-test-params`).
    pub insecure: bool,
}

/// Why a literal was refused.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ParamsError {
    DegreeOutOfRange {
        log_n: u32,
    },
    NoCiphertextPrimes,
    TooManyPrimes,
    /// A modulus is not prime, too large, or not 1 mod 2N.
    NotNttFriendly {
        modulus: u64,
    },
    DuplicatePrime {
        modulus: u64,
    },
    /// log2(Q*P) of the actual primes exceeds the 128-bit bound for this N.
    Insecure {
        log_qp: f64,
        max_log_qp: u32,
    },
    /// An insecure literal without the `insecure-test-params` feature.
    InsecureParamsDisabled,
    ScaleOutOfRange,
    UnknownPreset {
        id: u16,
    },
}

impl core::fmt::Display for ParamsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::DegreeOutOfRange { log_n } => write!(f, "log2 N = {log_n} is outside {MIN_LOG_N}..={MAX_LOG_N}"),
            Self::NoCiphertextPrimes => f.write_str("the ciphertext modulus chain is empty"),
            Self::TooManyPrimes => write!(f, "more than {MAX_Q_PRIMES} ciphertext or {MAX_P_PRIMES} special primes"),
            Self::NotNttFriendly { modulus } => write!(f, "modulus {modulus:#x} is not an NTT-friendly prime below 2^61 for this N"),
            Self::DuplicatePrime { modulus } => write!(f, "modulus {modulus:#x} appears twice"),
            Self::Insecure { log_qp, max_log_qp } => {
                write!(f, "log2(QP) = {log_qp:.2} exceeds the 128-bit bound {max_log_qp} for this N")
            }
            Self::InsecureParamsDisabled => f.write_str("insecure test parameters need the `insecure-test-params` feature"),
            Self::ScaleOutOfRange => f.write_str("default scale must be between 2^1 and 2^100"),
            Self::UnknownPreset { id } => write!(f, "unknown parameter preset id {id}"),
        }
    }
}

/// Validation shared by `const` checks and [`Params::new`]. Returns log2(Q*P) on success.
pub const fn validate_literal(lit: &ParamsLiteral) -> Result<f64, ParamsError> {
    if lit.log_n > MAX_LOG_N || (lit.log_n < MIN_LOG_N && !lit.insecure) || lit.log_n < 3 {
        return Err(ParamsError::DegreeOutOfRange { log_n: lit.log_n });
    }
    if lit.q.is_empty() {
        return Err(ParamsError::NoCiphertextPrimes);
    }
    if lit.q.len() > MAX_Q_PRIMES || lit.p.len() > MAX_P_PRIMES {
        return Err(ParamsError::TooManyPrimes);
    }
    if lit.log_default_scale < 1 || lit.log_default_scale > 100 {
        return Err(ParamsError::ScaleOutOfRange);
    }
    let two_n = 1u64 << (lit.log_n + 1);
    let total = lit.q.len() + lit.p.len();
    let mut log_qp = 0.0;
    let mut i = 0;
    while i < total {
        let qi = if i < lit.q.len() { lit.q[i] } else { lit.p[i - lit.q.len()] };
        if Modulus::new(qi).is_none() || !is_prime_u64(qi) || qi % two_n != 1 {
            return Err(ParamsError::NotNttFriendly { modulus: qi });
        }
        let mut j = 0;
        while j < i {
            let qj = if j < lit.q.len() { lit.q[j] } else { lit.p[j - lit.q.len()] };
            if qi == qj {
                return Err(ParamsError::DuplicatePrime { modulus: qi });
            }
            j += 1;
        }
        log_qp += log2_u64(qi);
        i += 1;
    }
    if lit.insecure {
        if cfg!(feature = "insecure-test-params") {
            return Ok(log_qp);
        }
        return Err(ParamsError::InsecureParamsDisabled);
    }
    match max_log_qp_128(lit.log_n) {
        Some(max) if log_qp <= max as f64 => Ok(log_qp),
        Some(max) => Err(ParamsError::Insecure { log_qp, max_log_qp: max }),
        None => Err(ParamsError::DegreeOutOfRange { log_n: lit.log_n }),
    }
}

/// A validated parameter set. `Copy` and allocation-free so firmware can hold it in a static.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    lit: ParamsLiteral,
    log_qp: f64,
}

impl Params {
    /// Validates a literal (see the module docs for what is checked).
    pub const fn new(lit: ParamsLiteral) -> Result<Self, ParamsError> {
        match validate_literal(&lit) {
            Ok(log_qp) => Ok(Self { lit, log_qp }),
            Err(e) => Err(e),
        }
    }

    /// A preset by its wire id (only the presets compiled into this build).
    pub fn from_id(id: u16) -> Result<Self, ParamsError> {
        presets::ALL
            .iter()
            .find(|p| p.id == id)
            .map_or(Err(ParamsError::UnknownPreset { id }), |lit| Self::new(*lit))
    }

    /// A preset by name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        presets::ALL
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .and_then(|lit| Self::new(*lit).ok())
    }

    pub const fn literal(&self) -> &ParamsLiteral {
        &self.lit
    }
    pub const fn id(&self) -> u16 {
        self.lit.id
    }
    pub const fn name(&self) -> &'static str {
        self.lit.name
    }
    pub const fn log_n(&self) -> u32 {
        self.lit.log_n
    }
    pub const fn n(&self) -> usize {
        1 << self.lit.log_n
    }
    /// Slots of a fully packed ciphertext (N/2).
    pub const fn max_slots(&self) -> usize {
        1 << (self.lit.log_n - 1)
    }
    pub const fn q(&self) -> &'static [u64] {
        self.lit.q
    }
    pub const fn p(&self) -> &'static [u64] {
        self.lit.p
    }
    /// Highest level: a fresh ciphertext has `max_level() + 1` primes.
    pub const fn max_level(&self) -> usize {
        self.lit.q.len() - 1
    }
    pub fn q_modulus(&self, i: usize) -> Option<Modulus> {
        self.lit.q.get(i).and_then(|&q| Modulus::new(q))
    }
    pub fn p_modulus(&self, i: usize) -> Option<Modulus> {
        self.lit.p.get(i).and_then(|&q| Modulus::new(q))
    }
    pub const fn log_default_scale(&self) -> u32 {
        self.lit.log_default_scale
    }
    pub fn default_scale(&self) -> f64 {
        libm::exp2(self.lit.log_default_scale as f64)
    }
    /// log2(Q*P) over the actual primes.
    pub const fn log_qp(&self) -> f64 {
        self.log_qp
    }
    /// log2(Q) over the ciphertext primes only.
    pub fn log_q(&self) -> f64 {
        self.lit.q.iter().map(|&q| log2_u64(q)).sum()
    }
    /// The 128-bit bound this set is checked against.
    pub const fn security_bound(&self) -> Option<u32> {
        max_log_qp_128(self.lit.log_n)
    }
    /// True for toy sets built with `insecure-test-params`.
    pub const fn is_insecure(&self) -> bool {
        self.lit.insecure
    }
    pub const fn secret_distribution(&self) -> SecretDistribution {
        self.lit.secret
    }
}

/// u64 words of one RNS polynomial with `primes` limbs.
pub const fn poly_words(n: usize, primes: usize) -> usize {
    n * primes
}
/// u64 words of a ciphertext (c0, c1) at `level` (level + 1 primes).
pub const fn ct_words(n: usize, level: usize) -> usize {
    2 * poly_words(n, level + 1)
}
/// u64 words of a public key's `b` half over the whole Q chain (the `a` half is a seed).
pub const fn pk_words(n: usize, q_primes: usize) -> usize {
    poly_words(n, q_primes)
}

/// NTT-friendly primes (all = 1 mod 2^17, so they serve every N up to 2^16), grouped by size.
/// Generated by searching outward from 2^k in steps of 2^17 with Miller-Rabin; the 40-bit ones
/// alternate above and below 2^40 so that the scale stays close to 2^40 across rescalings.
pub mod primes {
    /// 60-bit base prime q0 (2^60 - 2^18 + 1).
    pub const Q60: u64 = 0x0fff_ffff_fffc_0001;
    /// Scale primes near 2^40.
    pub const Q40: [u64; 12] = [
        0x100_0014_0001,
        0x0ff_ffe8_0001,
        0x0ff_ffc4_0001,
        0x100_003e_0001,
        0x0ff_ffb2_0001,
        0x100_0050_0001,
        0x0ff_ff94_0001,
        0x0ff_ff8a_0001,
        0x0ff_ff82_0001,
        0x0ff_ff78_0001,
        0x100_0096_0001,
        0x100_00a4_0001,
    ];
    /// 60-bit special prime of the N=2^14 set.
    pub const P60: u64 = 0x0fff_ffff_ff6a_0001;
    /// 61-bit special primes.
    pub const P61: [u64; 6] = [
        0x1fff_ffff_ffe0_0001,
        0x1fff_ffff_ffc8_0001,
        0x1fff_ffff_ffb4_0001,
        0x1fff_ffff_ff50_0001,
        0x1fff_ffff_ff42_0001,
        0x1fff_ffff_ff38_0001,
    ];
    /// 61-bit base prime of the N=2^15 set.
    pub const Q61: u64 = 0x1fff_ffff_fe4c_0001;
    /// Scale primes near 2^55.
    pub const Q55: [u64; 11] = [
        0x80_0000_0008_0001,
        0x80_0000_0044_0001,
        0x7f_ffff_ffba_0001,
        0x80_0000_0050_0001,
        0x7f_ffff_ffaa_0001,
        0x80_0000_005e_0001,
        0x7f_ffff_ff7e_0001,
        0x7f_ffff_ff38_0001,
        0x80_0000_00ca_0001,
        0x80_0000_00e0_0001,
        0x7f_ffff_fef0_0001,
    ];
    /// Bootstrapping SlotsToCoeffs primes.
    pub const Q39: [u64; 3] = [0x7f_ffe6_0001, 0x7f_ffe4_0001, 0x7f_ffe0_0001];
    /// Bootstrapping EvalMod primes (a degree-31 polynomial in 6 levels and three double-angle
    /// steps: see `clifhe_std::bootstrap::evalmod`).
    pub const Q60_BOOT: [u64; 9] = [
        0x0fff_ffff_ff84_0001,
        0x0fff_ffff_ff5a_0001,
        0x0fff_ffff_ff2a_0001,
        0x0fff_ffff_ff24_0001,
        0x0fff_ffff_fefe_0001,
        0x0fff_ffff_feca_0001,
        0x0fff_ffff_fe9e_0001,
        0x0fff_ffff_fe7c_0001,
        0x0fff_ffff_fe74_0001,
    ];
    /// Bootstrapping CoeffsToSlots primes.
    pub const Q56: [u64; 3] = [0xff_ffff_fff0_0001, 0xff_ffff_ffd8_0001, 0xff_ffff_ffd2_0001];
}

/// Parameter presets (docs/architecture.md §5). Each is checked at compile time.
pub mod presets {
    use super::primes::*;
    use super::{ParamsLiteral, SecretDistribution};

    const fn concat<const N: usize>(parts: &[&[u64]]) -> [u64; N] {
        let mut out = [0u64; N];
        let mut k = 0;
        let mut i = 0;
        while i < parts.len() {
            let mut j = 0;
            while j < parts[i].len() {
                out[k] = parts[i][j];
                k += 1;
                j += 1;
            }
            i += 1;
        }
        assert!(k == N, "preset chain length mismatch");
        out
    }

    const LEVELED_N14_Q: [u64; 8] = concat(&[&[Q60], &[Q40[0], Q40[1], Q40[2], Q40[3], Q40[4], Q40[5], Q40[6]]]);

    /// N=2^14, q0 60 + 7 x 40, P 60: log2 QP = 400 <= 438. Device encryption and the GNN
    /// without bootstrapping; 8192 slots. The device encrypts with exactly these primes.
    pub const LEVELED_N14: ParamsLiteral = ParamsLiteral {
        id: 1,
        name: "leveled-n14",
        log_n: 14,
        q: &LEVELED_N14_Q,
        p: &[P60],
        log_default_scale: 40,
        secret: SecretDistribution::UniformTernary,
        insecure: false,
    };

    const PRIVATE_N15_Q: [u64; 12] = concat(&[&[Q61], &Q55]);
    /// N=2^15, q0 61 + 11 x 55, P 2 x 61: log2 QP = 788 <= 881. Enough precision to flood
    /// the output for circuit privacy.
    pub const PRIVATE_N15: ParamsLiteral = ParamsLiteral {
        id: 2,
        name: "private-n15",
        log_n: 15,
        q: &PRIVATE_N15_Q,
        p: &[P61[0], P61[1]],
        log_default_scale: 55,
        secret: SecretDistribution::UniformTernary,
        insecure: false,
    };

    const BOOTSTRAP_N16_Q: [u64; 28] = concat(&[&[Q60], &Q40, &Q39, &Q60_BOOT, &Q56]);
    /// N=2^16: residual q0 60 + 12 x 40, then the bootstrapping levels in the order they are
    /// consumed from the top (CoeffsToSlots 3 x 56, EvalMod 9 x 60, SlotsToCoeffs 3 x 39),
    /// P 6 x 61: log2 QP = 1731 <= 1747. Its first 8 primes are the N=2^14 chain's.
    /// (the original design's starting point had 4 x 56 + 8 x 60; one CoeffsToSlots level moved to EvalMod
    /// because EvalMod needs 9 levels at K = 16 for 23+ bits: degree 31 fitted near the
    /// integers with three double angles, or the uniform degree-63 interpolant with two; see
    /// `clifhe_std::bootstrap::evalmod`.)
    pub const BOOTSTRAP_N16: ParamsLiteral = ParamsLiteral {
        id: 3,
        name: "bootstrap-n16",
        log_n: 16,
        q: &BOOTSTRAP_N16_Q,
        p: &P61,
        log_default_scale: 40,
        secret: SecretDistribution::UniformTernary,
        insecure: false,
    };

    /// N=2^12, q0 60 + 40 (the first two primes of the host chain), no special prime:
    /// log2 Q = 100 <= 109. Encryption-only device set for the SEAL-Embedded comparison
    /// (N=4096); one multiplication deep, no key switching.
    pub const DEVICE_N12: ParamsLiteral = ParamsLiteral {
        id: 4,
        name: "device-n12",
        log_n: 12,
        q: &[Q60, Q40[0]],
        p: &[],
        log_default_scale: 40,
        secret: SecretDistribution::UniformTernary,
        insecure: false,
    };

    /// INSECURE: N=2^10 with the N=2^14 chain shape (q0 60 + 3 x 40, P 60). Unit tests only.
    #[cfg(feature = "insecure-test-params")]
    pub const INSECURE_TEST_N10: ParamsLiteral = ParamsLiteral {
        id: 0xff01,
        name: "INSECURE-test-n10",
        log_n: 10,
        q: &[Q60, Q40[0], Q40[1], Q40[2]],
        p: &[P60],
        log_default_scale: 40,
        secret: SecretDistribution::UniformTernary,
        insecure: true,
    };

    /// INSECURE: N=2^12 with the full N=2^14 chain (q0 60 + 7 x 40, P 60). Unit tests only.
    #[cfg(feature = "insecure-test-params")]
    pub const INSECURE_TEST_N12: ParamsLiteral = ParamsLiteral {
        id: 0xff02,
        name: "INSECURE-test-n12",
        log_n: 12,
        q: &LEVELED_N14_Q,
        p: &[P60],
        log_default_scale: 40,
        secret: SecretDistribution::UniformTernary,
        insecure: true,
    };

    /// INSECURE: N=2^12 with the bootstrapping chain shape of [`BOOTSTRAP_N16`] and only two
    /// residual levels (q0 60 + 2 x 40, 3 x 39, 9 x 60, 3 x 56; P 6 x 61). Runs the full
    /// bootstrapping code in CI in seconds. Unit tests only.
    #[cfg(feature = "insecure-test-params")]
    pub const INSECURE_TEST_BOOT_N12: ParamsLiteral = ParamsLiteral {
        id: 0xff03,
        name: "INSECURE-test-boot-n12",
        log_n: 12,
        q: &INSECURE_TEST_BOOT_N12_Q,
        p: &P61,
        log_default_scale: 40,
        secret: SecretDistribution::UniformTernary,
        insecure: true,
    };
    #[cfg(feature = "insecure-test-params")]
    const INSECURE_TEST_BOOT_N12_Q: [u64; 18] = concat(&[&[Q60, Q40[0], Q40[1]], &Q39, &Q60_BOOT, &Q56]);

    #[cfg(not(feature = "insecure-test-params"))]
    pub const ALL: &[ParamsLiteral] = &[LEVELED_N14, PRIVATE_N15, BOOTSTRAP_N16, DEVICE_N12];
    #[cfg(feature = "insecure-test-params")]
    pub const ALL: &[ParamsLiteral] = &[
        LEVELED_N14,
        PRIVATE_N15,
        BOOTSTRAP_N16,
        DEVICE_N12,
        INSECURE_TEST_N10,
        INSECURE_TEST_N12,
        INSECURE_TEST_BOOT_N12,
    ];

    // Compile-time validation: a preset that is not NTT-friendly or breaks the 128-bit bound
    // does not build.
    const _: () = {
        let mut i = 0;
        while i < ALL.len() {
            assert!(super::validate_literal(&ALL[i]).is_ok(), "a parameter preset fails validation");
            i += 1;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_meet_the_128_bit_bound_on_their_actual_primes() {
        for lit in presets::ALL.iter().filter(|l| !l.insecure) {
            let p = Params::new(*lit).unwrap();
            let exact: f64 = lit.q.iter().chain(lit.p).map(|&q| (q as f64).log2()).sum();
            assert!((p.log_qp() - exact).abs() < 1e-6, "{} {} {}", lit.name, p.log_qp(), exact);
            assert!(p.log_qp() <= p.security_bound().unwrap() as f64);
            assert!(!p.is_insecure());
        }
        let l14 = Params::new(presets::LEVELED_N14).unwrap();
        assert!((l14.log_qp() - 400.0).abs() < 0.01);
        let b16 = Params::new(presets::BOOTSTRAP_N16).unwrap();
        assert!((b16.log_qp() - 1731.0).abs() < 0.01, "{}", b16.log_qp());
        let p15 = Params::new(presets::PRIVATE_N15).unwrap();
        assert!((p15.log_qp() - 788.0).abs() < 0.01);
    }

    #[test]
    fn device_and_host_chains_share_primes() {
        assert_eq!(presets::BOOTSTRAP_N16.q[..8], *presets::LEVELED_N14.q);
        assert_eq!(presets::DEVICE_N12.q, &presets::LEVELED_N14.q[..2]);
    }

    #[test]
    fn over_large_chain_is_rejected() {
        // N = 2^14 with 9 x 60-bit primes: 540 > 438.
        let lit = ParamsLiteral {
            q: &[
                primes::Q60,
                primes::Q60_BOOT[0],
                primes::Q60_BOOT[1],
                primes::Q60_BOOT[2],
                primes::Q60_BOOT[3],
                primes::Q60_BOOT[4],
                primes::Q60_BOOT[5],
                primes::Q60_BOOT[6],
            ],
            p: &[primes::P60],
            ..presets::LEVELED_N14
        };
        match Params::new(lit) {
            Err(ParamsError::Insecure { log_qp, max_log_qp: 438 }) => assert!(log_qp > 539.0),
            other => panic!("expected Insecure, got {other:?}"),
        }
        // The special prime alone tips a borderline chain over: counted, not ignored.
        let lit = ParamsLiteral {
            log_n: 12,
            q: &[primes::Q60, primes::Q40[0]],
            p: &[primes::P60],
            ..presets::DEVICE_N12
        };
        assert!(matches!(Params::new(lit), Err(ParamsError::Insecure { .. })));
    }

    #[test]
    fn malformed_literals_are_rejected() {
        let base = presets::LEVELED_N14;
        assert!(matches!(
            Params::new(ParamsLiteral { q: &[], ..base }),
            Err(ParamsError::NoCiphertextPrimes)
        ));
        assert!(matches!(
            Params::new(ParamsLiteral { q: &[97], ..base }),
            Err(ParamsError::NotNttFriendly { .. })
        ));
        assert!(matches!(
            Params::new(ParamsLiteral {
                q: &[primes::Q60, primes::Q60],
                ..base
            }),
            Err(ParamsError::DuplicatePrime { .. })
        ));
        assert!(matches!(
            Params::new(ParamsLiteral { p: &[primes::Q60], ..base }),
            Err(ParamsError::DuplicatePrime { .. })
        ));
        assert!(matches!(
            Params::new(ParamsLiteral { log_n: 17, ..base }),
            Err(ParamsError::DegreeOutOfRange { .. })
        ));
        #[cfg(not(feature = "insecure-test-params"))]
        assert!(matches!(
            Params::new(ParamsLiteral { insecure: true, ..base }),
            Err(ParamsError::InsecureParamsDisabled)
        ));
        assert!(Params::from_id(9999).is_err());
        assert_eq!(Params::from_name("LEVELED-N14").unwrap().id(), 1);
    }

    #[test]
    fn log2_is_accurate() {
        for &q in &[primes::Q60, primes::Q40[0], primes::P61[5], 3, 1 << 40, u64::MAX] {
            assert!((log2_u64(q) - (q as f64).log2()).abs() < 1e-9);
        }
    }
}
