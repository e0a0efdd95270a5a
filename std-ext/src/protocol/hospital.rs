//! The hospital's steps: encrypt patients for the vendor's profile, and release the vendor's
//! scores through the flooded decryption (docs/architecture.md §8). The secret key never leaves these
//! functions except as a release: argmax per patient, or scores rounded to a few digits.

use super::batch::{self, BatchHeader};
use super::leakage::{self, Disclosure, ROUNDED_RANGE};
use super::profile::InputProfile;
use super::record::BatchRecord;
use super::{BatchLayout, ProtocolError};
use crate::ga;
use crate::gnn::equivariant_blocks::pack_block_coefficients;
use crate::privacy::{Release, ReleaseFormat, ReleasePolicy, Releaser, ResultLayout, MIN_STATISTICAL_SECURITY};
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::context::Context;
use clifhe_core::encrypt::{
    encrypt_pk_expanded, encrypt_sk_expanded, ExpandedPublicA, ExpandedSecretKey, PlainCoeff, Plaintext, SeededEncryption,
};
use clifhe_core::keys::{PublicKeyOwned, SecretKeyOwned};
use clifhe_core::{wire, Multivector};
use rand_chacha::rand_core::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use serde::Serialize;
use zeroize::Zeroizing;

/// The key a batch is encrypted with.
#[derive(Clone, Copy, Debug)]
pub enum EncryptionKey<'a> {
    /// Public-key encryption: a gateway can hold just the public key.
    Public(&'a PublicKeyOwned),
    /// Seeded secret-key encryption: half the size (c1 travels as a 32-byte seed), for the
    /// hospital's own machines only.
    SecretSeeded(&'a SecretKeyOwned),
}

impl<'a> EncryptionKey<'a> {
    /// The key prepared for encryptions at levels up to `level`: the public key's `a` expanded,
    /// or the secret key transformed, once for every ciphertext of a batch (the same words as
    /// encrypting with the key directly).
    pub fn prepare(self, ctx: &Context, level: usize) -> Result<PreparedKey<'a>, clifhe_core::Error> {
        let params = ctx.params();
        Ok(match self {
            Self::Public(pk) => PreparedKey::Public(pk, ExpandedPublicA::new(params, ctx.q_tables(), pk, level)?),
            Self::SecretSeeded(sk) => PreparedKey::SecretSeeded(ExpandedSecretKey::new(params, ctx.q_tables(), sk, level)?),
        })
    }
}

/// An [`EncryptionKey`] prepared for a batch ([`EncryptionKey::prepare`]).
#[derive(Debug)]
pub enum PreparedKey<'a> {
    /// The public key and its expanded `a`.
    Public(&'a PublicKeyOwned, ExpandedPublicA),
    /// The secret key in the NTT domain (wiped on drop).
    SecretSeeded(ExpandedSecretKey),
}

/// One ciphertext as the hospital made it.
#[derive(Clone, Debug)]
pub enum Encrypted {
    /// Public-key encryption: both parts travel.
    Full(CiphertextOwned),
    /// Seeded secret-key encryption: `c1` travels as its seed.
    Seeded(SeededEncryption),
}

impl Encrypted {
    /// The whole ciphertext, as an evaluator in the same process takes it.
    pub fn ciphertext(&self) -> &CiphertextOwned {
        match self {
            Self::Full(ct) => ct,
            Self::Seeded(s) => &s.ciphertext,
        }
    }

    /// The whole ciphertext, by value.
    pub fn into_ciphertext(self) -> CiphertextOwned {
        match self {
            Self::Full(ct) => ct,
            Self::Seeded(s) => s.ciphertext,
        }
    }

    /// The wire bytes: a ciphertext, or a seeded ciphertext (half the size).
    pub fn into_wire(self, params: &clifhe_core::Params) -> Result<Vec<u8>, wire::WireError> {
        match self {
            Self::Full(ct) => wire::ciphertext_to_bytes(params, &ct),
            Self::Seeded(s) => wire::seeded_ciphertext_to_bytes(params, &s.into_seeded()),
        }
    }
}

