//! The device's encryption path, over flash images and caller buffers only (no heap).
//!
//! - [`FlashImages`]: the hospital public key (`b` limbs + `a` seed) and the forward NTT tables,
//!   generated on the host (`host-tool gen`) and compiled into flash with `include_bytes!`.
//! - [`PkStream`]: public-key encryption streamed prime by prime in the wire format: the 32-byte
//!   header, then per prime the c0 limb and the c1 limb, each bit-packed and handed to the sink
//!   as soon as it is computed. RAM: the encoded message (N i64), the noise (3N i8) and two
//!   N-word limbs, whatever the number of primes.
//! - [`encrypt_volume_pk`]: the whole per-patient path (fixed-point features, integer
//!   encoding, the stream above), in integer arithmetic only, with no branch or division on
//!   the voxels.
//! - [`SkStream`]: seeded secret-key encryption (c1 travels as a 32-byte seed: half the bytes).
//! - [`encrypt_volume_enrolled`]: an enrolled device's per-patient path at PRIVATE_N15
//!   (fixed-point features, then core's `device_input::EnrolledEncryptor`: box encoding, wide
//!   integer encoding, seeded secret-key encryption under the device key with per-block
//!   twiddles), integer arithmetic only as well.
//!
//! - [`depth_channel_volume_fixed`]: the equivariant model's interior depth channel;
//! - [`channels_volume_fixed`]: the equivariant model's input channels (intensity shells and
//!   principal axes, core's `fixed_channels`), integer arithmetic only, constant time.
//!
//! The bytes produced are exactly `wire::ciphertext_to_bytes` / `seeded_ciphertext_to_bytes` of
//! the host's one-shot encryption with the same randomness (tested byte for byte).

use clifhe_core::arith::Modulus;
use clifhe_core::device_input::{EnrolledBuffers, EnrolledEncryptor, EnrolledError};
use clifhe_core::encrypt::{PkEncryptionNoise, PkStreamEncryptor, Plaintext, SkStreamEncryptor};
use clifhe_core::keys::{PublicKey, SecretKey};
use clifhe_core::ntt::NttTable;
use clifhe_core::params::Params;
use clifhe_core::rns::{Representation, RnsPoly};
use clifhe_core::sample::SEED_BYTES;
use clifhe_core::wire::{self, Header, Kind};
use rand_core::{CryptoRng, RngCore};

