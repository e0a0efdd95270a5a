//! The key-switching engine's paths agree bit for bit: fused and hoisted, with and without a
//! Galois permutation, compact and expanded keys, any number of scratch workers, adding and
//! setting the second output; a sum of switches brought down once (`KeySwitchSum`) equals the
//! sum of the switches up to one rounding; and a scratch or output of the wrong shape is an
//! error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::arith::Modulus;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encode::Complex;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::params::presets;
use clifhe_core::rns::{Representation, RnsPoly, RnsPolyOwned};
use clifhe_core::{Params, ParamsLiteral, PublicKey, SecretKey};
use clifhe_std::keys::rotation_galois_element;
use clifhe_std::keyswitch::{KeySwitchScratch, SecondOutput};
use clifhe_std::{EvalContext, EvalError, Evaluator, GaloisKeys, RelinearizationKey, SwitchingKey};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

struct Fixture {
    ectx: EvalContext,
    ct: CiphertextOwned,
    gks: GaloisKeys,
    rlk: RelinearizationKey,
}

fn fixture(lit: ParamsLiteral) -> Fixture {
    let params = Params::new(lit).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let slots = params.max_slots();
    let v: Vec<Complex> = (0..slots)
        .map(|i| Complex::new((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos()))
        .collect();
    let pt = Plaintext::encode(&params, &v, params.default_scale()).unwrap();
    let ct = encrypt_pk(&params, ectx.q_tables(), &pk, &pt, params.max_level(), &mut rng).unwrap();
    let gks = GaloisKeys::for_rotations(&ectx, &sk, &[3], false, &mut rng).unwrap();
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng).unwrap();
    Fixture { ectx, ct, gks, rlk }
}

fn zero(f: &Fixture) -> RnsPolyOwned {
    RnsPoly::zero(f.ectx.n(), f.ct.c1.limbs(), Representation::Ntt)
}

/// The switch of c1 through `perm` with `key`, into fresh outputs (the second pre-filled with
/// garbage that `Set` must overwrite), on a scratch of `workers` workers.
fn switch(f: &Fixture, perm: &clifhe_std::galois::GaloisPermutation, key: &SwitchingKey, workers: usize) -> (RnsPolyOwned, RnsPolyOwned) {
    let (mut d0, mut d1) = (zero(f), zero(f));
    d1.as_mut_slice().fill(7);
    let mut s = KeySwitchScratch::with_workers(&f.ectx, workers);
    assert_eq!(s.worker_count(), workers);
    f.ectx
        .key_switch_into(
            &f.ct.c1,
            Some(perm),
            key,
            &mut s,
            d0.as_mut_slice(),
            d1.as_mut_slice(),
            SecondOutput::Set,
        )
        .unwrap();
    (d0, d1)
}

fn paths_agree(lit: ParamsLiteral) {
    let f = fixture(lit);
    let ev = Evaluator::new(&f.ectx);
    let g = rotation_galois_element(3, f.ectx.n()).unwrap();
    let perm = f.ectx.galois_permutation(g).unwrap();
    let key = f.gks.get(g).unwrap();

    // Fused (extensions made limb by limb inside the switch) against hoisted (a stored
    // decomposition). Without a permutation they are the same words; with one they differ by
    // design (an automorphism negates coefficients, and the basis conversion of q - x is not
    // minus that of x; the difference is a multiple of the digit's modulus, which the gadget
    // absorbs), so there the evaluator tests compare decryptions.
    let dec = f.ectx.decompose(&f.ct.c1).unwrap();
    let fused = f.ectx.key_switch(&f.ct.c1, key).unwrap();
    let hoisted = f.ectx.key_switch_decomposed(&dec, key, None).unwrap();
    assert_eq!(fused.0.as_slice(), hoisted.0.as_slice());
    assert_eq!(fused.1.as_slice(), hoisted.1.as_slice());

    // Every worker count gives the same words (the split by target prime is exact).
    let reference = switch(&f, &perm, key, 1);
    for workers in [2, 3, 7, 64] {
        let (d0, d1) = switch(&f, &perm, key, workers);
        assert_eq!(d0.as_slice(), reference.0.as_slice(), "{workers} workers");
        assert_eq!(d1.as_slice(), reference.1.as_slice(), "{workers} workers");
    }

    // A compact key (its `a` halves regenerated inside the switch) gives the same words: the
    // fixture is deterministic, so a second one holds the same key.
    let mut again = fixture(lit);
    again.gks.compact();
    let compact = again.gks.get(g).unwrap();
    assert!(compact.is_compact());
    let (d0, d1) = switch(&f, &perm, compact, 2);
    assert_eq!(d0.as_slice(), reference.0.as_slice());
    assert_eq!(d1.as_slice(), reference.1.as_slice());

    // Relinearization adds into both outputs: equal to the owned switch added by hand.
    let t = ev.tensor(&f.ct, &f.ct).unwrap();
    let relin = ev.relinearize(&t, &f.rlk).unwrap();
    let (e0, e1) = f.ectx.key_switch(&t.c2, &f.rlk.0).unwrap();
    let m = &f.ectx.q_moduli()[..f.ct.c1.limbs()];
    let (mut c0, mut c1) = (t.c0.clone(), t.c1.clone());
    c0.add_assign(&e0, m).unwrap();
    c1.add_assign(&e1, m).unwrap();
    assert_eq!(relin.c0.as_slice(), c0.as_slice());
    assert_eq!(relin.c1.as_slice(), c1.as_slice());
    assert_eq!(ev.mul_relin(&f.ct, &f.ct, &f.rlk).unwrap().c0.as_slice(), c0.as_slice());
}

