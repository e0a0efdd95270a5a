//! An enrolled device's per-patient encryption for the vendor's circuit-private profile
//! (docs/device.md).
//!
//! A device in the 2 MiB flash / 512 KiB RAM class cannot hold the hospital's public key at the
//! circuit-private preset (N = 2^15: one `b` limb is 256 KiB, and the profile's input level
//! needs several), nor the N-word NTT tables. So the hospital *enrols* each device: it draws a
//! device secret key (a 32-byte seed, the only secret in the device's flash) and registers with
//! the vendor a key switching key from that key to its own. The device encrypts with seeded
//! secret-key encryption (c1 travels as a 32-byte seed), one prime at a time in one N-word limb
//! with twiddles computed per block ([`crate::ntt_compact::CompactNtt`]); the vendor switches
//! the ciphertext to the hospital's key and builds the profile's batch from it.
//!
//! What the device encrypts: the patient's 8 features, mapped into the model's public input box
//! as the hospital's `encrypt --profile` does (u = (x - center) / half_width, clamped), in fixed
//! point ([`FixedInputBox`]: no floating point, no division, no branch on the features), encoded
//! into 8 slots (a compact 16-coefficient message; every 8-slot block of the ring's slots holds
//! the patient) at the device scale (`log_scale`, above the batch's input scale), one level above
//! the profile's input level: the vendor spends that level on the mask that places the patient
//! in its batch slot and brings the scale down.
//!
//! [`DeviceInput`] is what the firmware needs to know about the profile (a fixed-size image the
//! hospital writes into the device's enrolment bundle); [`EnrolledEncryptor`] is the whole
//! per-patient path after the features, shared by the firmware and the host's tests.

use crate::arith::Modulus;
use crate::encrypt::{Plaintext, SkStreamEncryptor};
use crate::error::Error;
use crate::keys::SecretKey;
use crate::ntt::primitive_root_2n;
use crate::ntt_compact::CompactNtt;
use crate::params::Params;
use crate::sample::SEED_BYTES;
use crate::wire::{self, Header, Kind};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroize;

/// Slots a device encodes: the 8 blades of one patient.
pub const DEVICE_SLOTS: usize = 8;

/// Coefficients of the compact message ([`DEVICE_SLOTS`] slots: `2 * 8`).
pub const MESSAGE_COEFFS: usize = 2 * DEVICE_SLOTS;

/// Fractional bits of the fixed-point values ([`crate::encode::fixed::FRAC_BITS`]).
const FRAC_BITS: u32 = crate::encode::fixed::FRAC_BITS;

/// Largest |u| the box encoding emits, in fixed point: 1 - 2^-24. The vendor's mask multiplies
/// the slot values by 1 + eps with |eps| below 2^-29 (its encoding rounding), so the values it
/// evaluates stay inside the box [-1, 1] the model's bounds are proven on.
pub const MAX_ABS_U: i64 = (1 << FRAC_BITS) - (1 << (FRAC_BITS - 24));

/// Smallest half-width the fixed-point box accepts (2^-24 in value units): below it the
/// features' 32 fractional bits cannot resolve the box.
pub const MIN_HALF_WIDTH_Q32: i64 = 1 << (FRAC_BITS - 24);

/// The model's public input box in fixed point: per blade the centre and half-width with
/// [`crate::encode::fixed::FRAC_BITS`] fractional bits, and `round(2^96 / half_width_q32)`, so that
/// `u = (x - c) / h` is one product and a shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedInputBox {
    center: [i64; 8],
    half_width: [i64; 8],
    inv_half_width: [u128; 8],
}

/// Why a box or a device input image is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceInputError {
    /// A centre or half-width is not representable (non-finite, beyond 2^30, or a half-width
    /// below [`MIN_HALF_WIDTH_Q32`]).
    Box,
    /// The image has the wrong size, magic or version.
    Image,
    /// The level or scale does not fit the preset (or the fixed-point encoder).
    LevelOrScale,
}

impl core::fmt::Display for DeviceInputError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Box => "input box not representable in fixed point (half-width below 2^-24, or |value| beyond 2^30)",
            Self::Image => "not a device input image (size, magic or version)",
            Self::LevelOrScale => "input level or scale outside the preset or the fixed-point encoder",
        })
    }
}

