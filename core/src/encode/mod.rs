//! CKKS canonical-embedding encoder (Cheon, Kim, Kim, Song, ASIACRYPT 2017, "Homomorphic
//! encryption for arithmetic of approximate numbers", section 3.2; slot ordering and the
//! "special FFT" as in HEAAN and Lattigo's `ckks.Encoder`).
//!
//! # Slots
//!
//! For ring degree `n` (`Z[X]/(X^n + 1)`, a power of two in `2^3..=2^17`) and `slots` a power of
//! two with `1 <= slots <= n/2`, slot `j` is the value of the plaintext polynomial at
//! `zeta^(5^j mod 2n)`, `zeta = exp(i*pi/n)`; the conjugate roots `zeta^(-5^j)` carry the complex
//! conjugates, so the coefficients are real. Consequences used by the evaluator:
//!
//! * the automorphism `X -> X^(5^k mod 2n)` ([`galois_element`]) rotates the slots **left** by
//!   `k`: new slot `j` = old slot `j + k (mod slots)`;
//! * `X -> X^(2n - 1)` (i.e. `X^-1`) conjugates every slot.
//!
//! # Sparse packing
//!
//! With `slots < n/2`, put `gap = n / (2*slots)`. The plaintext lies in the subring `Z[X^gap]`:
//! only coefficients at multiples of `gap` are nonzero (Lattigo's `LogSlots < LogN - 1`). Writing
//! `Y = X^gap`, this is the dense encoding in degree `2*slots`, and evaluated at *all* `n/2`
//! roots `zeta^(5^j)` the slot vector appears `gap` times (5 has order `slots` modulo
//! `4*slots`). [`decode`] reads only the coefficients at multiples of `gap`, which equals the
//! *average* of those `gap` copies: coefficients outside the subring (noise after decryption)
//! are projected away, exactly as HEAAN and Lattigo do.
//!
//! # Coefficient layout
//!
//! The inverse special FFT of the slot values is `u_0..u_{slots-1}` (complex); the plaintext is
//! `sum_k Re(u_k) X^(k*gap) + Im(u_k) X^((slots+k)*gap)`, using `X^(n/2) = i` at every slot root
//! (because `5^j = 1 mod 4`). Coefficients are `round(scale * .)` (half away from zero), returned
//! as integer-valued `f64`, and must stay below `2^126` in absolute value so that the next
//! layer can convert them to `i128` exactly.
//!
//! # Memory and twiddles
//!
//! Nothing allocates. [`encode`] runs in place in the caller's `coeffs` buffer (length `n`,
//! which always has room for the `2*slots` real numbers of the transform), and [`decode`] runs
//! in place in its output slice; `scratch` only holds twiddle factors (public data, never
//! secret values), [`encode_scratch_len`]`(slots) = slots/2` entries, recomputed with
//! `libm::sin`/`cos` for every stage (`slots - 1` sin/cos pairs per call, `O(n)`).
//! On the host, [`EncoderTables`] precomputes all twiddles once (`slots - 1` entries, in caller
//! storage or a `Vec` with the `alloc` feature) and skips that work: on x86-64 an encode at
//! `n = 2^16`, full slots, takes about 1.3 ms with tables against 2.1 ms without (the `timing`
//! test); on a Cortex-M without a double-precision FPU the saving is larger, since `libm`
//! sin/cos are then software routines. Both paths give bit-identical results.
//!
//! # Precision
//!
//! Twiddles are accurate to about one ulp (exact index reduction, small arguments), so the
//! floating-point error of a round trip is below `2^-49` for values in `[-1, 1]` even at
//! `n = 2^16`: the round trip error is dominated by rounding the coefficients to integers,
//! whose contribution per slot has standard deviation `sqrt(2*slots/12) / scale` (each slot
//! sees `2*slots` independent roundings in `[-1/2, 1/2]`). For `n = 2^14`, full slots,
//! `scale = 2^40` that is about `2^-34.8` (rms of the complex error) — see the tests for
//! measured figures. Coefficients above `2^53` are not exactly representable in `f64`; their
//! error is then the `f64` ulp instead of `1/2`.
//!
//! # Side channels
//!
//! Control flow and memory access depend only on the public shape (`n`, `slots`), except for
//! the error checks on non-finite or oversized values, which abort the call. Floating-point
//! timing (e.g. subnormals) and `libm::round` are not audited for constant time.