/// Why the device could not produce a ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, defmt::Format)]
pub enum DeviceError {
    /// A flash image is missing, misaligned or of the wrong size (a build problem).
    FlashImage(&'static str),
    /// clifhe-core refused an input (message shape, key/parameter mismatch, ...).
    Core(#[defmt(Debug2Format)] clifhe_core::Error),
    /// Packing a limb for the wire failed (buffer sizing).
    Wire(#[defmt(Debug2Format)] wire::WireError),
    /// The encoder refused the features (values out of range, scale).
    Encode(#[defmt(Debug2Format)] clifhe_core::encode::EncodeError),
    /// The byte sink (host file, link) failed.
    Sink,
    /// No fresh seed for the encryption (the firmware never falls back to a fixed one).
    Entropy(crate::entropy::EntropyError),
    /// The volume does not match its geometry.
    Features(#[defmt(Debug2Format)] clifhe_core::multivector::features::FeatureError),
    /// The enrolment's input image does not fit the preset (size, magic, level, scale, box).
    Enrolment(#[defmt(Debug2Format)] clifhe_core::device_input::DeviceInputError),
}

impl From<clifhe_core::device_input::DeviceInputError> for DeviceError {
    fn from(e: clifhe_core::device_input::DeviceInputError) -> Self {
        Self::Enrolment(e)
    }
}

/// The enrolled encryptor's errors; a failed sink keeps the sink's own error.
impl From<EnrolledError<DeviceError>> for DeviceError {
    fn from(e: EnrolledError<DeviceError>) -> Self {
        match e {
            EnrolledError::Core(e) => Self::Core(e),
            EnrolledError::Encode(e) => Self::Encode(e),
            EnrolledError::Wire(e) => Self::Wire(e),
            EnrolledError::Sink(e) => e,
        }
    }
}

impl From<clifhe_core::multivector::features::FeatureError> for DeviceError {
    fn from(e: clifhe_core::multivector::features::FeatureError) -> Self {
        Self::Features(e)
    }
}

impl From<crate::entropy::EntropyError> for DeviceError {
    fn from(e: crate::entropy::EntropyError) -> Self {
        Self::Entropy(e)
    }
}

impl From<clifhe_core::Error> for DeviceError {
    fn from(e: clifhe_core::Error) -> Self {
        Self::Core(e)
    }
}
impl From<wire::WireError> for DeviceError {
    fn from(e: wire::WireError) -> Self {
        Self::Wire(e)
    }
}
impl From<clifhe_core::encode::EncodeError> for DeviceError {
    fn from(e: clifhe_core::encode::EncodeError) -> Self {
        Self::Encode(e)
    }
}

/// Bytes with the alignment of `u64`, so an `include_bytes!` image can be viewed as words
/// (checked at run time by `bytemuck`, no `unsafe`).
#[repr(C)]
pub struct Aligned<T: ?Sized> {
    pub _align: [u64; 0],
    pub bytes: T,
}

/// Views a flash image as little-endian u64 words (both the host generator and the Cortex-M are
/// little-endian); refuses misaligned or odd-sized images.
pub fn words(img: &'static Aligned<[u8]>, what: &'static str) -> Result<&'static [u64], DeviceError> {
    bytemuck::try_cast_slice(&img.bytes).map_err(|_| DeviceError::FlashImage(what))
}

/// Flash images of one device preset (see `images!`).
pub struct FlashImages {
    pub literal: clifhe_core::ParamsLiteral,
    pub pk_b: &'static Aligned<[u8]>,
    pub pk_a_seed: &'static [u8; SEED_BYTES],
    /// Per prime: forward twiddles then their Shoup quotients (2N words).
    pub ntt: &'static [&'static Aligned<[u8]>],
}

/// Embeds the images `host-tool gen` wrote to `target/gen/<preset>/`.
#[macro_export]
macro_rules! gen_file {
    ($preset:literal, $file:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/gen/", $preset, "/", $file)
    };
}
#[macro_export]
macro_rules! aligned_image {
    ($preset:literal, $file:literal) => {{
        static IMG: &$crate::device::Aligned<[u8]> = &$crate::device::Aligned {
            _align: [],
            bytes: *include_bytes!($crate::gen_file!($preset, $file)),
        };
        IMG
    }};
}

/// Embeds a file of the provisioned key bundle (`CLIFHE_DEVICE_BUNDLE`, checked by build.rs).
#[macro_export]
macro_rules! bundle_file {
    ($file:literal) => {
        concat!(env!("CLIFHE_DEVICE_BUNDLE_DIR"), "/", $file)
    };
}
#[macro_export]
macro_rules! aligned_bundle_image {
    ($file:literal) => {{
        static IMG: &$crate::device::Aligned<[u8]> = &$crate::device::Aligned {
            _align: [],
            bytes: *include_bytes!($crate::bundle_file!($file)),
        };
        IMG
    }};
}

/// Most primes a device preset may have (the N=2^14 chain has 8).
pub const MAX_DEVICE_PRIMES: usize = 8;

/// The preset, NTT tables and public key, viewed in place in flash.
pub struct DeviceKeys {
    pub params: Params,
    pub tables: heapless::Vec<NttTable<&'static [u64]>, MAX_DEVICE_PRIMES>,
    pub pk: PublicKey<&'static [u64]>,
}

impl FlashImages {
    /// Checks every image against the preset and wraps it (no copy: everything stays in flash).
    pub fn load(&self) -> Result<DeviceKeys, DeviceError> {
        let params = Params::new(self.literal).map_err(|_| DeviceError::FlashImage("preset"))?;
        let n = params.n();
        let primes = params.q().len();
        if self.ntt.len() != primes {
            return Err(DeviceError::FlashImage("prime count"));
        }
        let mut tables = heapless::Vec::new();
        for (img, &q) in self.ntt.iter().zip(params.q()) {
            // Forward only (2N words) or forward then inverse (4N words: the low-RAM stream).
            let w = words(img, "ntt table")?;
            if w.len() != 2 * n && w.len() != 4 * n {
                return Err(DeviceError::FlashImage("ntt table size"));
            }
            let m = Modulus::new(q).ok_or(DeviceError::FlashImage("modulus"))?;
            let (fwd, rest) = w.split_at(n);
            let (shoup, inverse) = rest.split_at(n);
            let (inv, inv_shoup) = inverse.split_at(inverse.len() / 2);
            let t = NttTable::from_parts(m, n, fwd, shoup, inv, inv_shoup).map_err(|_| DeviceError::FlashImage("ntt table"))?;
            tables
                .push(t)
                .map_err(|_| DeviceError::FlashImage("more primes than MAX_DEVICE_PRIMES"))?;
        }
        let b = RnsPoly::from_storage(n, primes, Representation::Ntt, words(self.pk_b, "public key b")?)
            .map_err(|_| DeviceError::FlashImage("public key size"))?;
        let pk = PublicKey::from_parts(&params, *self.pk_a_seed, b)?;
        Ok(DeviceKeys { params, tables, pk })
    }
}

/// Packs one limb for the wire in pieces of 64 coefficients and hands each to `sink` (core's
/// `device_input::emit_limb`: a 512-byte buffer instead of a packed copy of the limb).
pub fn emit_limb(limb: &[u64], q: u64, sink: &mut impl FnMut(&[u8]) -> Result<(), DeviceError>) -> Result<(), DeviceError> {
    Ok(clifhe_core::device_input::emit_limb(limb, q, sink)?)
}

/// Encodes the patient's fixed-point values (`encode::fixed::FRAC_BITS` fractional bits) into
/// slots `0..values.len()` of a `slots`-slot plaintext at the preset's default scale, with the
/// integer encoder: no floating point, no division, no branch on the values. `coeffs` holds N
/// `i64`, or only the `2 * slots` that can be nonzero (the compact message the encryptor
/// spreads over the ring: 128 bytes instead of 32 KiB for 8 slots); `scratch` needs
/// `encode::fixed::fixed_scratch_len(slots)` entries.
pub fn encode_features<'a>(
    params: &Params,
    values: &[i64],
    slots: usize,
    coeffs: &'a mut [i64],
    scratch: &mut [i64],
) -> Result<Plaintext<&'a mut [i64], i64>, DeviceError> {
    let log_scale = params.log_default_scale();
    // The compact layout of degree L is the dense encoding at ring degree L (see core's
    // `encrypt::compact_log_gap`), so the buffer's length is the encoder's ring degree.
    if coeffs.len() > params.n() {
        return Err(DeviceError::Core(clifhe_core::Error::BufferLength {
            expected: params.n(),
            found: coeffs.len(),
        }));
    }
    let ring = coeffs.len();
    clifhe_core::encode::fixed::encode_real_fixed(values, slots, ring, log_scale, coeffs, scratch)?;
    Ok(Plaintext::from_fixed(coeffs, log_scale, slots.trailing_zeros())?)
}

/// The scan's public geometry for [`encrypt_volume_pk`]: `FixedGeometry::new`, computed once
/// before any voxel is read (it may use floating point: dimensions and spacing are public).
pub use clifhe_core::multivector::fixed_channels::{FixedDepth, FixedShells};
pub use clifhe_core::multivector::fixed_features::FixedGeometry;

/// RAM of [`encrypt_volume_pk`] besides the encryption's: the compact message (`2 * slots`
/// `i64`) and the encoder's root tables.
pub struct MessageBuffers<'a> {
    pub coeffs: &'a mut [i64],
    pub scratch: &'a mut [i64],
}

/// What a device does per patient, from voxels to ciphertext: constant-time fixed-point
/// features, integer encoding in slots 0..7 of a `slots`-slot plaintext (compact), public-key
/// encryption in one limb buffer ([`pk_stream_in_place`]) streamed to `sink`. The disassembly
/// test (`scripts/device-tests.sh`, `ct-check`) walks the call graph from this function in the
/// release image and fails if anything it reaches calls a soft-float or division routine or
/// executes a divide or floating-point arithmetic instruction.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub fn encrypt_volume_pk<R: RngCore + CryptoRng>(
    keys: &DeviceKeys,
    geom: &FixedGeometry,
    volume: &[u8],
    slots: usize,
    msg_bufs: MessageBuffers<'_>,
    pk_bufs: PkInPlaceBuffers<'_>,
    rng: &mut R,
    sink: &mut impl FnMut(&[u8]) -> Result<(), DeviceError>,
) -> Result<(), DeviceError> {
    let features = zeroize::Zeroizing::new(clifhe_core::multivector::fixed_features::scan_features_fixed(volume, geom)?);
    let pt = encode_features(&keys.params, &features[..], slots, msg_bufs.coeffs, msg_bufs.scratch)?;
    pk_stream_in_place(keys, &pt, pk_bufs, rng, sink)
}