/// `a < b` as an all-ones mask, for |a|, |b| < 2^126; no branch.
#[inline(always)]
const fn lt_mask(a: i128, b: i128) -> i128 {
    (a - b) >> 127
}

/// `min(max(x, lo), hi)` without a branch (for |x|, |lo|, |hi| < 2^126).
#[inline(always)]
const fn clamp_ct(x: i128, lo: i128, hi: i128) -> i128 {
    let below = lt_mask(x, lo);
    let x = (lo & below) | (x & !below);
    let above = lt_mask(hi, x);
    (hi & above) | (x & !above)
}

impl FixedInputBox {
    /// From the fixed-point centres and half-widths (as [`crate::encode::fixed::to_fixed`]
    /// makes them on the host). Public data; the reciprocals are computed here, once.
    pub fn new(center: [i64; 8], half_width: [i64; 8]) -> Result<Self, DeviceInputError> {
        let limit = 1i64 << (FRAC_BITS + 30);
        if center.iter().any(|c| c.unsigned_abs() >= limit as u64) || half_width.iter().any(|&h| !(MIN_HALF_WIDTH_Q32..limit).contains(&h))
        {
            return Err(DeviceInputError::Box);
        }
        let mut inv_half_width = [0u128; 8];
        for (inv, &h) in inv_half_width.iter_mut().zip(&half_width) {
            let h = h as u128;
            *inv = ((1u128 << 96) + h / 2) / h;
        }
        Ok(Self {
            center,
            half_width,
            inv_half_width,
        })
    }

    /// Centres (fixed point).
    pub fn center(&self) -> &[i64; 8] {
        &self.center
    }

    /// Half-widths (fixed point).
    pub fn half_width(&self) -> &[i64; 8] {
        &self.half_width
    }

    /// u = (clamp(x, c - h, c + h) - c) / h per blade, fixed point in and out, limited to
    /// +-[`MAX_ABS_U`]; returns the values and whether any feature lay outside the box. Integer
    /// arithmetic only, no branch and no division on `x`.
    pub fn encode(&self, x: &[i64; 8]) -> ([i64; 8], bool) {
        let mut u = [0i64; 8];
        let mut moved = 0i128;
        for k in 0..8 {
            let h = self.half_width[k] as i128;
            let d = x[k] as i128 - self.center[k] as i128;
            let dc = clamp_ct(d, -h, h);
            moved |= d ^ dc;
            // |dc| <= h < 2^63 and inv < 2^96 / h + 1, so |dc * inv| < 2^97: no overflow.
            let p = dc * self.inv_half_width[k] as i128;
            let v = (p + (1i128 << 63)) >> 64;
            u[k] = clamp_ct(v, -(MAX_ABS_U as i128), MAX_ABS_U as i128) as i64;
        }
        (u, moved != 0)
    }
}

/// What a device needs to know about the vendor's profile: the preset, the level and scale it
/// encrypts at (one level above the profile's input level; the profile's input scale, a power
/// of two), and the input box. Public; written by the hospital into the enrolment bundle as a
/// fixed-size image ([`Self::to_image`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInput {
    /// Parameter preset id.
    pub params_id: u16,
    /// Level of the device's ciphertexts (primes q_0..q_level).
    pub level: u16,
    /// log2 of the encoding scale.
    pub log_scale: u32,
    /// The model's input box.
    pub input_box: FixedInputBox,
}

const IMAGE_MAGIC: [u8; 4] = *b"CLDI";
const IMAGE_VERSION: u16 = 1;

impl DeviceInput {
    /// Size of [`Self::to_image`]: magic, version, preset, level, scale, then per blade the
    /// centre and half-width (i64 little-endian).
    pub const IMAGE_BYTES: usize = 4 + 2 + 2 + 2 + 2 + 8 * 8 * 2;