impl PreparedKey<'_> {
    /// Encrypts `pt` at `level` (at most the level the key was prepared for).
    pub fn encrypt<R: RngCore + CryptoRng, M: AsRef<[C]> + AsMut<[C]>, C: PlainCoeff>(
        &self,
        ctx: &Context,
        pt: &Plaintext<M, C>,
        level: usize,
        rng: &mut R,
    ) -> Result<Encrypted, clifhe_core::Error> {
        let params = ctx.params();
        Ok(match self {
            Self::Public(pk, a) => Encrypted::Full(encrypt_pk_expanded(params, ctx.q_tables(), *pk, a, pt, level, rng)?),
            Self::SecretSeeded(sk) => Encrypted::Seeded(encrypt_sk_expanded(params, ctx.q_tables(), sk, pt, level, rng)?),
        })
    }
}

/// Encrypts `features` (one patient each, in order) for a GNN's `profile`: each patient's
/// features are clamped into the profile's box and encoded as u = (x - center) / half_width,
/// blade k of patient p into slot p of ciphertext k, at the profile's level and scale. The 8
/// blades are encrypted in parallel, each from its own ChaCha20 stream seeded from `rng`.
/// Returns the batch's header and its bytes ([`batch::to_bytes`]).
pub fn encrypt_for_profile<R: RngCore + CryptoRng>(
    ctx: &Context,
    profile: &InputProfile,
    key: EncryptionKey<'_>,
    features: &[[f64; 8]],
    rng: &mut R,
) -> Result<(BatchHeader, Vec<u8>), ProtocolError> {
    let input_box = profile.input_box()?;
    check_capacity(ctx, features.len())?;
    let encoded: Zeroizing<Vec<[f64; 8]>> = Zeroizing::new(features.iter().map(|f| input_box.encode(&Multivector::new(*f))).collect());
    let blades = ga::pack(ctx.params().max_slots(), BatchLayout::BladeMajor.ga_layout(), 0, &encoded)?;
    drop(encoded);
    let wires = encrypt_slot_vectors(ctx, profile, key, &blades, rng)?;
    drop(blades);
    let header = BatchHeader::new(profile, features.len());
    let bytes = batch::to_bytes(&header, &wires)?;
    Ok((header, bytes))
}

