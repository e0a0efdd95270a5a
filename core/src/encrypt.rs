//! Encryption: public-key and seeded secret-key, streamed one prime at a time.
//!
//! The message enters as integer-valued coefficients from the encoder (`Plaintext`), encoded
//! once. For every prime q_i the encryptor then produces that prime's ciphertext limbs from
//! the message, the per-encryption noise (sampled once, shared by all primes) and the key's
//! limb, so a device needs O(N) words of RAM whatever the number of primes (docs/architecture.md §4).
//! The one-shot host functions are loops over the same per-prime code, which is why streamed
//! and one-shot ciphertexts are byte-identical for the same randomness.
//!
//! Public-key encryption (Cheon et al. 2017, section 3.4):
//!   c0 = u*b + e0 + m,  c1 = u*a + e1,  u ternary, e0, e1 centred binomial.
//! Seeded secret-key encryption: c1 = a (uniform, from a fresh public seed),
//!   c0 = -a*s + e + m.

use crate::arith::Montgomery;
use crate::error::{check_len, Error};
use crate::keys::{PublicKey, SecretKey};
use crate::ntt::{NegacyclicNtt, NttTable};
use crate::params::Params;
use crate::rns::reduce_small_into;
use crate::sample::{expand_public_into, expand_uniform, public_stream, sample_cbd, sample_ternary, SeedPurpose, SEED_BYTES};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroize;

/// A coefficient type of [`Plaintext`]: integer-valued `f64` from the floating-point encoder
/// ([`crate::encode::encode_real`]), or `i64` from the integer encoder
/// ([`crate::encode::fixed::encode_real_fixed`]), which a device uses so that no floating-point
/// operation touches patient data.
pub trait PlainCoeff: zeroize::DefaultIsZeroes + sealed::Sealed {
    /// What reduces coefficients of this type modulo one prime, made once per prime
    /// ([`PlainCoeff::reducer`]) for the coefficients of a limb.
    type Reducer;
    /// The reducer for `m`.
    fn reducer(m: &crate::arith::Modulus) -> Self::Reducer;
    /// The coefficient in the form the reducers take, computed once for all the primes of a
    /// chain (`f64`: its mantissa and exponent split out, [`crate::arith::F64Split`]; the
    /// integer types: themselves).
    type Prepared: zeroize::DefaultIsZeroes;
    /// This coefficient prepared.
    fn prepare(self) -> Self::Prepared;
    /// A prepared coefficient modulo the reducer's prime, exactly.
    fn residue_prepared(p: Self::Prepared, r: &Self::Reducer) -> u64;
    /// The coefficient modulo the reducer's prime, exactly.
    #[inline(always)]
    fn residue(self, r: &Self::Reducer) -> u64 {
        Self::residue_prepared(self.prepare(), r)
    }
    /// Whether the encryptor can reduce this coefficient exactly.
    fn is_valid(self) -> bool;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f64 {}
    impl Sealed for i64 {}
    impl Sealed for i128 {}
}

impl PlainCoeff for f64 {
    type Reducer = crate::arith::F64Reducer;
    fn reducer(m: &crate::arith::Modulus) -> Self::Reducer {
        crate::arith::F64Reducer::new(m)
    }
    type Prepared = crate::arith::F64Split;
    #[inline(always)]
    fn prepare(self) -> Self::Prepared {
        crate::arith::F64Split::new(self)
    }
    /// Exact for any integer-valued `f64` ([`crate::arith::F64Reducer`]: no branch on the value
    /// below `2^126`, but a table read indexed by its exponent, so not constant time; the
    /// integer coefficient types are).
    #[inline(always)]
    fn residue_prepared(p: Self::Prepared, r: &Self::Reducer) -> u64 {
        r.reduce_split(p)
    }
    fn is_valid(self) -> bool {
        self.is_finite()
    }
}