#[test]
fn paths_agree_with_one_prime_digits() {
    paths_agree(presets::INSECURE_TEST_N12);
}

#[test]
fn paths_agree_with_six_prime_digits() {
    paths_agree(presets::INSECURE_TEST_BOOT_N12);
}

#[test]
fn wrong_shapes_are_errors() {
    let f = fixture(presets::INSECURE_TEST_N12);
    let other = EvalContext::new(Params::new(presets::INSECURE_TEST_BOOT_N12).unwrap()).unwrap();
    let key = &f.rlk.0;
    let (mut d0, mut d1) = (zero(&f), zero(&f));
    let mut foreign = KeySwitchScratch::new(&other);
    let r = f.ectx.key_switch_into(
        &f.ct.c1,
        None,
        key,
        &mut foreign,
        d0.as_mut_slice(),
        d1.as_mut_slice(),
        SecondOutput::Set,
    );
    assert!(matches!(r, Err(EvalError::Invalid(_))), "{r:?}");
    let mut s = KeySwitchScratch::new(&f.ectx);
    let short = &mut d1.as_mut_slice()[1..];
    let r = f
        .ectx
        .key_switch_into(&f.ct.c1, None, key, &mut s, d0.as_mut_slice(), short, SecondOutput::Add);
    assert!(matches!(r, Err(EvalError::Invalid(_))), "{r:?}");
    let r = f.ectx.key_switch_into(
        &f.ct.c1,
        Some(&clifhe_std::galois::GaloisPermutation::new(16, 3).unwrap()),
        key,
        &mut s,
        d0.as_mut_slice(),
        d1.as_mut_slice(),
        SecondOutput::Add,
    );
    assert!(matches!(r, Err(EvalError::Invalid(_))), "{r:?}");
    // A key of another parameter set.
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let osk = SecretKey::generate(other.params(), &mut rng).unwrap();
    let orlk = RelinearizationKey::generate(&other, &osk, &mut rng).unwrap();
    let r = f.ectx.key_switch_into(
        &f.ct.c1,
        None,
        &orlk.0,
        &mut s,
        d0.as_mut_slice(),
        d1.as_mut_slice(),
        SecondOutput::Add,
    );
    assert!(matches!(r, Err(EvalError::ParamsMismatch)), "{r:?}");
    // The sizing formula matches what a scratch holds.
    assert!(KeySwitchScratch::words(&f.ectx, 2) > KeySwitchScratch::words(&f.ectx, 1));
}