/// Encrypts the channels of patients (`channels[p]`: patient p's channel multivectors, as the
/// profile's `ChannelSpec` computes them from a prepared scan) for an equivariant model's
/// `profile`: each patient clamped into the public domain (each grade's norm scaled down to its
/// bound: a rotation commutes with it), then per channel one ciphertext per present blade,
/// patient p in slot p (blade-major), or per channel the two block vectors of
/// `gnn::equivariant_blocks::pack_block_inputs` for up to the profile's capacity (blocks), at
/// the profile's level and scale, in parallel as [`encrypt_for_profile`]. Returns the header,
/// the bytes, and the patients the clamp moved (outside the domain the model was trained on:
/// the hospital flags their diagnoses).
pub fn encrypt_channels_for_profile<R: RngCore + CryptoRng>(
    ctx: &Context,
    profile: &InputProfile,
    key: EncryptionKey<'_>,
    channels: &[Vec<Multivector>],
    rng: &mut R,
) -> Result<(BatchHeader, Vec<u8>, Vec<usize>), ProtocolError> {
    let input = profile.channels()?;
    check_capacity(ctx, channels.len())?;
    let count = input.spec.count();
    if let Some(p) = channels.iter().position(|x| x.len() != count) {
        return Err(ProtocolError::refused(
            format!("patient {p}"),
            format!("{} channels where the profile's model reads {count}", channels[p].len()),
        ));
    }
    if channels.iter().flatten().any(|m| m.coeffs().iter().any(|v| !v.is_finite())) {
        return Err(ProtocolError::refused("channels", "a non-finite channel value"));
    }
    // Clamped channels as coefficient arrays (patient data: wiped on drop).
    let clamped: Zeroizing<Vec<Vec<[f64; 8]>>> = Zeroizing::new(
        channels
            .iter()
            .map(|x| input.domain.clamp(x).iter().map(Multivector::coeffs).collect())
            .collect(),
    );
    let moved = (clamped.iter().zip(channels).enumerate())
        .filter(|(_, (a, b))| a.iter().zip(b.iter()).any(|(a, b)| *a != b.coeffs()))
        .map(|(p, _)| p)
        .collect();
    let vectors: Vec<Zeroizing<Vec<f64>>> = if profile.layout == BatchLayout::Blocks {
        let layout = profile.block_layout(ctx.params())?;
        if channels.len() > layout.capacity() {
            return Err(ProtocolError::TooManyPatients {
                patients: channels.len(),
                first_slot: 0,
                max: layout.capacity(),
            });
        }
        pack_block_coefficients(&layout, &clamped).map_err(|e| ProtocolError::refused("channels", e))?
    } else {
        // Per channel the blade-major slot vectors of the one packing routine, the present
        // blades kept.
        let mut vectors = Vec::new();
        for (c, present) in input.domain.present.iter().enumerate() {
            let coeffs: Zeroizing<Vec<[f64; 8]>> = Zeroizing::new(clamped.iter().map(|x| x[c]).collect());
            let blades = ga::pack(ctx.params().max_slots(), BatchLayout::BladeMajor.ga_layout(), 0, &coeffs)?;
            vectors.extend(blades.into_iter().zip(present).filter(|(_, p)| **p).map(|(v, _)| v));
        }
        vectors
    };
    drop(clamped);
    let wires = encrypt_slot_vectors(ctx, profile, key, &vectors, rng)?;
    drop(vectors);
    let header = BatchHeader::new(profile, channels.len());
    let bytes = batch::to_bytes(&header, &wires)?;
    Ok((header, bytes, moved))
}

fn check_capacity(ctx: &Context, patients: usize) -> Result<(), ProtocolError> {
    let slots = ctx.params().max_slots();
    if patients > slots {
        return Err(ProtocolError::TooManyPatients {
            patients,
            first_slot: 0,
            max: slots,
        });
    }
    Ok(())
}

/// Encrypts full-slot real vectors at the profile's level and scale, in parallel, each from its
/// own ChaCha20 stream seeded from `rng`: the wire bytes, in order.
fn encrypt_slot_vectors<R: RngCore + CryptoRng, V: AsRef<[f64]> + Sync>(
    ctx: &Context,
    profile: &InputProfile,
    key: EncryptionKey<'_>,
    vectors: &[V],
    rng: &mut R,
) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let params = *ctx.params();
    let scale = profile.input_log_scale.exp2();
    let level = profile.input_level;
    let seeds: Vec<Zeroizing<[u8; 32]>> = vectors
        .iter()
        .map(|_| {
            let mut seed = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(seed.as_mut());
            seed
        })
        .collect();
    let key = key.prepare(ctx, level)?;
    vectors
        .par_iter()
        .zip(&seeds)
        .map(|(values, seed)| {
            let mut rng = ChaCha20Rng::from_seed(**seed);
            let pt = Plaintext::encode_real(&params, values.as_ref(), scale)?;
            key.encrypt(ctx, &pt, level, &mut rng)?
                .into_wire(&params)
                .map_err(|e| ProtocolError::corrupt("ciphertext", e))
        })
        .collect()
}

/// One released prediction.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Prediction {
    /// Patient index in the batch.
    pub patient: usize,
    /// Released class (argmax of the flooded scores).
    pub class: usize,
    /// Its label.
    pub label: String,
    /// The flooded scores rounded to the requested decimals (`ReleaseFormat::Rounded`), per
    /// class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scores: Option<Vec<f64>>,
    /// The patient's features lay outside the model's input box when the hospital encrypted
    /// them (clamped; from the batch record): the diagnosis is for data unlike the training
    /// data.
    pub out_of_box: bool,
}