    /// Checks the level and scale against the preset and the encoder.
    pub fn new(params: &Params, level: usize, log_scale: u32, input_box: FixedInputBox) -> Result<Self, DeviceInputError> {
        if level > params.max_level() || log_scale == 0 || log_scale > crate::encode::fixed::MAX_WIDE_LOG_SCALE {
            return Err(DeviceInputError::LevelOrScale);
        }
        Ok(Self {
            params_id: params.id(),
            level: level as u16,
            log_scale,
            input_box,
        })
    }

    /// The fixed-size image.
    pub fn to_image(&self) -> [u8; Self::IMAGE_BYTES] {
        let mut out = [0u8; Self::IMAGE_BYTES];
        out[0..4].copy_from_slice(&IMAGE_MAGIC);
        out[4..6].copy_from_slice(&IMAGE_VERSION.to_le_bytes());
        out[6..8].copy_from_slice(&self.params_id.to_le_bytes());
        out[8..10].copy_from_slice(&self.level.to_le_bytes());
        out[10..12].copy_from_slice(&(self.log_scale as u16).to_le_bytes());
        let words = self.input_box.center.iter().chain(&self.input_box.half_width);
        for (chunk, w) in out[12..].chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Parses and checks an image against the preset the firmware was built for.
    pub fn from_image(params: &Params, image: &[u8]) -> Result<Self, DeviceInputError> {
        if image.len() != Self::IMAGE_BYTES || image[0..4] != IMAGE_MAGIC {
            return Err(DeviceInputError::Image);
        }
        let u16_at = |i: usize| u16::from_le_bytes([image[i], image[i + 1]]);
        if u16_at(4) != IMAGE_VERSION {
            return Err(DeviceInputError::Image);
        }
        if u16_at(6) != params.id() {
            return Err(DeviceInputError::LevelOrScale);
        }
        let mut words = [0i64; 16];
        for (w, chunk) in words.iter_mut().zip(image[12..].chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *w = i64::from_le_bytes(b);
        }
        let (mut center, mut half_width) = ([0i64; 8], [0i64; 8]);
        center.copy_from_slice(&words[..8]);
        half_width.copy_from_slice(&words[8..]);
        let input_box = FixedInputBox::new(center, half_width)?;
        Self::new(params, u16_at(8) as usize, u32::from(u16_at(10)), input_box)
    }
}

/// A prime and its primitive 2N-th root and inverse: what [`CompactNtt::from_roots`] needs,
/// computed once at start-up (it divides; the per-patient path does not).
#[derive(Clone, Copy, Debug)]
pub struct PrimeRoots {
    /// The prime.
    pub modulus: Modulus,
    /// psi, the canonical primitive 2N-th root ([`primitive_root_2n`]).
    pub psi: u64,
    /// psi^-1.
    pub psi_inv: u64,
}

impl PrimeRoots {
    /// The roots of prime `i` of `params` (`None` past the chain).
    pub fn new(params: &Params, i: usize) -> Option<Self> {
        let modulus = Modulus::new(*params.q().get(i)?)?;
        let psi = primitive_root_2n(&modulus, params.n())?;
        Some(Self {
            modulus,
            psi,
            psi_inv: modulus.inv(psi),
        })
    }
}

/// Caller RAM of [`EnrolledEncryptor::encrypt`]: the error polynomial (N bytes), one limb (N words), the
/// compact message and the encoder's root tables (`fixed_scratch_len(8)` words).
pub struct EnrolledBuffers<'a> {
    /// N bytes: the encryption error e.
    pub e: &'a mut [i8],
    /// N words: one limb at a time.
    pub limb: &'a mut [u64],
    /// [`MESSAGE_COEFFS`] coefficients.
    pub message: &'a mut [i128],
    /// `encode::fixed::fixed_scratch_len(DEVICE_SLOTS)` words.
    pub scratch: &'a mut [i64],
}

/// Why [`EnrolledEncryptor::encrypt`] stopped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EnrolledError<E> {
    /// clifhe-core refused an input (buffer sizes, key and preset, ...).
    Core(Error),
    /// The encoder refused (cannot happen for in-box values; reported, not assumed).
    Encode(crate::encode::EncodeError),
    /// Packing a limb failed.
    Wire(wire::WireError),
    /// The sink failed.
    Sink(E),
}

