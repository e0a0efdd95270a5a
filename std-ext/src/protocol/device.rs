//! Enrolled devices: a scanner-side device in the 2 MiB flash / 512 KiB RAM class encrypts for
//! the vendor's circuit-private profile without the hospital's public key
//! (docs/device.md, `clifhe_core::device_input`).
//!
//! 1. The hospital enrols each device ([`enroll_device`]): a fresh device secret key (a 32-byte
//!    seed, written only into the device's bundle), a key switching key from it to the
//!    hospital's key ([`DeviceSwitchKey`], registered with the vendor), and the device's input
//!    image ([`device_input`]: the profile's input level + 1, the device input scale
//!    2^[`PRIVATE_LOG_INPUT_SCALE_DEVICE`] and the input box in fixed point).
//! 2. The device encrypts each patient's 8 features box-encoded into 8 slots
//!    (`clifhe_core::device_input::encrypt_enrolled`): every 8-slot block of the ring's slots
//!    holds the patient.
//! 3. The vendor ([`infer_devices`]) switches each ciphertext to the hospital's key, rotates it
//!    by 1..7 (one hoisted decomposition) and keeps, for blade b, slot p of patient p's rotation
//!    by (b - p) mod 8 with a one-hot mask at scale q_level / 2^[`MASK_GAIN_BITS`]: after the
//!    rescale the 8 blade
//!    ciphertexts of a blade-major batch at the profile's input level and the device scale. The
//!    noise this adds beyond a fresh encryption's is bounded
//!    ([`crate::gnn::noise::device_merge_noise_l2`]) and goes into the bounds the flood is sized
//!    from (the evaluation runs `profile::device_schedule`, whose 10 more input bits pay for
//!    it), so the release is as circuit-private as the hospital's own batches. The mask's
//!    encoding rounding scales each slot value by 1 + eps (|eps| < 2^-29): the device clamps its
//!    values to 1 - 2^-24 so they stay in the box the bounds are proven on.
//!
//! What the vendor learns: the number of patients, as from any batch. The switching key is an
//! RLWE encryption of the device key under the hospital's key: public material.

use super::batch::BatchHeader;
use super::model::PreparedModel;
use super::profile::InputProfile;
use super::vendor::{InferOptions, ScoredBatch, VendorKeys};
use super::{BatchLayout, ProtocolError, VendorModel};
use crate::context::EvalContext;
use crate::evaluator::Evaluator;
use crate::gnn::encrypted::PRIVATE_LOG_INPUT_SCALE_DEVICE;
use crate::keys::GaloisKeys;
use crate::keys_wire::DeviceSwitchKey;
use crate::keyswitch::SwitchingKey;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::device_input::{DeviceInput, FixedInputBox, DEVICE_SLOTS};
use clifhe_core::encode::fixed::to_fixed;
use clifhe_core::keys::SecretKeyOwned;
use clifhe_core::rns::{Representation, RnsPoly};
use clifhe_core::sample::fresh_seed;
use clifhe_core::{Params, SecretKey, SecretSeed};
use rand_chacha::rand_core::{CryptoRng, RngCore};

/// log2 of how far above the batch's input scale a device encrypts: the key switch to the
/// hospital's key and the rotation run at 2^(input + 12), and the mask (encoded at scale
/// q_level / 2^12) brings the scale down to the input scale with its rescale, dividing their
/// noise by 2^12 (`noise::device_merge_noise_l2`). The mask's encoding rounding then scales each
/// slot value by 1 + eps with |eps| <= N / (2 q_level / 2^12) < 2^-29, inside the 2^-24 margin
/// the device leaves below the box's edge (`clifhe_core::device_input::MAX_ABS_U`).
pub const MASK_GAIN_BITS: u32 = 12;

/// Rotation steps the vendor needs to build a batch from device ciphertexts (the hospital
/// registers them with `evalkeys --merge-patients 2` or more).
pub const DEVICE_ROTATIONS: [i64; 7] = [1, 2, 3, 4, 5, 6, 7];

/// What enrolling one device produces.
pub struct DeviceEnrollment {
    /// The device's secret key seed: for the device's flash only (wiped on drop).
    pub seed: SecretSeed,
    /// The key switching key from the device's key to the hospital's: for the vendor.
    pub switch_key: DeviceSwitchKey,
    /// The device's input image: level, scale and box (public).
    pub input: DeviceInput,
}