impl PlainCoeff for i64 {
    type Reducer = crate::arith::Modulus;
    fn reducer(m: &crate::arith::Modulus) -> Self::Reducer {
        *m
    }
    type Prepared = i64;
    #[inline(always)]
    fn prepare(self) -> Self::Prepared {
        self
    }
    /// Branch-free Barrett reduction ([`crate::arith::Modulus::reduce_i64`]): constant time.
    #[inline(always)]
    fn residue_prepared(p: Self::Prepared, m: &Self::Reducer) -> u64 {
        m.reduce_i64(p)
    }
    fn is_valid(self) -> bool {
        true
    }
}

impl PlainCoeff for i128 {
    type Reducer = crate::arith::Modulus;
    fn reducer(m: &crate::arith::Modulus) -> Self::Reducer {
        *m
    }
    type Prepared = i128;
    #[inline(always)]
    fn prepare(self) -> Self::Prepared {
        self
    }
    /// Branch-free: the magnitude by the two-word Barrett reduction, the sign by a mask. For
    /// scales beyond 2^63 (the circuit-private preset's inputs sit at 2^80), constant time.
    #[inline(always)]
    fn residue_prepared(p: Self::Prepared, m: &Self::Reducer) -> u64 {
        m.reduce_i128(p)
    }
    fn is_valid(self) -> bool {
        true
    }
}

/// An encoded message: N integer coefficients (scale already applied), as `f64` (the default)
/// or `i64` ([`PlainCoeff`]), and the scale and slot count they were encoded with. Patient
/// data: wiped on drop.
pub struct Plaintext<S: AsRef<[C]> + AsMut<[C]>, C: PlainCoeff = f64> {
    coeffs: S,
    scale: f64,
    log_slots: u32,
    _coeff: core::marker::PhantomData<C>,
}

#[cfg(feature = "alloc")]
pub type PlaintextOwned = Plaintext<alloc::vec::Vec<f64>>;

impl<C: PlainCoeff, S: AsRef<[C]> + AsMut<[C]>> Drop for Plaintext<S, C> {
    fn drop(&mut self) {
        self.coeffs.as_mut().zeroize();
    }
}

impl<C: PlainCoeff, S: AsRef<[C]> + AsMut<[C]>> Plaintext<S, C> {
    /// Wraps encoder output. Coefficients must be finite integers (the encoder guarantees it).
    pub fn from_coeffs(coeffs: S, scale: f64, log_slots: u32) -> Result<Self, Error> {
        if !(scale.is_finite() && scale >= 1.0) {
            return Err(Error::BadScale);
        }
        if coeffs.as_ref().iter().any(|c| !c.is_valid()) {
            return Err(Error::Encode("non-finite coefficient"));
        }
        Ok(Self {
            coeffs,
            scale,
            log_slots,
            _coeff: core::marker::PhantomData,
        })
    }
    pub fn coeffs(&self) -> &[C] {
        self.coeffs.as_ref()
    }
    pub fn scale(&self) -> f64 {
        self.scale
    }
    pub fn log_slots(&self) -> u32 {
        self.log_slots
    }
}

impl<C: PlainCoeff + FixedCoeff, S: AsRef<[C]> + AsMut<[C]>> Plaintext<S, C> {
    /// Wraps the integer encoder's output (`i64`, or `i128` for scales beyond 2^63) at scale
    /// `2^log_scale` (`1..=1022`), without any floating-point operation: the scale's `f64` is
    /// assembled from its exponent bits, so a device's encryption path stays free of
    /// soft-float calls.
    pub fn from_fixed(coeffs: S, log_scale: u32, log_slots: u32) -> Result<Self, Error> {
        if log_scale == 0 || log_scale > 1022 {
            return Err(Error::BadScale);
        }
        Ok(Self {
            coeffs,
            scale: f64::from_bits(u64::from(1023 + log_scale) << 52),
            log_slots,
            _coeff: core::marker::PhantomData,
        })
    }
}

/// The integer coefficient types of the fixed-point encoder ([`Plaintext::from_fixed`]).
pub trait FixedCoeff: sealed::Sealed {}
impl FixedCoeff for i64 {}
impl FixedCoeff for i128 {}