/// What the hospital asks a release to disclose.
#[derive(Clone, Copy, Debug)]
pub struct ReleaseRequest {
    /// Argmax only, or rounded scores too.
    pub disclosure: Disclosure,
    /// Statistical security of the flood (at least 30).
    pub statistical_security: u32,
}

/// A release that passed every check against the batch record, with its flood and its cost.
#[derive(Clone, Debug)]
pub struct PreparedRelease {
    policy: ReleasePolicy,
    disclosure: Disclosure,
    /// Bits this release costs the key set's ledger.
    pub cost_bits: f64,
    /// log2 of the hospital's release flood.
    pub flood_log2: u32,
}

/// Whether the batch of `record` can be released with `request` at all, decided from the
/// hospital's own record and request alone (so a refusal here tells the vendor nothing and costs
/// no budget): only a profile's circuit-private blade-major batch, at s >= 30. `--no-flooding`
/// and interleaved results have no proven bound the hospital could flood from.
pub fn releasable(record: &BatchRecord, request: &ReleaseRequest) -> Result<(), ProtocolError> {
    if request.statistical_security < MIN_STATISTICAL_SECURITY {
        return Err(ProtocolError::refused(
            "release",
            format!(
                "statistical security {} is below {MIN_STATISTICAL_SECURITY}",
                request.statistical_security
            ),
        ));
    }
    if !record.circuit_private || record.layout == BatchLayout::Interleaved || record.classes == 0 || record.result_log_scale < 1.0 {
        return Err(ProtocolError::refused(
            "release",
            "the batch was encrypted without a circuit-private profile (--no-flooding or interleaved): its results have no proven \
             noise bound and are not released (encrypt with a circuit-private profile)",
        ));
    }
    Ok(())
}

/// Checks the vendor's results (`cts`, one per class in class order; `vendor_noise_bound`, the
/// bound the vendor states) against the hospital's own `record`, and sizes the flood by the
/// hospital's policy. Nothing here trusts the vendor beyond using its bound as a lower limit:
/// - the record must be of a circuit-private batch (`--no-flooding` results have no proven
///   bound the hospital could flood from, and are not released);
/// - one full-slot ciphertext per class of the record, at most at the record's result level, at
///   exactly its scale;
/// - the flood is the hospital's ([`leakage::hospital_flood_log2`] for the precision the
///   disclosure needs at the record's scale), and must cover 2^s times the vendor's bound;
/// - the cost is charged for the record's patients, whatever the vendor claims.
pub fn prepare_release(
    ctx: &Context,
    record: &BatchRecord,
    vendor_noise_bound: f64,
    cts: &[CiphertextOwned],
    request: &ReleaseRequest,
) -> Result<PreparedRelease, ProtocolError> {
    let params = ctx.params();
    let refuse = |r: String| Err(ProtocolError::refused("release", r));
    releasable(record, request)?;
    let expected = if record.layout == BatchLayout::Blocks { 1 } else { record.classes };
    if cts.len() != expected {
        return refuse(format!(
            "{} score ciphertexts for the record's {} classes ({} layout: {expected} expected)",
            cts.len(),
            record.classes,
            record.layout.name()
        ));
    }
    let scale = record.result_log_scale.exp2();
    for (c, ct) in cts.iter().enumerate() {
        let m = ct.meta;
        if m.log_slots != params.log_n() - 1 || m.level > record.result_level || ((m.scale / scale) - 1.0).abs() > 1e-9 {
            return refuse(format!(
                "class {c}'s result is at level {} and scale 2^{:.2} with 2^{} slots; the batch record expects full slots at level <= {} and scale 2^{:.2}",
                m.level,
                m.scale.log2(),
                m.log_slots,
                record.result_level,
                record.result_log_scale
            ));
        }
    }
    if !(vendor_noise_bound.is_finite() && vendor_noise_bound >= 0.0) {
        return refuse("the vendor's noise bound is not a finite non-negative number".into());
    }
    let hospital = leakage::hospital_flood_log2(params, scale, request.disclosure.precision_bits());
    let mut policy = ReleasePolicy {
        statistical_security: request.statistical_security,
        min_flood_log2: hospital,
        ..ReleasePolicy::argmax(vendor_noise_bound, u64::MAX)
    };
    if let Disclosure::Rounded { digits } = request.disclosure {
        policy.format = ReleaseFormat::Rounded { digits };
    }
    let flood = policy.log_flood();
    if flood > f64::from(hospital) {
        return refuse(format!(
            "the vendor's stated noise bound needs a flood of 2^{flood}, beyond the 2^{hospital} the requested precision allows"
        ));
    }
    for ct in cts {
        policy
            .check_fits(params, ct.meta.level, ct.meta.scale)
            .map_err(|e| ProtocolError::refused("release", e))?;
    }
    Ok(PreparedRelease {
        policy,
        disclosure: request.disclosure,
        cost_bits: request.disclosure.cost_bits(record.patients, record.classes),
        flood_log2: hospital,
    })
}