/// What an enrolled device does per patient, from voxels to ciphertext (PRIVATE_N15,
/// `encrypt_scan_n15`): constant-time fixed-point features, then `encryptor` (core's
/// `EnrolledEncryptor`: the features mapped into the profile's input box, the wide integer
/// encoder into 8 slots at the enrolment's scale, seeded secret-key encryption under the device
/// key at the enrolment's level, each c0 limb computed in `bufs.limb` with a `CompactNtt` and
/// streamed packed to `sink`). Returns whether the box clamp moved a feature. The features are
/// wiped before returning; the encryptor wipes its limb, message and error. Like
/// [`encrypt_volume_pk`], the root of the disassembly test (`ct-check`): nothing it reaches may
/// call a soft-float or division routine or execute a divide or floating-point instruction.
#[inline(never)]
pub fn encrypt_volume_enrolled<R: RngCore + CryptoRng, K: AsRef<[i8]> + AsMut<[i8]>>(
    encryptor: &EnrolledEncryptor<'_, K>,
    geom: &FixedGeometry,
    volume: &[u8],
    bufs: EnrolledBuffers<'_>,
    rng: &mut R,
    sink: &mut impl FnMut(&[u8]) -> Result<(), DeviceError>,
) -> Result<bool, DeviceError> {
    let features = zeroize::Zeroizing::new(clifhe_core::multivector::fixed_features::scan_features_fixed(volume, geom)?);
    Ok(encryptor.encrypt(&features, bufs, rng, sink)?)
}