#[cfg(feature = "alloc")]
impl Plaintext<alloc::vec::Vec<f64>> {
    /// Encodes `values` into `slots = values.len()` slots (a power of two up to N/2).
    pub fn encode(params: &Params, values: &[crate::encode::Complex], scale: f64) -> Result<Self, Error> {
        let n = params.n();
        let mut coeffs = alloc::vec![0f64; n];
        // Hosts keep the twiddles per slot count; without `std` they are computed per call.
        #[cfg(feature = "std")]
        let encoded = crate::encode::EncoderTables::shared(n, values.len()).and_then(|t| t.encode(values, scale, &mut coeffs));
        #[cfg(not(feature = "std"))]
        let encoded = {
            let mut scratch = alloc::vec![crate::encode::Complex::default(); crate::encode::encode_scratch_len(values.len())];
            crate::encode::encode(values, n, scale, &mut coeffs, &mut scratch)
        };
        encoded.map_err(|_| Error::Encode("encoder refused the values"))?;
        Self::from_coeffs(coeffs, scale, values.len().trailing_zeros())
    }
    /// Real-valued convenience form of [`Plaintext::encode`].
    pub fn encode_real(params: &Params, values: &[f64], scale: f64) -> Result<Self, Error> {
        // A copy of the (patient) values: wiped when it goes out of scope, on error paths too.
        let c: zeroize::Zeroizing<alloc::vec::Vec<_>> =
            zeroize::Zeroizing::new(values.iter().map(|&v| crate::encode::Complex::from_real(v)).collect());
        Self::encode(params, &c, scale)
    }
}

/// log2 of the spacing of a message's coefficients in the ring: a plaintext of `len`
/// coefficients (a power of two dividing `n`) stands for the degree-`n` polynomial whose
/// coefficient `k * n / len` is its `k`-th and every other one zero. A sparse-slot message
/// (s slots lie in the subring of `X^(n / 2s)`) can so be held in `2s` words instead of `n`:
/// what lets a device's message take 128 bytes instead of 32 KiB. `len == n` is the usual form.
fn compact_log_gap(len: usize, n: usize) -> Result<u32, Error> {
    if len == 0 || !len.is_power_of_two() || len > n || !n.is_power_of_two() {
        return Err(Error::BufferLength { expected: n, found: len });
    }
    Ok(n.trailing_zeros() - len.trailing_zeros())
}

/// [`add_residues_and_error`] for plaintext coefficients, each reduced as it comes (the
/// streaming encryptors, one prime at a time).
fn add_message_and_error<C: PlainCoeff>(msg: &[C], log_gap: u32, e: &[i8], m: &crate::arith::Modulus, out: &mut [u64], accumulate: bool) {
    let reducer = C::reducer(m);
    add_residues_and_error(msg, |c| c.residue(&reducer), log_gap, e, m, out, accumulate);
}

/// `out[i] (+)= m_i + e_i mod q` for one prime, with the message in compact form (see
/// [`compact_log_gap`]) as coefficients of type `T` that `residue` reduces modulo q;
/// `accumulate` adds to `out` instead of overwriting it. The errors go in first, then the
/// message at every 2^log_gap-th coefficient: the positions are public (a stride), never a
/// division or a branch on a value. Constant time in the message values for the integer
/// coefficient types (`i64`, `i128`); not for `f64` ones, whose reduction reads a table entry
/// chosen by each coefficient's exponent ([`crate::arith::F64Reducer`]).
fn add_residues_and_error<T: Copy>(
    msg: &[T],
    residue: impl Fn(T) -> u64,
    log_gap: u32,
    e: &[i8],
    m: &crate::arith::Modulus,
    out: &mut [u64],
    accumulate: bool,
) {
    add_error(e, m, out, accumulate);
    for (o, &c) in out.iter_mut().step_by(1 << log_gap).zip(msg) {
        *o = m.add(*o, residue(c));
    }
}

/// `out[i] (+)= e_i mod q` for one prime (a masked addition per coefficient).
fn add_error(e: &[i8], m: &crate::arith::Modulus, out: &mut [u64], accumulate: bool) {
    if accumulate {
        for (o, &ei) in out.iter_mut().zip(e) {
            *o = m.add(*o, m.reduce_i8(ei));
        }
    } else {
        for (o, &ei) in out.iter_mut().zip(e) {
            *o = m.reduce_i8(ei);
        }
    }
}