/// The input image of a device encrypting for `profile`: a circuit-private GNN profile in the
/// blade-major layout below whose top level there is one level for the vendor's mask.
pub fn device_input(params: &Params, profile: &InputProfile) -> Result<DeviceInput, ProtocolError> {
    let refuse = |why: String| ProtocolError::refused("device enrolment", why);
    if !profile.circuit_private || profile.layout != BatchLayout::BladeMajor {
        return Err(refuse(
            "a device encrypts for a circuit-private blade-major profile (`host-eval profile` without --no-flooding or --layout blocks)"
                .into(),
        ));
    }
    if profile.preset != params.name() {
        return Err(ProtocolError::PresetMismatch {
            found: profile.preset.clone(),
            expected: params.name().into(),
        });
    }
    let input_box = profile.input_box()?;
    // The device batch's schedule shares the profile's levels; its inputs sit higher, and the
    // device encrypts MASK_GAIN_BITS above them.
    let log_scale = PRIVATE_LOG_INPUT_SCALE_DEVICE as u32 + MASK_GAIN_BITS;
    let level = profile.input_level + 1;
    if level > params.max_level() {
        return Err(refuse(format!(
            "the profile's inputs sit at the top level {}: no level is left for the mask that places a device's patient in its slot",
            profile.input_level
        )));
    }
    let fixed = |v: &[f64; 8]| -> [i64; 8] { std::array::from_fn(|k| to_fixed(v[k])) };
    let fixed_box = FixedInputBox::new(fixed(&input_box.center), fixed(&input_box.half_width)).map_err(|e| refuse(e.to_string()))?;
    DeviceInput::new(params, level, log_scale, fixed_box).map_err(|e| refuse(e.to_string()))
}

/// Enrols one device for `profile`: a fresh device key from `rng`, its switching key to the
/// hospital's key `sk`, and its input image.
pub fn enroll_device<R: RngCore + CryptoRng>(
    ectx: &EvalContext,
    sk: &SecretKeyOwned,
    profile: &InputProfile,
    rng: &mut R,
) -> Result<DeviceEnrollment, ProtocolError> {
    let params = *ectx.params();
    let input = device_input(&params, profile)?;
    let seed = SecretSeed::new(fresh_seed(rng));
    let device_key = SecretKey::from_seed(&params, &seed)?;
    let n = params.n();
    let nq = params.q().len();
    let s_qp = ectx.secret_ntt_qp(&device_key)?;
    let mut s_q = RnsPoly::zero(n, nq, Representation::Ntt);
    s_q.as_mut_slice().copy_from_slice(&s_qp[..n * nq]);
    let key = SwitchingKey::generate(ectx, sk, &s_q, rng);
    zeroize::Zeroize::zeroize(s_q.as_mut_slice());
    Ok(DeviceEnrollment {
        seed,
        switch_key: DeviceSwitchKey(key?),
        input,
    })
}

/// A blade-major batch the vendor assembled from device ciphertexts.
pub struct DeviceBatch {
    /// The header of the profile's batch for these patients.
    pub header: BatchHeader,
    /// The 8 blade ciphertexts, patient p in slot p, at the profile's input level and the device scale.
    pub blades: Vec<CiphertextOwned>,
    /// Bound on the noise each blade carries beyond a fresh encryption's (coefficient 2-norm).
    pub input_l2: f64,
}