mod complex;
mod fft;
pub mod fixed;
#[cfg(test)]
mod tests;

pub use complex::Complex;

use fft::Twiddles;

/// Smallest supported ring degree.
pub const MIN_RING_DEGREE: usize = 1 << 3;
/// Largest supported ring degree.
pub const MAX_RING_DEGREE: usize = 1 << 17;

/// The generator of the rotation group: slot `j` is evaluated at `zeta^(5^j)`.
pub const ROTATION_GENERATOR: usize = 5;

/// Scaled coefficients must satisfy `|c| < 2^126` (they are later converted to `i128`).
const MAX_ABS_COEFF: f64 = (1u128 << 126) as f64;

/// Why an encode or decode call was refused. On any error the output buffer is zeroed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// `n` is not a power of two in `MIN_RING_DEGREE..=MAX_RING_DEGREE`.
    InvalidRingDegree {
        /// The ring degree given.
        n: usize,
    },
    /// The slot count (length of the values / output slice) is zero or not a power of two.
    SlotsNotPowerOfTwo {
        /// The slot count given.
        slots: usize,
    },
    /// More than `n/2` slots.
    TooManySlots {
        /// The slot count given.
        slots: usize,
        /// `n/2`.
        max: usize,
    },
    /// The coefficient slice does not have exactly `n` entries.
    CoeffLengthMismatch {
        /// `n`.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The scratch (or table storage) slice is too short.
    BufferTooSmall {
        /// Entries needed.
        needed: usize,
        /// Entries given.
        got: usize,
    },
    /// The scale is not finite and strictly positive.
    InvalidScale,
    /// An input is NaN or infinite, a scaled coefficient has `|c| >= 2^126`, or a decoded slot
    /// overflowed.
    ValueOutOfRange,
    /// [`EncoderTables`] built for another `(n, slots)` than the call needs.
    TablesMismatch,
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::InvalidRingDegree { n } => write!(f, "ring degree {n} is not a power of two in {MIN_RING_DEGREE}..={MAX_RING_DEGREE}"),
            Self::SlotsNotPowerOfTwo { slots } => {
                write!(f, "slot count {slots} is not a nonzero power of two")
            }
            Self::TooManySlots { slots, max } => {
                write!(f, "slot count {slots} exceeds n/2 = {max}")
            }
            Self::CoeffLengthMismatch { expected, got } => {
                write!(f, "coefficient buffer has {got} entries, expected n = {expected}")
            }
            Self::BufferTooSmall { needed, got } => {
                write!(f, "buffer has {got} entries, needs at least {needed}")
            }
            Self::InvalidScale => f.write_str("scale must be finite and strictly positive"),
            Self::ValueOutOfRange => f.write_str("value is not finite or a scaled coefficient reaches 2^126 in absolute value"),
            Self::TablesMismatch => f.write_str("encoder tables were built for other parameters"),
        }
    }
}

/// Number of `Complex` scratch entries [`encode`], [`encode_real`] and [`decode`] need for
/// `slots` slots (`slots/2`: the twiddles of the largest FFT stage). `const` so that firmware
/// can size a static buffer.
#[must_use]
pub const fn encode_scratch_len(slots: usize) -> usize {
    fft::stage_scratch_len(slots)
}

/// Number of `Complex` entries of the storage of [`EncoderTables`] for `slots` slots
/// (`slots - 1`: all stages' twiddles).
#[must_use]
pub const fn tables_len(slots: usize) -> usize {
    fft::table_len(slots)
}