/// Per-encryption secret randomness of public-key encryption over caller storage (3 x N i8).
/// Wiped on drop.
pub struct PkEncryptionNoise<S: AsRef<[i8]> + AsMut<[i8]>> {
    u: S,
    e0: S,
    e1: S,
}

impl<S: AsRef<[i8]> + AsMut<[i8]>> Drop for PkEncryptionNoise<S> {
    fn drop(&mut self) {
        self.u.as_mut().zeroize();
        self.e0.as_mut().zeroize();
        self.e1.as_mut().zeroize();
    }
}

impl<S: AsRef<[i8]> + AsMut<[i8]>> PkEncryptionNoise<S> {
    /// Samples u (ternary), then e0, then e1 (centred binomial) from `rng`, in that order.
    pub fn sample_into<R: RngCore + CryptoRng>(rng: &mut R, mut u: S, mut e0: S, mut e1: S) -> Result<Self, Error> {
        let n = u.as_ref().len();
        check_len(e0.as_ref().len(), n)?;
        check_len(e1.as_ref().len(), n)?;
        sample_ternary(rng, u.as_mut());
        sample_cbd(rng, e0.as_mut());
        sample_cbd(rng, e1.as_mut());
        Ok(Self { u, e0, e1 })
    }
}

/// Public-key encryption of one message, one prime at a time.
pub struct PkStreamEncryptor<'a, P: AsRef<[u64]>, M: AsRef<[C]> + AsMut<[C]>, S: AsRef<[i8]> + AsMut<[i8]>, C: PlainCoeff = f64> {
    pk: &'a PublicKey<P>,
    msg: &'a Plaintext<M, C>,
    noise: PkEncryptionNoise<S>,
    n: usize,
    /// log2 of the message's coefficient spacing (`compact_log_gap`).
    log_gap: u32,
}

impl<'a, P: AsRef<[u64]>, M: AsRef<[C]> + AsMut<[C]>, S: AsRef<[i8]> + AsMut<[i8]>, C: PlainCoeff> PkStreamEncryptor<'a, P, M, S, C> {
    pub fn new(params: &Params, pk: &'a PublicKey<P>, msg: &'a Plaintext<M, C>, noise: PkEncryptionNoise<S>) -> Result<Self, Error> {
        if pk.params_id() != params.id() {
            return Err(Error::ParamsMismatch {
                expected: params.id(),
                found: pk.params_id(),
            });
        }
        let n = params.n();
        let log_gap = compact_log_gap(msg.coeffs().len(), n)?;
        check_len(noise.u.as_ref().len(), n)?;
        Ok(Self {
            pk,
            msg,
            noise,
            n,
            log_gap,
        })
    }

    fn check(&self, prime: usize, table_n: usize, bufs: &[usize]) -> Result<(), Error> {
        if prime >= self.pk.b().limbs() {
            return Err(Error::PrimeOutOfRange {
                index: prime,
                primes: self.pk.b().limbs(),
            });
        }
        check_len(table_n, self.n)?;
        for &len in bufs {
            check_len(len, self.n)?;
        }
        Ok(())
    }

    /// û = NTT(u R mod q_prime) into `u_hat`, R = 2^64; shared by the prime's two limbs. The
    /// factor R lets both products with the key (`b` and `a`) end in a Montgomery reduction
    /// ([`Montgomery::mul`]: three 64-bit products instead of Barrett's six) and still give
    /// û b and û a exactly; it costs one Shoup product per coefficient here, paid once for two.
    pub fn prepare_prime<T: AsRef<[u64]>>(&self, prime: usize, table: &NttTable<T>, u_hat: &mut [u64]) -> Result<(), Error> {
        self.check(prime, table.n(), &[u_hat.len()])?;
        let m = table.modulus();
        let r = m.r_mod();
        let rs = m.shoup_no_div(r);
        for (o, &v) in u_hat.iter_mut().zip(self.noise.u.as_ref()) {
            *o = m.mul_shoup(m.reduce_i8(v), r, rs);
        }
        table.forward(u_hat)?;
        Ok(())
    }