impl<E> From<Error> for EnrolledError<E> {
    fn from(e: Error) -> Self {
        Self::Core(e)
    }
}

impl<E> From<crate::ntt::NttError> for EnrolledError<E> {
    fn from(e: crate::ntt::NttError) -> Self {
        Self::Core(Error::Ntt(e))
    }
}

/// A device's encryptor, bound once to the preset, the input image, the primes' roots and the
/// device key: [`Self::encrypt`] is the whole per-patient path after the features.
pub struct EnrolledEncryptor<'a, K: AsRef<[i8]> + AsMut<[i8]>> {
    params: &'a Params,
    input: &'a DeviceInput,
    roots: &'a [PrimeRoots],
    key: &'a SecretKey<K>,
}

impl<'a, K: AsRef<[i8]> + AsMut<[i8]>> EnrolledEncryptor<'a, K> {
    /// Checks that the image, the key and the roots (at least `input.level + 1` primes) belong
    /// to `params`.
    pub fn new(params: &'a Params, input: &'a DeviceInput, roots: &'a [PrimeRoots], key: &'a SecretKey<K>) -> Result<Self, Error> {
        if input.params_id != params.id() {
            return Err(Error::ParamsMismatch {
                expected: params.id(),
                found: input.params_id,
            });
        }
        key.check_params(params)?;
        let level = usize::from(input.level);
        let roots_ok = roots.len() > level && roots.iter().zip(params.q()).all(|(r, &q)| r.modulus.value() == q);
        if !roots_ok {
            return Err(Error::PrimeOutOfRange {
                index: level,
                primes: roots.len(),
            });
        }
        Ok(Self { params, input, roots, key })
    }

    /// Bytes of one ciphertext: the header, the 32-byte c1 seed, the packed c0 limbs.
    pub fn ciphertext_bytes(&self) -> usize {
        wire::HEADER_BYTES + SEED_BYTES + wire::body_bytes(self.params, usize::from(self.input.level), 1)
    }