/// The Galois element `5^k mod 2n` of the automorphism `X -> X^(5^k)` that rotates the slots
/// left by `k`. Returns `None` unless `n` is a supported ring degree.
#[must_use]
pub fn galois_element(k: usize, n: usize) -> Option<usize> {
    check_ring_degree(n).ok()?;
    let m = 2 * n;
    // The group <5> mod 2n has order n/2, so reducing k first keeps the loop short.
    let mut e = k % (n / 2);
    let mut base = ROTATION_GENERATOR;
    let mut acc = 1usize;
    while e > 0 {
        if e & 1 == 1 {
            acc = (acc * base) % m;
        }
        base = (base * base) % m;
        e >>= 1;
    }
    Some(acc)
}

/// The Galois element `2n - 1` of the automorphism `X -> X^-1` (slot-wise conjugation).
#[must_use]
pub fn galois_element_conjugate(n: usize) -> Option<usize> {
    check_ring_degree(n).ok()?;
    Some(2 * n - 1)
}

fn check_ring_degree(n: usize) -> Result<(), EncodeError> {
    if n.is_power_of_two() && (MIN_RING_DEGREE..=MAX_RING_DEGREE).contains(&n) {
        Ok(())
    } else {
        Err(EncodeError::InvalidRingDegree { n })
    }
}

/// Validates `(n, slots)`.
fn check_shape(n: usize, slots: usize) -> Result<(), EncodeError> {
    check_ring_degree(n)?;
    if !slots.is_power_of_two() {
        return Err(EncodeError::SlotsNotPowerOfTwo { slots });
    }
    if slots > n / 2 {
        return Err(EncodeError::TooManySlots { slots, max: n / 2 });
    }
    Ok(())
}

fn check_scale(scale: f64) -> Result<(), EncodeError> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(EncodeError::InvalidScale)
    }
}

fn check_coeffs_len(n: usize, got: usize) -> Result<(), EncodeError> {
    if got == n {
        Ok(())
    } else {
        Err(EncodeError::CoeffLengthMismatch { expected: n, got })
    }
}

/// The scratch prefix used for per-stage twiddles, or an error if it is too short.
fn scratch_twiddles(slots: usize, scratch: &mut [Complex]) -> Result<Twiddles<'_>, EncodeError> {
    let needed = encode_scratch_len(slots);
    let got = scratch.len();
    scratch
        .get_mut(..needed)
        .map(Twiddles::OnTheFly)
        .ok_or(EncodeError::BufferTooSmall { needed, got })
}

/// The slot values to encode.
#[derive(Clone, Copy)]
enum Input<'a> {
    Complex(&'a [Complex]),
    Real(&'a [f64]),
}

impl Input<'_> {
    fn len(self) -> usize {
        match self {
            Input::Complex(v) => v.len(),
            Input::Real(v) => v.len(),
        }
    }
}

/// Encodes `values` (one per slot; `values.len()` is the slot count) into the `n` plaintext
/// coefficients `coeffs`: `round(scale * IDFT(values))` as integer-valued `f64`, laid out as in
/// the module documentation. `scratch` needs [`encode_scratch_len`]`(values.len())` entries.
///
/// # Errors
///
/// Shape errors ([`EncodeError::InvalidRingDegree`], [`EncodeError::SlotsNotPowerOfTwo`],
/// [`EncodeError::TooManySlots`], [`EncodeError::CoeffLengthMismatch`],
/// [`EncodeError::BufferTooSmall`]), [`EncodeError::InvalidScale`], and
/// [`EncodeError::ValueOutOfRange`] for non-finite values or a scaled coefficient of absolute
/// value `>= 2^126`. If the shape is valid but the call fails, `coeffs` is zeroed.
pub fn encode(values: &[Complex], n: usize, scale: f64, coeffs: &mut [f64], scratch: &mut [Complex]) -> Result<(), EncodeError> {
    encode_checked(Input::Complex(values), n, scale, coeffs, scratch)
}

/// [`encode`] for real slot values (imaginary parts zero).
///
/// # Errors
///
/// As [`encode`].
pub fn encode_real(values: &[f64], n: usize, scale: f64, coeffs: &mut [f64], scratch: &mut [Complex]) -> Result<(), EncodeError> {
    encode_checked(Input::Real(values), n, scale, coeffs, scratch)
}