    /// c0 limb: NTT(u) * b + NTT(e0 + m), from the `u_hat` that [`Self::prepare_prime`] wrote
    /// for this prime (it carries the factor R that the Montgomery product removes).
    pub fn c0_limb<T: AsRef<[u64]>>(&self, prime: usize, table: &NttTable<T>, u_hat: &[u64], out: &mut [u64]) -> Result<(), Error> {
        self.check(prime, table.n(), &[u_hat.len(), out.len()])?;
        let m = table.modulus();
        add_message_and_error(self.msg.coeffs(), self.log_gap, self.noise.e0.as_ref(), m, out, false);
        table.forward(out)?;
        let b = self.pk.b().limb(prime).ok_or(Error::PrimeOutOfRange {
            index: prime,
            primes: self.pk.b().limbs(),
        })?;
        let mont = Montgomery::new(m);
        for ((o, x), y) in out.iter_mut().zip(u_hat).zip(b) {
            *o = m.add(*o, mont.mul(*x, *y));
        }
        Ok(())
    }

    /// c1 limb: NTT(u) * a + NTT(e1), with `a` regenerated from the key's seed and `u_hat` from
    /// [`Self::prepare_prime`].
    pub fn c1_limb<T: AsRef<[u64]>>(&self, prime: usize, table: &NttTable<T>, u_hat: &[u64], out: &mut [u64]) -> Result<(), Error> {
        self.check(prime, table.n(), &[u_hat.len(), out.len()])?;
        let m = table.modulus();
        reduce_small_into(self.noise.e1.as_ref(), m, out);
        table.forward(out)?;
        let mut rng = public_stream(self.pk.a_seed(), SeedPurpose::PublicKeyA, prime as u32);
        let mut a = [0u64; 1];
        let mont = Montgomery::new(m);
        for (o, x) in out.iter_mut().zip(u_hat) {
            expand_uniform(&mut rng, m, &mut a);
            *o = m.add(*o, mont.mul(*x, a[0]));
        }
        Ok(())
    }

    /// c0 limb in one N-word buffer: `out = NTT(INTT(NTT(u) * b) + e0 + m)`, the same words as
    /// [`Self::c0_limb`] (the transform is an exact linear bijection mod q), without a second
    /// N-word buffer for NTT(u): two more transforms per limb for half the RAM. The table needs
    /// its inverse half. For devices whose RAM cannot hold two limbs.
    pub fn c0_limb_in_place<T: NegacyclicNtt>(&self, prime: usize, table: &T, out: &mut [u64]) -> Result<(), Error> {
        self.check(prime, table.n(), &[out.len()])?;
        let m = table.modulus();
        let b = self.pk.b().limb(prime).ok_or(Error::PrimeOutOfRange {
            index: prime,
            primes: self.pk.b().limbs(),
        })?;
        reduce_small_into(self.noise.u.as_ref(), m, out);
        table.forward(out)?;
        for (o, y) in out.iter_mut().zip(b) {
            *o = m.mul(*o, *y);
        }
        table.inverse(out)?;
        add_message_and_error(self.msg.coeffs(), self.log_gap, self.noise.e0.as_ref(), m, out, true);
        table.forward(out)?;
        Ok(())
    }

    /// c1 limb in one N-word buffer: `out = NTT(INTT(NTT(u) * a) + e1)`, the same words as
    /// [`Self::c1_limb`] (see [`Self::c0_limb_in_place`]).
    pub fn c1_limb_in_place<T: NegacyclicNtt>(&self, prime: usize, table: &T, out: &mut [u64]) -> Result<(), Error> {
        self.check(prime, table.n(), &[out.len()])?;
        let m = table.modulus();
        reduce_small_into(self.noise.u.as_ref(), m, out);
        table.forward(out)?;
        let mut rng = public_stream(self.pk.a_seed(), SeedPurpose::PublicKeyA, prime as u32);
        let mut a = [0u64; 1];
        for o in out.iter_mut() {
            expand_uniform(&mut rng, m, &mut a);
            *o = m.mul(*o, a[0]);
        }
        table.inverse(out)?;
        add_error(self.noise.e1.as_ref(), m, out, true);
        table.forward(out)?;
        Ok(())
    }