/// The equivariant model's input channels of one 8-bit volume into `out` (core's
/// `fixed_channels::channels_fixed`: the intensity shells of `shells`, then the three principal
/// axes if `principal_axes`; `[i64; 8]` per channel, 32 fractional bits); returns the channel
/// count. Integer arithmetic only, no branch, division or data-dependent address on a voxel (the
/// root of a `ct-check` in `scripts/device-tests.sh`). `shells` is made once at boot
/// (`FixedShells::uniform`/`new`, floating point on public data).
#[inline(never)]
pub fn channels_volume_fixed(
    geom: &FixedGeometry,
    shells: Option<&FixedShells>,
    principal_axes: bool,
    volume: &[u8],
    out: &mut [[i64; 8]],
) -> Result<usize, DeviceError> {
    Ok(clifhe_core::multivector::fixed_channels::channels_fixed(
        volume,
        geom,
        shells,
        principal_axes,
        out,
    )?)
}

/// The equivariant model's interior depth channel of one 8-bit volume into `out` (core's
/// `fixed_channels::depth_channel_fixed`: the clamped squared depths by the branch-free
/// separable transform, exact integer sums, one constant-time square root). `depths` (one byte
/// per voxel) and `line` are the caller's RAM (`multivector::depth::depth_scratch_len`);
/// `depth` is made once at boot (`FixedDepth::new`). The root of a `ct-check` in
/// `scripts/device-tests.sh`, like [`channels_volume_fixed`].
#[inline(never)]
pub fn depth_channel_volume_fixed(
    geom: &FixedGeometry,
    depth: &FixedDepth,
    volume: &[u8],
    depths: &mut [u8],
    line: &mut [u16],
    out: &mut [i64; 8],
) -> Result<(), DeviceError> {
    Ok(clifhe_core::multivector::fixed_channels::depth_channel_fixed(
        volume, geom, depth, depths, line, out,
    )?)
}