/// The flooded decryption of a prepared release: the argmax of each of the record's patients
/// (slot p of ciphertext c holds patient p's class-c score), and with a rounded disclosure the
/// scores clamped to [-R, R] and rounded. The caller has charged `prepared.cost_bits` to the
/// key set's ledger before calling (count first: a crash never hands out an uncounted result).
pub fn release_scores<R: RngCore + CryptoRng>(
    ctx: &Context,
    sk: &SecretKeyOwned,
    record: &BatchRecord,
    cts: &[CiphertextOwned],
    prepared: &PreparedRelease,
    rng: &mut R,
) -> Result<Vec<Prediction>, ProtocolError> {
    let classes = record.classes;
    let layout = if record.layout == BatchLayout::Blocks {
        ResultLayout::Blocked {
            groups: record.patients,
            classes,
            block: ctx.params().max_slots() / 8,
        }
    } else {
        ResultLayout::CiphertextPerClass {
            groups: record.patients,
            classes,
        }
    };
    let refs: Vec<&CiphertextOwned> = cts.iter().collect();
    // Decrypt to flooded scores (15 digits: the full f64 precision of values below 2^10) and
    // reduce below, so the argmax and the rounding see the same flooded values and the clamp
    // applies before anything is rounded.
    let mut policy = prepared.policy.clone();
    policy.format = ReleaseFormat::Rounded { digits: 15 };
    let mut releaser = Releaser::new(policy);
    let rel = releaser
        .decrypt_for_release(ctx, sk, &refs, &layout, rng)
        .map_err(|e| ProtocolError::refused("release", e))?;
    let Release::Scores(v) = rel else {
        return Err(ProtocolError::refused("release", "expected scores"));
    };
    let v = Zeroizing::new(v);
    let label = |class: usize| record.labels.get(class).cloned().unwrap_or_default();
    Ok((0..record.patients)
        .map(|p| {
            let at = p * classes;
            let flooded = v.get(at..at + classes).map(<[f64]>::to_vec).unwrap_or_default();
            let argmax = |s: &[f64]| (0..s.len()).fold(0, |b, c| if s[c] > s[b] { c } else { b });
            // With rounded scores the class is the argmax of what is released (ties to the
            // lower class), so it tells nothing beyond the scores the cost already counts.
            let (class, rounded) = match prepared.disclosure {
                Disclosure::Argmax => (argmax(&flooded), None),
                Disclosure::Rounded { digits } => {
                    let f = 10f64.powi(digits.min(15) as i32);
                    let r: Vec<f64> = flooded
                        .iter()
                        .map(|s| (s.clamp(-ROUNDED_RANGE, ROUNDED_RANGE) * f).round() / f)
                        .collect();
                    (argmax(&r), Some(r))
                }
            };
            Prediction {
                patient: p,
                class,
                label: label(class),
                scores: rounded,
                out_of_box: record.out_of_box.contains(&p),
            }
        })
        .collect())
}
