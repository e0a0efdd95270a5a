//! The hospital's steps: encrypt patients for the vendor's profile, and release the vendor's
//! scores through the flooded decryption (DESIGN section 8). The secret key never leaves these
//! functions except as a release: argmax per patient, or scores rounded to a few digits.

use super::batch::{self, BatchHeader, BLADES};
use super::profile::InputProfile;
use super::{BatchLayout, ProtocolError, ScoresManifest};
use crate::ga;
use crate::privacy::{Release, ReleasePolicy, Releaser, ResultLayout};
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::context::Context;
use clifhe_core::encrypt::{encrypt_pk, encrypt_sk_seeded, Plaintext};
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

/// Encrypts `features` (one patient each, in order) for `profile`: each patient's features are
/// clamped into the profile's box and encoded as u = (x - center) / half_width, blade k of
/// patient p into slot p of ciphertext k, at the profile's level and scale. The 8 blades are
/// encrypted in parallel, each from its own ChaCha20 stream seeded from `rng`. Returns the
/// batch's header and its bytes ([`batch::to_bytes`]).
pub fn encrypt_for_profile<R: RngCore + CryptoRng>(
    ctx: &Context,
    profile: &InputProfile,
    key: EncryptionKey<'_>,
    features: &[[f64; 8]],
    rng: &mut R,
) -> Result<(BatchHeader, Vec<u8>), ProtocolError> {
    let params = *ctx.params();
    let slots = params.max_slots();
    if features.len() > slots {
        return Err(ProtocolError::TooManyPatients {
            patients: features.len(),
            first_slot: 0,
            max: slots,
        });
    }
    let encoded: Zeroizing<Vec<[f64; 8]>> =
        Zeroizing::new(features.iter().map(|f| profile.input_box.encode(&Multivector::new(*f))).collect());
    let blades = ga::pack(slots, BatchLayout::BladeMajor.ga_layout(), 0, &encoded)?;
    drop(encoded);
    let scale = profile.input_log_scale.exp2();
    let level = profile.input_level;
    let seeds: Vec<Zeroizing<[u8; 32]>> = (0..BLADES)
        .map(|_| {
            let mut seed = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(seed.as_mut());
            seed
        })
        .collect();
    let wires = blades
        .par_iter()
        .zip(&seeds)
        .map(|(values, seed)| {
            let mut rng = ChaCha20Rng::from_seed(**seed);
            let pt = Plaintext::encode_real(&params, values, scale)?;
            match key {
                EncryptionKey::Public(pk) => {
                    wire::ciphertext_to_bytes(&params, &encrypt_pk(&params, ctx.q_tables(), pk, &pt, level, &mut rng)?)
                }
                EncryptionKey::SecretSeeded(sk) => {
                    wire::seeded_ciphertext_to_bytes(&params, &encrypt_sk_seeded(&params, ctx.q_tables(), sk, &pt, level, &mut rng)?)
                }
            }
            .map_err(|e| ProtocolError::corrupt("ciphertext", e))
        })
        .collect::<Result<Vec<_>, ProtocolError>>()?;
    drop(blades);
    let header = BatchHeader::new(profile, features.len());
    let bytes = batch::to_bytes(&header, &wires)?;
    Ok((header, bytes))
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
}

/// Checks, before any counter is spent, that a release of `cts` under `policy` can happen
/// (its flood fits every score ciphertext): a refused release then uses no budget.
pub fn check_release(ctx: &Context, policy: &ReleasePolicy, cts: &[CiphertextOwned]) -> Result<(), ProtocolError> {
    for ct in cts {
        policy
            .check_fits(ctx.params(), ct.meta.level, ct.meta.scale)
            .map_err(|e| ProtocolError::refused("release", e))?;
    }
    Ok(())
}

/// The flooded decryption of the vendor's scores (`manifest` and its `cts`, one per class)
/// under `policy`: argmax per patient, or with `ReleaseFormat::Rounded` the rounded scores
/// beside it. `released_so_far` is the key's persisted release count, which the caller has
/// already advanced and stored (count first: a crash never hands out an uncounted result).
pub fn release_scores<R: RngCore + CryptoRng>(
    ctx: &Context,
    sk: &SecretKeyOwned,
    manifest: &ScoresManifest,
    cts: &[CiphertextOwned],
    policy: ReleasePolicy,
    released_so_far: u64,
    rng: &mut R,
) -> Result<Vec<Prediction>, ProtocolError> {
    let mut releaser = Releaser::with_count(policy, released_so_far);
    let stride = manifest.stride;
    let classes = manifest.classes;
    // Score of (patient p, class c) sits in slot p * stride of ciphertext c.
    let layout = ResultLayout::CiphertextPerClass {
        groups: manifest.patients * stride,
        classes,
    };
    let refs: Vec<&CiphertextOwned> = cts.iter().collect();
    let rel = releaser
        .decrypt_for_release(ctx, sk, &refs, &layout, rng)
        .map_err(|e| ProtocolError::refused("release", e))?;
    let label = |class: usize| manifest.labels.get(class).cloned().unwrap_or_default();
    Ok(match rel {
        Release::Classes(c) => (0..manifest.patients)
            .map(|p| {
                let class = c.get(p * stride).copied().unwrap_or(0);
                Prediction {
                    patient: p,
                    class,
                    label: label(class),
                    scores: None,
                }
            })
            .collect(),
        // Scores group-major: group g = p * stride holds classes g * classes .. + classes.
        Release::Scores(v) => (0..manifest.patients)
            .map(|p| {
                let at = p * stride * classes;
                let scores = v.get(at..at + classes).map(<[f64]>::to_vec).unwrap_or_default();
                let class = (0..scores.len()).fold(0, |b, c| if scores[c] > scores[b] { c } else { b });
                Prediction {
                    patient: p,
                    class,
                    label: label(class),
                    scores: Some(scores),
                }
            })
            .collect(),
    })
}