/// Caller-provided RAM of [`pk_stream_in_place`]: the noise (3N i8) and one N-word limb.
pub struct PkInPlaceBuffers<'a> {
    pub u: &'a mut [i8],
    pub e0: &'a mut [i8],
    pub e1: &'a mut [i8],
    pub limb: &'a mut [u64],
}

/// The wire header of a public-key ciphertext of `msg` at the preset's top level.
fn pk_header<C: clifhe_core::encrypt::PlainCoeff, S: AsRef<[C]> + AsMut<[C]>>(p: &Params, msg: &Plaintext<S, C>) -> Header {
    let level = p.max_level();
    Header {
        params_id: p.id(),
        kind: Kind::Ciphertext,
        insecure: p.is_insecure(),
        level: level as u16,
        log_slots: msg.log_slots() as u8,
        scale: msg.scale(),
        body_len: wire::body_bytes(p, level, 2) as u64,
    }
}

/// Public-key encryption at the top level in one N-word limb buffer (the low-RAM mode): per
/// prime, `c0` then `c1`, each computed in `limb` by core's `c0_limb_in_place` /
/// `c1_limb_in_place` (NTT(u) recomputed per limb, one inverse transform each: two more
/// transforms per limb than [`PkStream`], half its limb RAM) and streamed as soon as it is
/// ready. Needs full NTT tables (forward and inverse) in flash. The bytes equal [`PkStream`]'s
/// for the same randomness. `limb` holds key-dependent intermediates (NTT(u) * b) between
/// steps, so it is wiped if the stream stops early.
pub fn pk_stream_in_place<R: RngCore + CryptoRng>(
    keys: &DeviceKeys,
    msg: &Plaintext<&mut [i64], i64>,
    bufs: PkInPlaceBuffers<'_>,
    rng: &mut R,
    sink: &mut impl FnMut(&[u8]) -> Result<(), DeviceError>,
) -> Result<(), DeviceError> {
    let p = &keys.params;
    let noise = PkEncryptionNoise::sample_into(rng, bufs.u, bufs.e0, bufs.e1)?;
    let enc = PkStreamEncryptor::new(p, &keys.pk, msg, noise)?;
    let limb = bufs.limb;
    let result = (|| {
        sink(&pk_header(p, msg).to_bytes())?;
        for (i, table) in keys.tables.iter().enumerate().take(p.max_level() + 1) {
            let q = table.modulus().value();
            enc.c0_limb_in_place(i, table, limb)?;
            emit_limb(limb, q, sink)?;
            enc.c1_limb_in_place(i, table, limb)?;
            emit_limb(limb, q, sink)?;
        }
        Ok(())
    })();
    if result.is_err() {
        zeroize::Zeroize::zeroize(&mut *limb);
    }
    result
}

/// Caller-provided RAM of one public-key encryption (N = ring degree).
pub struct PkBuffers<'a> {
    pub u: &'a mut [i8],
    pub e0: &'a mut [i8],
    pub e1: &'a mut [i8],
    pub u_hat: &'a mut [u64],
    pub limb: &'a mut [u64],
}

/// Public-key encryption of one message at the top level, streamed prime by prime.
pub struct PkStream<'a, 'k> {
    keys: &'k DeviceKeys,
    enc: PkStreamEncryptor<'k, &'static [u64], &'a mut [i64], &'a mut [i8], i64>,
    u_hat: &'a mut [u64],
    limb: &'a mut [u64],
}