fn encode_checked(input: Input<'_>, n: usize, scale: f64, coeffs: &mut [f64], scratch: &mut [Complex]) -> Result<(), EncodeError> {
    let slots = input.len();
    check_shape(n, slots)?;
    check_coeffs_len(n, coeffs.len())?;
    let mut tw = scratch_twiddles(slots, scratch)?;
    encode_core(input, n, scale, coeffs, &mut tw, true)
}

/// Shape-checked body of the encoder. `round = false` (tests only) skips the rounding so the
/// floating-point error of the transform can be measured on its own.
fn encode_core(input: Input<'_>, n: usize, scale: f64, coeffs: &mut [f64], tw: &mut Twiddles<'_>, round: bool) -> Result<(), EncodeError> {
    let result = encode_inner(input, n, scale, coeffs, tw, round);
    if result.is_err() {
        coeffs.fill(0.0);
    }
    result
}

fn encode_inner(input: Input<'_>, n: usize, scale: f64, coeffs: &mut [f64], tw: &mut Twiddles<'_>, round: bool) -> Result<(), EncodeError> {
    check_scale(scale)?;
    let slots = input.len();
    let two_slots = 2 * slots; // <= n, no overflow after check_shape
    let tw_err = EncodeError::BufferTooSmall { needed: 0, got: 0 };
    let work = coeffs.get_mut(..two_slots).ok_or(tw_err)?;

    // 1. Load the values in split layout: real parts, then imaginary parts.
    {
        let (re, im) = work.split_at_mut(slots);
        match input {
            Input::Complex(v) => {
                for ((r, i), z) in re.iter_mut().zip(im.iter_mut()).zip(v.iter()) {
                    if !z.is_finite() {
                        return Err(EncodeError::ValueOutOfRange);
                    }
                    *r = z.re;
                    *i = z.im;
                }
            }
            Input::Real(v) => {
                for ((r, i), &x) in re.iter_mut().zip(im.iter_mut()).zip(v.iter()) {
                    if !x.is_finite() {
                        return Err(EncodeError::ValueOutOfRange);
                    }
                    *r = x;
                    *i = 0.0;
                }
            }
        }

        // 2. Inverse special FFT (without the 1/slots factor).
        fft::special_ifft_split(re, im, tw).ok_or(tw_err)?;
    }

    // 3. Scale by scale/slots (1/slots is a power of two: exact), round, check the range.
    let inv_slots = 1.0 / (slots as f64);
    for c in work.iter_mut() {
        let x = (*c * inv_slots) * scale;
        // `x.is_finite()` also rejects NaN; values below 2^126 stay below it after rounding.
        if !x.is_finite() || libm::fabs(x) >= MAX_ABS_COEFF {
            return Err(EncodeError::ValueOutOfRange);
        }
        // `+ 0.0` turns a rounded -0.0 into +0.0 so equal plaintexts have equal bits.
        *c = if round { libm::round(x) + 0.0 } else { x };
    }

    // 4. Spread to multiples of gap, from the top down: the source index s moves to s*gap >= s,
    //    and every target above s has already been written, so nothing is overwritten early.
    let gap = n / two_slots;
    if gap > 1 {
        if let Some(tail) = coeffs.get_mut(two_slots..) {
            tail.fill(0.0);
        }
        for s in (0..two_slots).rev() {
            // s < 2*slots and s*gap < n: in range after the shape checks.
            let v = coeffs[s];
            coeffs[s] = 0.0;
            coeffs[s * gap] = v;
        }
    }
    Ok(())
}