    /// Encrypts one patient's fixed-point features: box encoding, integer encoding into 8
    /// slots at `2^input.log_scale`, seeded secret-key encryption at `input.level`, each c0 limb
    /// computed in `bufs.limb` with a [`CompactNtt`] built from the prime's roots and streamed
    /// to `sink` packed (in 512-byte pieces) as soon as it is ready. The bytes are
    /// `wire::seeded_ciphertext_to_bytes` of the same encryption (tested). Returns whether the
    /// box clamp moved a feature. Integer arithmetic only, no branch or division on the
    /// features, the key or the noise. The limb and the message are wiped before returning, on
    /// every path (the error polynomial by the encryptor).
    pub fn encrypt<R: RngCore + CryptoRng, E>(
        &self,
        features: &[i64; 8],
        bufs: EnrolledBuffers<'_>,
        rng: &mut R,
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<bool, EnrolledError<E>> {
        let EnrolledBuffers { e, limb, message, scratch } = bufs;
        let result = self.encrypt_inner(features, e, limb, message, scratch, rng, sink);
        limb.zeroize();
        message.zeroize();
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn encrypt_inner<R: RngCore + CryptoRng, E>(
        &self,
        features: &[i64; 8],
        e: &mut [i8],
        limb: &mut [u64],
        message: &mut [i128],
        scratch: &mut [i64],
        rng: &mut R,
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<bool, EnrolledError<E>> {
        let (params, input) = (self.params, self.input);
        let level = usize::from(input.level);
        if message.len() != MESSAGE_COEFFS {
            return Err(Error::BufferLength {
                expected: MESSAGE_COEFFS,
                found: message.len(),
            }
            .into());
        }
        let (mut u, moved) = input.input_box.encode(features);
        let encoded = crate::encode::fixed::encode_real_fixed_wide(&u, DEVICE_SLOTS, MESSAGE_COEFFS, input.log_scale, message, scratch);
        u.zeroize();
        encoded.map_err(EnrolledError::Encode)?;
        let msg = Plaintext::from_fixed(&mut *message, input.log_scale, DEVICE_SLOTS.trailing_zeros())?;
        let enc = SkStreamEncryptor::new(params, self.key, &msg, e, rng)?;
        let header = Header {
            params_id: params.id(),
            kind: Kind::SeededCiphertext,
            insecure: params.is_insecure(),
            level: input.level,
            log_slots: DEVICE_SLOTS.trailing_zeros() as u8,
            scale: msg.scale(),
            body_len: (SEED_BYTES + wire::body_bytes(params, level, 1)) as u64,
        };
        sink(&header.to_bytes()).map_err(EnrolledError::Sink)?;
        sink(enc.c1_seed()).map_err(EnrolledError::Sink)?;
        for (i, r) in self.roots.iter().enumerate().take(level + 1) {
            let ntt = CompactNtt::from_roots(r.modulus, params.n(), r.psi, r.psi_inv)?;
            enc.c0_limb_in_place(i, &ntt, limb)?;
            emit_limb(limb, r.modulus.value(), sink)?;
        }
        Ok(moved)
    }
}

/// Packs one limb in pieces of 64 coefficients (64 x bits is a whole number of bytes, so the
/// pieces concatenate to the packed limb) and hands each to `sink`: 512 bytes of buffer instead
/// of a packed copy of the limb.
pub fn emit_limb<E>(limb: &[u64], q: u64, sink: &mut impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), EnrolledError<E>> {
    const CHUNK: usize = 64;
    let bits = 64 - q.leading_zeros();
    let mut buf = [0u8; CHUNK * 8];
    for chunk in limb.chunks(CHUNK) {
        let len = wire::limb_bytes(chunk.len(), bits);
        let out = buf.get_mut(..len).ok_or(EnrolledError::Wire(wire::WireError::OutputTooSmall {
            needed: len,
            found: CHUNK * 8,
        }))?;
        wire::pack_limb(chunk, bits, out).map_err(EnrolledError::Wire)?;
        sink(out).map_err(EnrolledError::Sink)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Context;
    use crate::encode::fixed::{fixed_scratch_len, to_fixed};
    use crate::encrypt::encrypt_sk_seeded;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::vec;
    use std::vec::Vec;

    fn test_box() -> FixedInputBox {
        let center = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7].map(to_fixed);
        let half = [0.12, 0.11, 0.5, 3.0, 0.001, 0.2, 1e-3, 40.0].map(to_fixed);
        FixedInputBox::new(center, half).unwrap()
    }

    #[test]
    fn box_encoding_matches_the_floating_point_definition() {
        let b = test_box();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for trial in 0..2000 {
            let x: [f64; 8] = core::array::from_fn(|k| {
                let c = b.center[k] as f64 / 2f64.powi(32);
                let h = b.half_width[k] as f64 / 2f64.powi(32);
                // Mostly inside the box, some far outside.
                let spread = if trial % 7 == 0 { 5.0 } else { 0.9 };
                c + h * spread * ((rng.next_u64() >> 11) as f64 / 2f64.powi(52) - 1.0)
            });
            let xf = x.map(to_fixed);
            let (u, moved) = b.encode(&xf);
            let mut any_out = false;
            for k in 0..8 {
                let (c, h) = (b.center[k] as f64 / 2f64.powi(32), b.half_width[k] as f64 / 2f64.powi(32));
                let xk = xf[k] as f64 / 2f64.powi(32);
                any_out |= (xk - c).abs() > h;
                let limit = MAX_ABS_U as f64 / 2f64.powi(32);
                let want = ((xk - c) / h).clamp(-limit, limit);
                let got = u[k] as f64 / 2f64.powi(32);
                assert!((got - want).abs() < 2e-9, "blade {k}: {got} vs {want}");
            }
            assert_eq!(moved, any_out);
        }
    }

    #[test]
    fn input_images_round_trip_and_bad_ones_are_refused() {
        let params = Params::from_name("private-n15").unwrap();
        let input = DeviceInput::new(&params, 8, 102, test_box()).unwrap();
        let image = input.to_image();
        assert_eq!(DeviceInput::from_image(&params, &image).unwrap(), input);
        assert_eq!(DeviceInput::from_image(&params, &image[1..]), Err(DeviceInputError::Image));
        let mut bad = image;
        bad[0] ^= 1;
        assert_eq!(DeviceInput::from_image(&params, &bad), Err(DeviceInputError::Image));
        let other = Params::from_name("leveled-n14").unwrap();
        assert_eq!(DeviceInput::from_image(&other, &image), Err(DeviceInputError::LevelOrScale));
        assert_eq!(DeviceInput::new(&params, 12, 102, test_box()), Err(DeviceInputError::LevelOrScale));
        assert_eq!(DeviceInput::new(&params, 8, 111, test_box()), Err(DeviceInputError::LevelOrScale));
        let mut tiny = *test_box().half_width();
        tiny[3] = MIN_HALF_WIDTH_Q32 - 1;
        assert_eq!(FixedInputBox::new(*test_box().center(), tiny), Err(DeviceInputError::Box));
        // A half-width of zero in an image (a forged or damaged bundle) is refused, not divided by.
        let mut zero = image;
        zero[12 + 8 * 8..12 + 8 * 9].fill(0);
        assert_eq!(DeviceInput::from_image(&params, &zero), Err(DeviceInputError::Box));
    }

    /// The streamed path (box, wide integer encoder, compact NTT, one limb) gives exactly the
    /// host's one-shot seeded encryption of the same compact message with the same randomness.
    #[test]
    fn enrolled_stream_equals_the_hosts_one_shot_seeded_encryption() {
        let params = Params::from_name("private-n15").unwrap();
        let ctx = Context::new(params).unwrap();
        let input = DeviceInput::new(&params, 8, 102, test_box()).unwrap();
        let key = SecretKey::from_seed(&params, &crate::keys::SecretSeed::new([7; 32])).unwrap();
        let roots: Vec<PrimeRoots> = (0..=8).map(|i| PrimeRoots::new(&params, i).unwrap()).collect();
        let encryptor = EnrolledEncryptor::new(&params, &input, &roots, &key).unwrap();
        let features = [0.01, 0.12, 0.3, 0.2, 0.4005, 0.55, 0.6, 10.0].map(to_fixed);
        let n = params.n();
        let (mut e, mut limb) = (vec![0i8; n], vec![0u64; n]);
        let (mut message, mut scratch) = ([0i128; MESSAGE_COEFFS], vec![0i64; fixed_scratch_len(DEVICE_SLOTS)]);
        let mut streamed = Vec::new();
        let bufs = EnrolledBuffers {
            e: &mut e,
            limb: &mut limb,
            message: &mut message,
            scratch: &mut scratch,
        };
        let moved = encryptor
            .encrypt::<_, ()>(&features, bufs, &mut ChaCha20Rng::seed_from_u64(11), &mut |b: &[u8]| {
                streamed.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        assert!(!moved);
        assert_eq!(streamed.len(), encryptor.ciphertext_bytes());
        assert!(limb.iter().all(|&w| w == 0) && message.iter().all(|&c| c == 0), "buffers wiped");

        let (u, _) = input.input_box.encode(&features);
        let mut coeffs = vec![0i128; MESSAGE_COEFFS];
        crate::encode::fixed::encode_real_fixed_wide(&u, DEVICE_SLOTS, MESSAGE_COEFFS, 102, &mut coeffs, &mut scratch).unwrap();
        let pt = Plaintext::from_fixed(coeffs, 102, 3).unwrap();
        let ct = encrypt_sk_seeded(&params, ctx.q_tables(), &key, &pt, 8, &mut ChaCha20Rng::seed_from_u64(11)).unwrap();
        assert_eq!(streamed, crate::wire::seeded_ciphertext_to_bytes(&params, &ct).unwrap());

        // And it decrypts to the box-encoded features in every 8-slot block.
        let ct = crate::wire::seeded_ciphertext_from_bytes(&params, &streamed)
            .unwrap()
            .expand(&params)
            .unwrap();
        let slots = crate::decrypt::decrypt(&ctx, &key, &ct).unwrap().decode().unwrap();
        for (j, s) in slots.iter().enumerate().take(64) {
            let want = u[j % 8] as f64 / 2f64.powi(32);
            assert!((s.re - want).abs() < 1e-12, "slot {j}: {} vs {want}", s.re);
        }
    }
}