/// `u_hat` holds NTT(u) of the last prime streamed (or of a prime whose streaming failed):
/// the encryption randomness, which decrypts the ciphertext with the public key alone. The
/// caller owns the buffer (often a `static` or a stack array that outlives the stream), so the
/// stream wipes it when it ends, on success and on every early error alike.
impl Drop for PkStream<'_, '_> {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut *self.u_hat);
    }
}

impl<'a, 'k> PkStream<'a, 'k> {
    /// Samples the encryption noise (u, e0, e1) from `rng` and sends the wire header.
    pub fn begin<R: RngCore + CryptoRng>(
        keys: &'k DeviceKeys,
        msg: &'k Plaintext<&'a mut [i64], i64>,
        bufs: PkBuffers<'a>,
        rng: &mut R,
        sink: &mut impl FnMut(&[u8]) -> Result<(), DeviceError>,
    ) -> Result<Self, DeviceError> {
        let p = &keys.params;
        let header = pk_header(p, msg);
        let noise = PkEncryptionNoise::sample_into(rng, bufs.u, bufs.e0, bufs.e1)?;
        let enc = PkStreamEncryptor::new(p, &keys.pk, msg, noise)?;
        sink(&header.to_bytes())?;
        Ok(Self {
            keys,
            enc,
            u_hat: bufs.u_hat,
            limb: bufs.limb,
        })
    }

    /// Primes to stream (level + 1).
    pub fn primes(&self) -> usize {
        self.keys.params.max_level() + 1
    }

    /// Computes and sends prime `i`'s limbs: NTT(u), then c0, then c1 (one limb buffer reused).
    pub fn prime(&mut self, i: usize, sink: &mut impl FnMut(&[u8]) -> Result<(), DeviceError>) -> Result<(), DeviceError> {
        let table = self.keys.tables.get(i).ok_or(DeviceError::FlashImage("prime index"))?;
        let q = table.modulus().value();
        self.enc.prepare_prime(i, table, self.u_hat)?;
        self.enc.c0_limb(i, table, self.u_hat, self.limb)?;
        emit_limb(self.limb, q, sink)?;
        self.enc.c1_limb(i, table, self.u_hat, self.limb)?;
        emit_limb(self.limb, q, sink)
    }

    /// Streams every prime.
    pub fn finish(mut self, sink: &mut impl FnMut(&[u8]) -> Result<(), DeviceError>) -> Result<(), DeviceError> {
        for i in 0..self.primes() {
            self.prime(i, sink)?;
        }
        Ok(())
    }
}

/// Seeded secret-key encryption at the top level, streamed prime by prime: header, c1 seed, then
/// the c0 limbs. `s_hat` and `limb` are N words each, `e` N bytes.
#[allow(clippy::too_many_arguments)]
pub fn sk_stream<R: RngCore + CryptoRng, K: AsRef<[i8]> + AsMut<[i8]>>(
    keys: &DeviceKeys,
    sk: &SecretKey<K>,
    msg: &Plaintext<&mut [i64], i64>,
    e: &mut [i8],
    s_hat: &mut [u64],
    limb: &mut [u64],
    rng: &mut R,
    sink: &mut impl FnMut(&[u8]) -> Result<(), DeviceError>,
) -> Result<(), DeviceError> {
    let p = &keys.params;
    let level = p.max_level();
    let enc = SkStreamEncryptor::new(p, sk, msg, e, rng)?;
    let header = Header {
        params_id: p.id(),
        kind: Kind::SeededCiphertext,
        insecure: p.is_insecure(),
        level: level as u16,
        log_slots: msg.log_slots() as u8,
        scale: msg.scale(),
        body_len: (SEED_BYTES + wire::body_bytes(p, level, 1)) as u64,
    };
    sink(&header.to_bytes())?;
    sink(enc.c1_seed())?;
    for (i, table) in keys.tables.iter().enumerate().take(level + 1) {
        enc.c0_limb(i, table, s_hat, limb)?;
        emit_limb(limb, table.modulus().value(), sink)?;
    }
    Ok(())
}