/// Decodes the `n` real, centred (signed), integer-valued coefficients `coeffs` into
/// `out.len()` slots, divided by `scale`. Only coefficients at multiples of
/// `gap = n / (2*out.len())` are read (projection onto the sparse subring, i.e. the average of
/// the `gap` replicated copies of the slots). `scratch` needs
/// [`encode_scratch_len`]`(out.len())` entries.
///
/// # Errors
///
/// Shape errors as for [`encode`], [`EncodeError::InvalidScale`], and
/// [`EncodeError::ValueOutOfRange`] if any coefficient is not finite or a slot overflows. If the
/// shape is valid but the call fails, `out` is zeroed.
pub fn decode(coeffs: &[f64], n: usize, scale: f64, out: &mut [Complex], scratch: &mut [Complex]) -> Result<(), EncodeError> {
    let slots = out.len();
    check_shape(n, slots)?;
    check_coeffs_len(n, coeffs.len())?;
    let mut tw = scratch_twiddles(slots, scratch)?;
    decode_core(coeffs, n, scale, out, &mut tw)
}

fn decode_core(coeffs: &[f64], n: usize, scale: f64, out: &mut [Complex], tw: &mut Twiddles<'_>) -> Result<(), EncodeError> {
    let result = decode_inner(coeffs, n, scale, out, tw);
    if result.is_err() {
        out.fill(Complex::ZERO);
    }
    result
}

fn decode_inner(coeffs: &[f64], n: usize, scale: f64, out: &mut [Complex], tw: &mut Twiddles<'_>) -> Result<(), EncodeError> {
    check_scale(scale)?;
    if !coeffs.iter().all(|c| c.is_finite()) {
        return Err(EncodeError::ValueOutOfRange);
    }
    let slots = out.len();
    let gap = n / (2 * slots);
    // u_k = c[k*gap] + i*c[(slots+k)*gap]  (X^(n/2) = i at every slot root).
    let (lo, hi) = coeffs.split_at(n / 2);
    for ((o, &r), &i) in out.iter_mut().zip(lo.iter().step_by(gap)).zip(hi.iter().step_by(gap)) {
        *o = Complex::new(r, i);
    }
    fft::special_fft(out, tw).ok_or(EncodeError::BufferTooSmall { needed: 0, got: 0 })?;
    for o in out.iter_mut() {
        // Divide (not multiply by 1/scale) so a power-of-two scale is exact and any scale is
        // correctly rounded.
        let z = Complex::new(o.re / scale, o.im / scale);
        if !z.is_finite() {
            return Err(EncodeError::ValueOutOfRange);
        }
        *o = z;
    }
    Ok(())
}

/// Precomputed twiddle factors for a fixed `(n, slots)`, stored in `S` (a slice borrowed from
/// the caller, a fixed array, or a `Vec` with the `alloc` feature). Results are bit-identical to
/// the scratch-based [`encode`] / [`decode`]; the tables only save the `slots - 1` sin/cos
/// evaluations per call, and the encode/decode methods need no scratch at all.
#[derive(Clone, Debug)]
pub struct EncoderTables<S> {
    n: usize,
    slots: usize,
    twiddles: S,
}

impl<S: AsRef<[Complex]> + AsMut<[Complex]>> EncoderTables<S> {
    /// Validates `(n, slots)` and fills `storage` (at least [`tables_len`]`(slots)` entries).
    ///
    /// # Errors
    ///
    /// Shape errors as for [`encode`]; [`EncodeError::BufferTooSmall`] if `storage` is short.
    pub fn new(n: usize, slots: usize, mut storage: S) -> Result<Self, EncodeError> {
        check_shape(n, slots)?;
        let needed = tables_len(slots);
        let buf = storage.as_mut();
        let got = buf.len();
        let table = buf.get_mut(..needed).ok_or(EncodeError::BufferTooSmall { needed, got })?;
        fft::fill_table(slots, table).ok_or(EncodeError::BufferTooSmall { needed, got })?;
        Ok(Self {
            n,
            slots,
            twiddles: storage,
        })
    }
}