    /// Both limbs of one prime (needs 3 x N words: `u_hat`, `c0`, `c1`; `u_hat` ends holding
    /// NTT(e1)). The same words as [`Self::c0_limb`] and [`Self::c1_limb`]; with the third
    /// buffer, `a` is expanded whole into `c1` ([`expand_public_into`]: sixteen ChaCha20 blocks
    /// at a time on AVX-512 hosts) instead of one value at a time.
    ///
    /// `a_limb`: the key's `a` at this prime when the caller expanded it already
    /// (`ExpandedPublicA` with `alloc`, shared by many encryptions under one key); `None` expands it here.
    pub fn encrypt_prime<T: AsRef<[u64]>>(
        &self,
        prime: usize,
        table: &NttTable<T>,
        u_hat: &mut [u64],
        c0: &mut [u64],
        c1: &mut [u64],
        a_limb: Option<&[u64]>,
    ) -> Result<(), Error> {
        self.prepare_prime(prime, table, u_hat)?;
        self.c0_limb(prime, table, u_hat, c0)?;
        self.check(prime, table.n(), &[c1.len()])?;
        let m = table.modulus();
        let mont = Montgomery::new(m);
        match a_limb {
            Some(a) => {
                check_len(a.len(), self.n)?;
                for ((o, x), a) in c1.iter_mut().zip(u_hat.iter()).zip(a) {
                    *o = mont.mul(*a, *x);
                }
            }
            None => {
                expand_public_into(self.pk.a_seed(), SeedPurpose::PublicKeyA, prime as u32, m, c1);
                for (o, x) in c1.iter_mut().zip(u_hat.iter()) {
                    *o = mont.mul(*o, *x);
                }
            }
        }
        // NTT(u) is used up: its buffer takes NTT(e1).
        reduce_small_into(self.noise.e1.as_ref(), m, u_hat);
        table.forward(u_hat)?;
        for (o, e) in c1.iter_mut().zip(u_hat.iter()) {
            *o = m.add(*o, *e);
        }
        Ok(())
    }

    pub fn scale(&self) -> f64 {
        self.msg.scale()
    }
    pub fn log_slots(&self) -> u32 {
        self.msg.log_slots()
    }
}

/// Seeded secret-key encryption of one message, one prime at a time: only c0 is computed and
/// sent, c1 travels as `c1_seed`.
pub struct SkStreamEncryptor<
    'a,
    K: AsRef<[i8]> + AsMut<[i8]>,
    M: AsRef<[C]> + AsMut<[C]>,
    S: AsRef<[i8]> + AsMut<[i8]>,
    C: PlainCoeff = f64,
> {
    sk: &'a SecretKey<K>,
    msg: &'a Plaintext<M, C>,
    e: ErrorPoly<S>,
    c1_seed: [u8; SEED_BYTES],
    n: usize,
    /// log2 of the message's coefficient spacing (`compact_log_gap`).
    log_gap: u32,
}

/// A secret error polynomial over caller storage, wiped on drop.
pub struct ErrorPoly<S: AsRef<[i8]> + AsMut<[i8]>>(S);

impl<S: AsRef<[i8]> + AsMut<[i8]>> Drop for ErrorPoly<S> {
    fn drop(&mut self) {
        self.0.as_mut().zeroize();
    }
}