/// Largest |x| of the centred coefficients of `a - b` (both over the same limbs, NTT form)
/// when every limb holds the same integers (the difference is one small polynomial), `None`
/// when the limbs disagree (the difference is not small).
fn small_difference(ectx: &EvalContext, a: &RnsPolyOwned, b: &RnsPolyOwned) -> Option<i64> {
    let n = ectx.n();
    let mut first: Option<Vec<i64>> = None;
    for (i, (x, y)) in a.as_slice().chunks_exact(n).zip(b.as_slice().chunks_exact(n)).enumerate() {
        let m: &Modulus = &ectx.q_moduli()[i];
        let mut d: Vec<u64> = x.iter().zip(y).map(|(u, v)| m.sub(*u, *v)).collect();
        ectx.q_tables()[i].inverse(&mut d).unwrap();
        let c: Vec<i64> = d.iter().map(|&v| m.center(v)).collect();
        match &first {
            None => first = Some(c),
            Some(f) if f != &c => return None,
            Some(_) => {}
        }
    }
    first.map(|f| f.iter().map(|v| v.abs()).max().unwrap_or(0))
}

fn lazy_sum_matches_separate_switches(lit: ParamsLiteral) {
    let f = fixture(lit);
    let g = rotation_galois_element(3, f.ectx.n()).unwrap();
    let perm = f.ectx.galois_permutation(g).unwrap();
    let rot = f.gks.get(g).unwrap();
    let level = f.ct.meta.level;
    let mut s = KeySwitchScratch::new(&f.ectx);

    // One term: the same words as a single switch.
    let (mut d0, mut d1) = (zero(&f), zero(&f));
    d1.as_mut_slice().fill(7);
    let mut sum = f.ectx.key_switch_sum(level, &mut s).unwrap();
    sum.add(&f.ct.c1, Some(&perm), rot).unwrap();
    assert_eq!(sum.terms(), 1);
    sum.finish_into(d0.as_mut_slice(), d1.as_mut_slice(), SecondOutput::Set).unwrap();
    let single = switch(&f, &perm, rot, 2);
    assert_eq!(d0.as_slice(), single.0.as_slice());
    assert_eq!(d1.as_slice(), single.1.as_slice());

    // Three terms (two keys, with and without a permutation) against the three switches summed:
    // the same polynomials up to ModDown's rounding, a few units per coefficient.
    let (mut l0, mut l1) = (zero(&f), zero(&f));
    let mut sum = f.ectx.key_switch_sum(level, &mut s).unwrap();
    sum.add(&f.ct.c1, Some(&perm), rot).unwrap();
    sum.add(&f.ct.c0, None, &f.rlk.0).unwrap();
    sum.add(&f.ct.c1, None, &f.rlk.0).unwrap();
    sum.finish_into(l0.as_mut_slice(), l1.as_mut_slice(), SecondOutput::Add).unwrap();
    let m = &f.ectx.q_moduli()[..f.ct.c1.limbs()];
    let (mut e0, mut e1) = (zero(&f), zero(&f));
    for (c, p, key) in [(&f.ct.c1, Some(&perm), rot), (&f.ct.c0, None, &f.rlk.0), (&f.ct.c1, None, &f.rlk.0)] {
        let (mut t0, mut t1) = (zero(&f), zero(&f));
        f.ectx
            .key_switch_into(c, p, key, &mut s, t0.as_mut_slice(), t1.as_mut_slice(), SecondOutput::Set)
            .unwrap();
        e0.add_assign(&t0, m).unwrap();
        e1.add_assign(&t1, m).unwrap();
    }
    let (x0, x1) = (small_difference(&f.ectx, &l0, &e0), small_difference(&f.ectx, &l1, &e1));
    let bound = 3 * (f.ectx.params().p().len() as i64 + 1);
    assert!(
        x0.is_some_and(|x| x <= bound) && x1.is_some_and(|x| x <= bound),
        "lazy sum differs by {x0:?} / {x1:?} (bound {bound})"
    );
    // ... and not trivially: the switched halves themselves are not small.
    assert!(small_difference(&f.ectx, &l1, &zero(&f)).is_none_or(|x| x > 1 << 20));

    // Misuse is a typed error: nothing to bring down, another level, another parameter set,
    // a permutation of the wrong length.
    let sum = f.ectx.key_switch_sum(level, &mut s).unwrap();
    let r = sum.finish_into(l0.as_mut_slice(), l1.as_mut_slice(), SecondOutput::Add);
    assert!(matches!(r, Err(EvalError::Invalid(_))), "{r:?}");
    let mut sum = f.ectx.key_switch_sum(level - 1, &mut s).unwrap();
    let r = sum.add(&f.ct.c1, None, rot);
    assert!(matches!(r, Err(EvalError::LevelMismatch { .. })), "{r:?}");
    let r = sum.add(&f.ct.c1, Some(&clifhe_std::galois::GaloisPermutation::new(16, 3).unwrap()), rot);
    assert!(
        matches!(r, Err(EvalError::LevelMismatch { .. }) | Err(EvalError::Invalid(_))),
        "{r:?}"
    );
    assert!(f.ectx.key_switch_sum(f.ectx.params().max_level() + 1, &mut s).is_err());
    let other = EvalContext::new(Params::new(presets::INSECURE_TEST_N10).unwrap()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let osk = SecretKey::generate(other.params(), &mut rng).unwrap();
    let orlk = RelinearizationKey::generate(&other, &osk, &mut rng).unwrap();
    let mut sum = f.ectx.key_switch_sum(level, &mut s).unwrap();
    let r = sum.add(&f.ct.c1, None, &orlk.0);
    assert!(matches!(r, Err(EvalError::ParamsMismatch)), "{r:?}");
    let r = sum.add(&f.ct.c1, Some(&clifhe_std::galois::GaloisPermutation::new(16, 3).unwrap()), rot);
    assert!(matches!(r, Err(EvalError::Invalid(_))), "{r:?}");
    let mut foreign = KeySwitchScratch::new(&other);
    assert!(f.ectx.key_switch_sum(level, &mut foreign).is_err());
}

#[test]
fn lazy_sum_matches_separate_switches_with_one_prime_digits() {
    lazy_sum_matches_separate_switches(presets::INSECURE_TEST_N12);
}

#[test]
fn lazy_sum_matches_separate_switches_with_six_prime_digits() {
    lazy_sum_matches_separate_switches(presets::INSECURE_TEST_BOOT_N12);
}

/// Both halves of a key switch work on centred values (the centred conversion of
/// `keyswitch::basis`). With the plain fast conversion, ModDown floors and adds u P (u >= 0),
/// moving every coefficient by about -(|P| + 1) / 2, and ModUp extends digits in [0, Q_j),
/// whose mean Q_j / 2 multiplies the key's error; in the half multiplied by the secret either
/// becomes a walk over the coefficients whose low frequencies pile up on a few slots. Here the
/// error of a rotated encryption of zero must have its largest slot within 10 times its RMS:
/// centred, the maximum over 2^11 slots is 4 to 6 RMS (the error is a sum of slot-wise
/// products of two noisy polynomials, heavier-tailed than a Gaussian); an uncentred ModDown
/// gave 12 and 31, an uncentred ModUp 42 and 26 (one and six special primes).
fn mod_down_has_no_bias(lit: ParamsLiteral) {
    use clifhe_core::decrypt::decrypt;
    use clifhe_core::encrypt::encrypt_sk_seeded;
    let params = Params::new(lit).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let gks = GaloisKeys::for_rotations(&ectx, &sk, &[1], false, &mut rng).unwrap();
    let zeros = vec![Complex::new(0.0, 0.0); params.max_slots()];
    let pt = Plaintext::encode(&params, &zeros, params.default_scale()).unwrap();
    let ev = Evaluator::new(&ectx);
    for level in [params.max_level(), 1] {
        let ct = encrypt_sk_seeded(&params, ectx.q_tables(), &sk, &pt, level, &mut rng)
            .unwrap()
            .expand(&params)
            .unwrap();
        let rotated = ev.rotate(&ct, 1, &gks).unwrap();
        let slots = decrypt(ectx.core(), &sk, &rotated).unwrap().decode().unwrap();
        let rms = (slots.iter().map(|z| z.abs() * z.abs()).sum::<f64>() / slots.len() as f64).sqrt();
        let max = slots.iter().map(|z| z.abs()).fold(0.0, f64::max);
        assert!(rms > 0.0);
        assert!(
            max < 10.0 * rms,
            "{}: level {level}: max slot error {max:e} = {:.1} RMS",
            params.name(),
            max / rms
        );
    }
}

#[test]
fn mod_down_has_no_bias_with_one_special_prime() {
    mod_down_has_no_bias(presets::INSECURE_TEST_N12);
}

#[test]
fn mod_down_has_no_bias_with_six_special_primes() {
    mod_down_has_no_bias(presets::INSECURE_TEST_BOOT_N12);
}