#[cfg(feature = "std")]
impl EncoderTables<&'static [Complex]> {
    /// The process-wide tables for `(n, slots)`: the twiddles of each slot count are computed
    /// on first use and kept for the life of the process (16 KiB to 512 KiB each; they depend
    /// on the slot count only). What the host's encoders and decoders use, so that encoding
    /// one ciphertext of N/2 slots costs no N/2 sin/cos pairs. Same words as [`encode`] and
    /// [`decode`] with scratch.
    ///
    /// # Errors
    ///
    /// Shape errors as for [`encode`].
    pub fn shared(n: usize, slots: usize) -> Result<Self, EncodeError> {
        use std::sync::OnceLock;
        // One cell per log2(slots); `check_shape` bounds slots by MAX_RING_DEGREE / 2.
        static TABLES: [OnceLock<alloc::vec::Vec<Complex>>; 32] = [const { OnceLock::new() }; 32];
        check_shape(n, slots)?;
        let needed = tables_len(slots);
        let cell = TABLES
            .get(slots.trailing_zeros() as usize)
            .ok_or(EncodeError::BufferTooSmall { needed, got: 0 })?;
        let table = cell.get_or_init(|| {
            let mut t = alloc::vec![Complex::ZERO; needed];
            // `t` has exactly the length `fill_table` needs.
            let _ = fft::fill_table(slots, &mut t);
            t
        });
        Ok(Self {
            n,
            slots,
            twiddles: table.as_slice(),
        })
    }
}

#[cfg(feature = "alloc")]
impl EncoderTables<alloc::vec::Vec<Complex>> {
    /// [`EncoderTables::new`] with heap storage of exactly [`tables_len`]`(slots)` entries.
    ///
    /// # Errors
    ///
    /// Shape errors as for [`encode`] (checked before allocating).
    pub fn new_vec(n: usize, slots: usize) -> Result<Self, EncodeError> {
        check_shape(n, slots)?;
        Self::new(n, slots, alloc::vec![Complex::ZERO; tables_len(slots)])
    }
}

impl<S: AsRef<[Complex]>> EncoderTables<S> {
    /// Ring degree the tables were built for.
    #[must_use]
    pub fn n(&self) -> usize {
        self.n
    }

    /// Slot count the tables were built for.
    #[must_use]
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Gives the storage back.
    pub fn into_storage(self) -> S {
        self.twiddles
    }

    fn table(&self) -> Result<Twiddles<'_>, EncodeError> {
        let buf = self.twiddles.as_ref();
        let needed = tables_len(self.slots);
        buf.get(..needed)
            .map(Twiddles::Table)
            .ok_or(EncodeError::BufferTooSmall { needed, got: buf.len() })
    }

    fn check_call(&self, slots: usize, coeffs_len: usize) -> Result<(), EncodeError> {
        if slots != self.slots {
            return Err(EncodeError::TablesMismatch);
        }
        check_coeffs_len(self.n, coeffs_len)
    }

    /// [`encode`] with the precomputed twiddles; `values.len()` must equal [`Self::slots`].
    ///
    /// # Errors
    ///
    /// As [`encode`], plus [`EncodeError::TablesMismatch`].
    pub fn encode(&self, values: &[Complex], scale: f64, coeffs: &mut [f64]) -> Result<(), EncodeError> {
        self.check_call(values.len(), coeffs.len())?;
        encode_core(Input::Complex(values), self.n, scale, coeffs, &mut self.table()?, true)
    }

    /// [`encode_real`] with the precomputed twiddles.
    ///
    /// # Errors
    ///
    /// As [`encode`], plus [`EncodeError::TablesMismatch`].
    pub fn encode_real(&self, values: &[f64], scale: f64, coeffs: &mut [f64]) -> Result<(), EncodeError> {
        self.check_call(values.len(), coeffs.len())?;
        encode_core(Input::Real(values), self.n, scale, coeffs, &mut self.table()?, true)
    }

    /// [`decode`] with the precomputed twiddles; `out.len()` must equal [`Self::slots`].
    ///
    /// # Errors
    ///
    /// As [`decode`], plus [`EncodeError::TablesMismatch`].
    pub fn decode(&self, coeffs: &[f64], scale: f64, out: &mut [Complex]) -> Result<(), EncodeError> {
        self.check_call(out.len(), coeffs.len())?;
        decode_core(coeffs, self.n, scale, out, &mut self.table()?)
    }
}