impl<'a, K: AsRef<[i8]> + AsMut<[i8]>, M: AsRef<[C]> + AsMut<[C]>, S: AsRef<[i8]> + AsMut<[i8]>, C: PlainCoeff>
    SkStreamEncryptor<'a, K, M, S, C>
{
    /// Draws the c1 seed (public) and then the error (secret) from `rng`.
    pub fn new<R: RngCore + CryptoRng>(
        params: &Params,
        sk: &'a SecretKey<K>,
        msg: &'a Plaintext<M, C>,
        mut e_storage: S,
        rng: &mut R,
    ) -> Result<Self, Error> {
        sk.check_params(params)?;
        let n = params.n();
        let log_gap = compact_log_gap(msg.coeffs().len(), n)?;
        check_len(e_storage.as_ref().len(), n)?;
        let c1_seed = crate::sample::fresh_seed(rng);
        sample_cbd(rng, e_storage.as_mut());
        Ok(Self {
            sk,
            msg,
            e: ErrorPoly(e_storage),
            c1_seed,
            n,
            log_gap,
        })
    }

    pub fn c1_seed(&self) -> &[u8; SEED_BYTES] {
        &self.c1_seed
    }

    /// c0 limb in one N-word buffer: `out = NTT(INTT(-a * NTT(s)) + e + m)`, the same words as
    /// [`Self::c0_limb`] (the transform is an exact linear bijection mod q) without the second
    /// N-word buffer for NTT(s): two more transforms per limb for half the RAM. With a
    /// [`crate::ntt_compact::CompactNtt`] no N-word table is needed either, which is what lets
    /// a 512 KiB device encrypt at N = 2^15. `out` is wiped if the call fails.
    pub fn c0_limb_in_place<T: NegacyclicNtt>(&self, prime: usize, ntt: &T, out: &mut [u64]) -> Result<(), Error> {
        check_len(ntt.n(), self.n)?;
        check_len(out.len(), self.n)?;
        let result = self.c0_limb_in_place_inner(prime, ntt, out);
        if result.is_err() {
            // NTT(s) or a product with it may sit in `out`.
            out.zeroize();
        }
        result
    }

    fn c0_limb_in_place_inner<T: NegacyclicNtt>(&self, prime: usize, ntt: &T, out: &mut [u64]) -> Result<(), Error> {
        let m = ntt.modulus();
        reduce_small_into(self.sk.coeffs(), m, out);
        ntt.forward(out)?;
        let mut rng = public_stream(&self.c1_seed, SeedPurpose::CiphertextA, prime as u32);
        let mut a = [0u64; 1];
        for o in out.iter_mut() {
            expand_uniform(&mut rng, m, &mut a);
            *o = m.neg(m.mul(a[0], *o));
        }
        ntt.inverse(out)?;
        add_message_and_error(self.msg.coeffs(), self.log_gap, self.e.0.as_ref(), m, out, true);
        ntt.forward(out)?;
        Ok(())
    }

    /// c0 limb: NTT(e + m) - a * ŝ, using `s_hat` as N words of scratch.
    pub fn c0_limb<T: AsRef<[u64]>>(&self, prime: usize, table: &NttTable<T>, s_hat: &mut [u64], out: &mut [u64]) -> Result<(), Error> {
        check_len(table.n(), self.n)?;
        check_len(out.len(), self.n)?;
        let result = self.c0_limb_inner(prime, table, s_hat, out);
        // Wiped on every path: an early error must not leave NTT(s) in the caller's scratch,
        // nor NTT(e + m) in `out`.
        s_hat.zeroize();
        if result.is_err() {
            out.zeroize();
        }
        result
    }

    fn c0_limb_inner<T: AsRef<[u64]>>(&self, prime: usize, table: &NttTable<T>, s_hat: &mut [u64], out: &mut [u64]) -> Result<(), Error> {
        self.sk.ntt_limb_into(table, s_hat)?;
        let m = table.modulus();
        add_message_and_error(self.msg.coeffs(), self.log_gap, self.e.0.as_ref(), m, out, false);
        table.forward(out)?;
        let mut rng = public_stream(&self.c1_seed, SeedPurpose::CiphertextA, prime as u32);
        let mut a = [0u64; 1];
        for (o, s) in out.iter_mut().zip(s_hat.iter()) {
            expand_uniform(&mut rng, m, &mut a);
            *o = m.sub(*o, m.mul(a[0], *s));
        }
        Ok(())
    }

    pub fn scale(&self) -> f64 {
        self.msg.scale()
    }
    pub fn log_slots(&self) -> u32 {
        self.msg.log_slots()
    }
}

#[cfg(feature = "alloc")]
mod one_shot;

#[cfg(feature = "alloc")]
pub use one_shot::{
    encrypt_pk, encrypt_pk_expanded, encrypt_sk_expanded, encrypt_sk_seeded, ExpandedPublicA, ExpandedSecretKey, SeededEncryption,
};