/// Builds the profile's blade-major batch from enrolled devices' ciphertexts (module docs),
/// patient p = `cts[p]`. Each ciphertext must be an 8-slot encoding at the device level (the
/// profile's input level + 1) and the device scale, under the key `switch_key`
/// switches from; `gks` holds the rotations [`DEVICE_ROTATIONS`].
pub fn batch_from_devices(
    ev: &Evaluator<'_>,
    profile: &InputProfile,
    switch_key: &DeviceSwitchKey,
    gks: &GaloisKeys,
    cts: &[CiphertextOwned],
) -> Result<DeviceBatch, ProtocolError> {
    let params = *ev.context().params();
    let input = device_input(&params, profile)?;
    let level = usize::from(input.level);
    let scale = f64::from(input.log_scale).exp2();
    let slots = params.max_slots();
    if cts.is_empty() || cts.len() > slots {
        return Err(ProtocolError::TooManyPatients {
            patients: cts.len(),
            first_slot: 0,
            max: slots,
        });
    }
    for (p, ct) in cts.iter().enumerate() {
        let m = ct.meta;
        if m.level != level || m.log_slots != DEVICE_SLOTS.trailing_zeros() || m.scale != scale {
            return Err(ProtocolError::refused(
                "device ciphertext",
                format!(
                    "patient {p}: level {}, 2^{} slots, scale 2^{:.2}; this profile's devices encrypt 8 slots at level {level} and scale 2^{}",
                    m.level,
                    m.log_slots,
                    m.scale.log2(),
                    input.log_scale
                ),
            ));
        }
    }
    for &step in &DEVICE_ROTATIONS {
        let g = crate::keys::rotation_galois_element(step, params.n())?;
        gks.get(g).map_err(|_| {
            ProtocolError::refused(
                "device ciphertexts",
                format!("the hospital registered no rotation key for step {step} (`host-eval evalkeys --merge-patients 2`)"),
            )
        })?;
    }
    // Exact in f64: the product's scale is 2^input * q_top (as f64), the rescale divides by the
    // same f64, leaving exactly 2^input.
    let mask_scale = params.q()[level] as f64 / f64::from(MASK_GAIN_BITS).exp2();
    let refuse = |e: crate::error::EvalError| ProtocolError::refused("device ciphertexts", e);
    let mut blades: Vec<Option<CiphertextOwned>> = vec![None; 8];
    let mut onehot = vec![0.0; slots];
    for (p, ct) in cts.iter().enumerate() {
        let mut switched = ev.switch_key(ct, &switch_key.0).map_err(refuse)?;
        // An 8-slot encoding is the full-slot encoding of its 8 values repeated: same
        // polynomial, read with all N/2 slots.
        switched.meta.log_slots = params.log_n() - 1;
        let mut rotations = vec![switched.clone()];
        rotations.extend(ev.rotate_hoisted(&switched, &DEVICE_ROTATIONS, gks).map_err(refuse)?);
        drop(switched);
        onehot[p] = 1.0;
        let mask = ev.encode_real(&onehot, level, mask_scale).map_err(refuse)?;
        onehot[p] = 0.0;
        for (b, acc) in blades.iter_mut().enumerate() {
            // Slot p of the rotation by r holds blade (p + r) mod 8.
            let r = (b + 8 - p % 8) % 8;
            let term = ev.mul_plain(&rotations[r], &mask).map_err(refuse)?;
            match acc {
                Some(a) => ev.add_assign(a, &term).map_err(refuse)?,
                None => *acc = Some(term),
            }
        }
    }
    let blades = blades
        .into_iter()
        .map(|b| {
            b.ok_or_else(|| ProtocolError::refused("device ciphertexts", "empty batch"))
                .and_then(|b| ev.rescale(&b).map_err(refuse))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DeviceBatch {
        header: BatchHeader::new(profile, cts.len()),
        blades,
        input_l2: crate::gnn::noise::device_merge_noise_l2(&params, level, cts.len(), MASK_GAIN_BITS),
    })
}

/// The vendor's circuit-private inference on enrolled devices' ciphertexts: the batch of
/// [`batch_from_devices`], then the box-encoded evaluation and sanitisation with the bounds
/// widened by the batch's extra input noise. GNN models only; never `--no-flooding`.
pub fn infer_devices<R: RngCore + CryptoRng>(
    ev: &Evaluator<'_>,
    keys: &VendorKeys<'_>,
    model: &PreparedModel,
    switch_key: &DeviceSwitchKey,
    cts: &[CiphertextOwned],
    opts: &InferOptions,
    rng: &mut R,
) -> Result<ScoredBatch, ProtocolError> {
    let VendorModel::Gnn(gnn) = model.model() else {
        return Err(ProtocolError::refused(
            "model",
            "enrolled devices encrypt 8 features per patient: only a GNN model evaluates them",
        ));
    };
    if opts.no_flooding {
        return Err(ProtocolError::refused(
            "--no-flooding",
            "device batches are evaluated circuit-private only (their profile is the circuit-private one)",
        ));
    }
    let gks = keys
        .gks
        .ok_or_else(|| ProtocolError::refused("device ciphertexts", "no rotation keys (`host-eval evalkeys --merge-patients 2`)"))?;
    let params = *ev.context().params();
    let profile = model.profile(&params, true, BatchLayout::BladeMajor)?;
    let schedule = super::profile::device_schedule(&params, &gnn.encrypted_plan())?;
    if schedule.input_level != profile.input_level {
        return Err(ProtocolError::refused(
            "model",
            "the device schedule's input level differs from the profile's",
        ));
    }
    let batch = batch_from_devices(ev, &profile, switch_key, gks, cts)?;
    super::vendor::infer_box_encoded_with_noise(
        ev,
        keys.pk,
        keys.rlk,
        gnn,
        &batch.header,
        &batch.blades,
        opts,
        &schedule,
        batch.input_l2,
        Some(model.masks()),
        rng,
    )
}
