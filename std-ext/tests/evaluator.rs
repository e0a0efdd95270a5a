//! Evaluator operations against f64 references: precision statistics per operation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::decrypt::decrypt;
use clifhe_core::encode::Complex;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::params::presets;
use clifhe_core::{Params, ParamsLiteral, PublicKey, SecretKey};
use clifhe_std::{EvalContext, EvalError, Evaluator, GaloisKeys, RelinearizationKey};
use common::precision;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

struct Setup {
    ectx: EvalContext,
    sk: SecretKey<Vec<i8>>,
    pk: PublicKey<Vec<u64>>,
    rng: ChaCha20Rng,
}

fn setup(lit: ParamsLiteral) -> Setup {
    let params = Params::new(lit).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    Setup { ectx, sk, pk, rng }
}

impl Setup {
    fn values(&mut self, slots: usize) -> Vec<Complex> {
        (0..slots)
            .map(|_| {
                let re = self.rng.next_u64() as f64 / u64::MAX as f64 * 2.0 - 1.0;
                let im = self.rng.next_u64() as f64 / u64::MAX as f64 * 2.0 - 1.0;
                Complex::new(re, im)
            })
            .collect()
    }
    fn encrypt(&mut self, v: &[Complex]) -> CiphertextOwned {
        let p = *self.ectx.params();
        let pt = Plaintext::encode(&p, v, p.default_scale()).unwrap();
        encrypt_pk(&p, self.ectx.q_tables(), &self.pk, &pt, p.max_level(), &mut self.rng).unwrap()
    }
    fn decrypt(&self, ct: &CiphertextOwned) -> Vec<Complex> {
        decrypt(self.ectx.core(), &self.sk, ct).unwrap().decode().unwrap()
    }
}

/// (min, mean) of -log2 |got - want| over slots.
fn assert_precise(tag: &str, got: &[Complex], want: &[Complex], min_bits: f64) {
    let (min, mean) = precision(got, want);
    println!("{tag}: min {min:.1} bits, mean {mean:.1} bits");
    assert!(min >= min_bits, "{tag}: min {min:.1} < {min_bits}");
}

fn exercise(lit: ParamsLiteral, min_bits: f64) {
    let mut s = setup(lit);
    let n = s.ectx.n();
    let slots = n / 2;
    let (a, b) = (s.values(slots), s.values(slots));
    let (ca, cb) = (s.encrypt(&a), s.encrypt(&b));
    let ev = Evaluator::new(&s.ectx);
    let rlk = RelinearizationKey::generate(&s.ectx, &s.sk, &mut s.rng).unwrap();
    let steps = [1i64, 5, -3, 64];
    let gks = GaloisKeys::for_rotations(&s.ectx, &s.sk, &steps, true, &mut s.rng).unwrap();

    let sum = ev.add(&ca, &cb).unwrap();
    let want: Vec<Complex> = a.iter().zip(&b).map(|(x, y)| *x + *y).collect();
    assert_precise("add", &s.decrypt(&sum), &want, min_bits);

    let prod = ev.rescale(&ev.mul_relin(&ca, &cb, &rlk).unwrap()).unwrap();
    assert_eq!(prod.meta.level, s.ectx.max_level() - 1);
    let want: Vec<Complex> = a.iter().zip(&b).map(|(x, y)| *x * *y).collect();
    assert_precise("mul+relin+rescale", &s.decrypt(&prod), &want, min_bits - 1.0);

    // Lazy relinearization: a*b + b*a summed before one relinearization.
    let mut t = ev.tensor(&ca, &cb).unwrap();
    ev.add_assign3(&mut t, &ev.tensor(&cb, &ca).unwrap()).unwrap();
    let lazy = ev.rescale(&ev.relinearize(&t, &rlk).unwrap()).unwrap();
    let want2: Vec<Complex> = want.iter().map(|x| *x * 2.0).collect();
    assert_precise("lazy relin", &s.decrypt(&lazy), &want2, min_bits - 2.0);

    let cm = ev.mul_const(&ca, -0.75).unwrap();
    assert!(
        (cm.meta.scale - ca.meta.scale).abs() / ca.meta.scale < 1e-12,
        "mul_const keeps the scale"
    );
    let want: Vec<Complex> = a.iter().map(|x| *x * -0.75).collect();
    assert_precise("mul_const", &s.decrypt(&cm), &want, min_bits);

    let pt = ev.encode(&b, ca.meta.level, s.ectx.params().q()[ca.meta.level] as f64).unwrap();
    let prod = ev.mul_plain(&ca, &pt).unwrap();
    let cp = ev.rescale(&prod).unwrap();
    // In place over the input's own limbs: the same words.
    let owned = ev.rescale_owned(prod).unwrap();
    assert_eq!(
        (owned.c0.as_slice(), owned.c1.as_slice(), owned.meta),
        (cp.c0.as_slice(), cp.c1.as_slice(), cp.meta)
    );
    let bottom = ev.drop_to_level(&ca, 0).unwrap();
    assert!(matches!(ev.rescale_owned(bottom), Err(EvalError::OutOfLevels)));
    let want: Vec<Complex> = a.iter().zip(&b).map(|(x, y)| *x * *y).collect();
    assert_precise("mul_plain", &s.decrypt(&cp), &want, min_bits - 1.0);

    let ac = ev.add_const(&ca, Complex::new(0.25, -0.5)).unwrap();
    let want: Vec<Complex> = a.iter().map(|x| *x + Complex::new(0.25, -0.5)).collect();
    assert_precise("add_const", &s.decrypt(&ac), &want, min_bits);
    // A real constant skips the transform: adding the real and the imaginary part one after
    // the other gives the same words as adding them together (the transform is linear).
    let parts = ev
        .add_const(&ev.add_const(&ca, Complex::new(0.25, 0.0)).unwrap(), Complex::new(0.0, -0.5))
        .unwrap();
    assert_eq!(parts.c0.as_slice(), ac.c0.as_slice());
    assert_eq!(parts.c1.as_slice(), ac.c1.as_slice());
    let real = ev.add_const(&ca, Complex::new(-1.5, 0.0)).unwrap();
    let want: Vec<Complex> = a.iter().map(|x| *x + Complex::new(-1.5, 0.0)).collect();
    assert_precise("add_const (real)", &s.decrypt(&real), &want, min_bits);

    for &k in &steps {
        let r = ev.rotate(&ca, k, &gks).unwrap();
        let want: Vec<Complex> = (0..slots).map(|i| a[(i as i64 + k).rem_euclid(slots as i64) as usize]).collect();
        assert_precise(&format!("rotate {k}"), &s.decrypt(&r), &want, min_bits - 1.0);
    }
    let hoisted = ev.rotate_hoisted(&ca, &steps, &gks).unwrap();
    for (&k, r) in steps.iter().zip(&hoisted) {
        let want: Vec<Complex> = (0..slots).map(|i| a[(i as i64 + k).rem_euclid(slots as i64) as usize]).collect();
        assert_precise(&format!("hoisted rotate {k}"), &s.decrypt(r), &want, min_bits - 1.0);
    }
    // The sum of the rotations (with one ModUp and one ModDown) is the sum of the slots'
    // shifts; a step of 0 adds the input once more. Its error: one rounding for all of them.
    let sum_steps: Vec<i64> = steps.iter().copied().chain([0]).collect();
    let summed = ev.rotate_sum_hoisted(&ca, &sum_steps, &gks).unwrap();
    let want: Vec<Complex> = (0..slots)
        .map(|i| {
            sum_steps
                .iter()
                .fold(a[i], |acc, &k| acc + a[(i as i64 + k).rem_euclid(slots as i64) as usize])
        })
        .collect();
    assert_precise("hoisted rotation sum", &s.decrypt(&summed), &want, min_bits - 3.0);
    let cj = ev.conjugate(&ca, &gks).unwrap();
    let want: Vec<Complex> = a.iter().map(|x| x.conj()).collect();
    assert_precise("conjugate", &s.decrypt(&cj), &want, min_bits - 1.0);

    // Use every level with successive squarings of values on the unit circle (stay bounded).
    let unit: Vec<Complex> = a.iter().map(|x| *x * (1.0 / x.abs().max(1e-3))).collect();
    let mut c = s.encrypt(&unit);
    let ev = Evaluator::new(&s.ectx);
    let mut want = unit.clone();
    while c.meta.level > 0 {
        c = ev.rescale(&ev.mul_relin(&c, &c, &rlk).unwrap()).unwrap();
        want = want.iter().map(|x| *x * *x).collect();
        // Squaring doubles relative error; unit-modulus values keep absolute error comparable.
        let (min, mean) = precision(&s.decrypt(&c), &want);
        println!("square to level {}: min {min:.1} mean {mean:.1}", c.meta.level);
        assert!(mean >= min_bits - 10.0);
    }
}

#[test]
fn operations_at_insecure_test_preset() {
    exercise(presets::INSECURE_TEST_N12, 17.0);
}

#[test]
fn operations_at_leveled_n14() {
    exercise(presets::LEVELED_N14, 16.0);
}

#[test]
fn mismatches_are_errors() {
    let mut s = setup(presets::INSECURE_TEST_N10);
    let slots = s.ectx.n() / 2;
    let a = s.values(slots);
    let ca = s.encrypt(&a);
    let ev = Evaluator::new(&s.ectx);
    let low = ev.drop_to_level(&ca, 1).unwrap();
    assert!(matches!(ev.add(&ca, &low), Err(EvalError::LevelMismatch { .. })));
    let scaled = ev.mul_const_lazy(&ca, 1.0, 3.0).unwrap();
    assert!(matches!(ev.add(&ca, &scaled), Err(EvalError::ScaleMismatch { .. })));
    let zero = ev.drop_to_level(&ca, 0).unwrap();
    assert!(matches!(ev.rescale(&zero), Err(EvalError::OutOfLevels)));
    let gks = GaloisKeys::default();
    assert!(matches!(ev.rotate(&ca, 1, &gks), Err(EvalError::MissingGaloisKey { .. })));
    // A key for another parameter set.
    let mut other = setup(presets::INSECURE_TEST_N12);
    let rlk = RelinearizationKey::generate(&other.ectx, &other.sk, &mut other.rng).unwrap();
    assert!(ev.mul_relin(&ca, &ca, &rlk).is_err());
    // A preset without special primes cannot make keys.
    let d = setup(presets::DEVICE_N12);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    assert!(matches!(
        RelinearizationKey::generate(&d.ectx, &d.sk, &mut rng),
        Err(EvalError::NoSpecialPrimes)
    ));
}

#[test]
fn evaluation_keys_round_trip_seed_compressed() {
    let mut s = setup(presets::INSECURE_TEST_N10);
    let slots = s.ectx.n() / 2;
    let a = s.values(slots);
    let ca = s.encrypt(&a);
    let rlk = RelinearizationKey::generate(&s.ectx, &s.sk, &mut s.rng).unwrap();
    let gks = GaloisKeys::for_rotations(&s.ectx, &s.sk, &[1, 2], false, &mut s.rng).unwrap();
    let bytes = rlk.to_bytes(&s.ectx).unwrap();
    // b only (a comes from the seed): one polynomial per digit over Q*P, plus seed and header.
    let full = rlk.0.memory_bytes();
    assert!(bytes.len() < full / 2 + 1024, "{} vs {}", bytes.len(), full);
    let rlk2 = RelinearizationKey::from_bytes(&s.ectx, &bytes).unwrap();
    let ev = Evaluator::new(&s.ectx);
    let x = s.decrypt(&ev.mul_relin(&ca, &ca, &rlk).unwrap());
    let y = s.decrypt(&ev.mul_relin(&ca, &ca, &rlk2).unwrap());
    assert!(x.iter().zip(&y).all(|(p, q)| (*p - *q).abs() < 1e-9));

    let dir = std::env::temp_dir().join(format!("clifhe-gk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    gks.write_dir(&s.ectx, &dir).unwrap();
    let g1 = clifhe_std::keys::rotation_galois_element(1, s.ectx.n()).unwrap();
    let only1 = GaloisKeys::read_dir(&s.ectx, &dir, &[g1]).unwrap();
    assert_eq!(only1.len(), 1);
    let r = ev.rotate(&ca, 1, &only1).unwrap();
    let want: Vec<Complex> = (0..slots).map(|i| a[(i + 1) % slots]).collect();
    assert_precise("rotate with loaded key", &s.decrypt(&r), &want, 17.0);
    assert!(ev.rotate(&ca, 2, &only1).is_err());
    // Corrupt and truncated key files are errors.
    let mut bad = bytes.clone();
    bad.truncate(bad.len() - 1);
    assert!(RelinearizationKey::from_bytes(&s.ectx, &bad).is_err());
    assert!(RelinearizationKey::from_bytes(&s.ectx, &bytes[..40]).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rotation_quadratic_form_equals_tensors_then_plaintext_combination() {
    use clifhe_std::evaluator::PlaintextRns;
    let params = Params::new(presets::INSECURE_TEST_N12).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let ev = Evaluator::new(&ectx);
    let slots = params.max_slots();
    let level = 3;
    let z: Vec<_> = (0..8)
        .map(|t| {
            let v: Vec<f64> = (0..slots).map(|i| ((i * 7 + t * 13) % 17) as f64 / 17.0 - 0.5).collect();
            let pt = Plaintext::encode_real(&params, &v, params.default_scale()).unwrap();
            encrypt_pk(&params, ectx.q_tables(), &pk, &pt, level, &mut rng).unwrap()
        })
        .collect();
    let vec = |seed: usize| -> Vec<f64> { (0..slots).map(|i| ((i * 3 + seed * 5) % 11) as f64 / 11.0 - 0.4).collect() };
    // The block layout's 8 inputs, and fewer (the kernel runs one pass per input).
    for m in [8usize, 3] {
        let pairs: Vec<(usize, usize)> = (0..m).flat_map(|t| (t..m).map(move |u| (t, u))).collect();
        let s = 30f64.exp2();
        let quad: Vec<PlaintextRns> = (0..pairs.len()).map(|i| ev.encode_real(&vec(i), level, s).unwrap()).collect();
        let lin: Vec<PlaintextRns> = (0..m)
            .map(|t| ev.encode_real(&vec(100 + t), level, s * params.default_scale()).unwrap())
            .collect();
        let zr: Vec<_> = z[..m].iter().collect();
        let qr: Vec<_> = quad.iter().collect();
        let lr: Vec<_> = lin.iter().collect();
        let fused = ev.rotation_quadratic_form(&zr, &qr, &lr).unwrap();
        let prods: Vec<_> = pairs.iter().map(|&(t, u)| ev.tensor(&z[t], &z[u]).unwrap()).collect();
        let pr: Vec<_> = prods.iter().collect();
        let plain = ev.plain_quadratic_combination(&pr, &qr, &zr, &lr).unwrap();
        assert_eq!(fused.c0, plain.c0, "{m} inputs");
        assert_eq!(fused.c1, plain.c1, "{m} inputs");
        assert_eq!(fused.c2, plain.c2, "{m} inputs");
        assert_eq!(fused.meta.scale, plain.meta.scale);
    }
}

/// Monomial products are exact ring identities: X^(N/2) is multiplication by i on every slot,
/// X^N is -1, X^(2N) and X^a X^b X^-(a+b) are the identity, word for word.
#[test]
fn monomial_products_are_exact() {
    let mut s = setup(presets::INSECURE_TEST_N12);
    let n = s.ectx.n() as i64;
    let slots = s.ectx.params().max_slots();
    let a = s.values(slots);
    let ca = s.encrypt(&a);
    let ev = Evaluator::new(&s.ectx);
    let i_times = ev.mul_monomial(&ca, n / 2).unwrap();
    let want: Vec<Complex> = a.iter().map(|x| *x * Complex::I).collect();
    assert_precise("X^(N/2) = i", &s.decrypt(&i_times), &want, 17.0);
    let neg = ev.mul_monomial(&ca, n).unwrap();
    assert_eq!(neg.c0.as_slice(), ev.neg(&ca).unwrap().c0.as_slice());
    let same = ev.mul_monomial(&ca, 2 * n).unwrap();
    assert_eq!(same.c0.as_slice(), ca.c0.as_slice());
    let there = ev.mul_monomial(&ev.mul_monomial(&ca, 123).unwrap(), 4001).unwrap();
    let back = ev.mul_monomial(&there, -(123 + 4001)).unwrap();
    assert_eq!((back.c0.as_slice(), back.c1.as_slice()), (ca.c0.as_slice(), ca.c1.as_slice()));
}

/// One division by q_l q_(l-1) against two rescales: the same words (nearest-integer rounding
/// nests exactly for odd moduli), level and scale. Levels below 2 are refused.
#[test]
fn rescale_twice_equals_two_rescales() {
    let mut s = setup(presets::LEVELED_N14);
    let slots = s.ectx.n() / 2;
    let (a, b) = (s.values(slots), s.values(slots));
    let (ca, cb) = (s.encrypt(&a), s.encrypt(&b));
    let ev = Evaluator::new(&s.ectx);
    let rlk = RelinearizationKey::generate(&s.ectx, &s.sk, &mut s.rng).unwrap();
    // Scale 2^80 * 2^40: two rescales by the 40-bit primes bring it back near 2^40.
    let prod = ev
        .mul_const_lazy(&ev.mul_relin(&ca, &cb, &rlk).unwrap(), 0.5, 2f64.powi(40))
        .unwrap();
    let once = ev.rescale_twice_owned(prod.clone()).unwrap();
    let twice = ev.rescale_owned(ev.rescale_owned(prod.clone()).unwrap()).unwrap();
    assert_eq!(once.meta, twice.meta);
    assert_eq!(once.meta.level, prod.meta.level - 2);
    let want: Vec<Complex> = a.iter().zip(&b).map(|(x, y)| *x * *y * 0.5).collect();
    let (got_once, got_twice) = (s.decrypt(&once), s.decrypt(&twice));
    assert_precise("mul+relin, one double rescale", &got_once, &want, 15.0);
    assert_precise("one double rescale vs two rescales", &got_once, &got_twice, 50.0);
    assert_eq!(once.c0.as_slice(), twice.c0.as_slice());
    assert_eq!(once.c1.as_slice(), twice.c1.as_slice());
    let low = ev.drop_to_level(&prod, 1).unwrap();
    assert!(matches!(ev.rescale_twice_owned(low), Err(EvalError::OutOfLevels)));
}

/// Relinearization and the double rescale in one pass against the two steps: the same words,
/// level and scale, at the top level and below it (private-n15, whose P has two primes, and
/// leveled-n14, one). Levels below 2 are refused.
#[test]
fn relinearize_rescale_twice_equals_the_two_steps() {
    for lit in [presets::PRIVATE_N15, presets::LEVELED_N14] {
        let mut s = setup(lit);
        let slots = s.ectx.n() / 2;
        let (a, b) = (s.values(slots), s.values(slots));
        let (ca, cb) = (s.encrypt(&a), s.encrypt(&b));
        let ev = Evaluator::new(&s.ectx);
        let rlk = RelinearizationKey::generate(&s.ectx, &s.sk, &mut s.rng).unwrap();
        for drop in [0, 2] {
            let level = ca.meta.level - drop;
            // One factor also at scale Delta, so that two rescales bring Delta^3 back to Delta.
            let delta = s.ectx.params().default_scale();
            let xa = ev.mul_const_lazy(&ev.drop_to_level(&ca, level).unwrap(), 1.0, delta).unwrap();
            let xb = ev.drop_to_level(&cb, level).unwrap();
            let t = ev.tensor(&xa, &xb).unwrap();
            let fused = ev.relinearize_rescale_twice(&t, &rlk).unwrap();
            let steps = ev.rescale_twice_owned(ev.relinearize(&t, &rlk).unwrap()).unwrap();
            assert_eq!(fused.meta, steps.meta);
            assert_eq!(fused.meta.level, level - 2);
            assert_eq!(fused.c0.as_slice(), steps.c0.as_slice(), "{} level {level}", lit.name);
            assert_eq!(fused.c1.as_slice(), steps.c1.as_slice(), "{} level {level}", lit.name);
            let want: Vec<Complex> = a.iter().zip(&b).map(|(x, y)| *x * *y).collect();
            assert_precise("relinearize and rescale twice in one pass", &s.decrypt(&fused), &want, 15.0);
        }
        let low = ev
            .tensor(&ev.drop_to_level(&ca, 1).unwrap(), &ev.drop_to_level(&cb, 1).unwrap())
            .unwrap();
        assert!(matches!(ev.relinearize_rescale_twice(&low, &rlk), Err(EvalError::OutOfLevels)));
    }
}

/// `mul_relin_at` reads the limb prefixes in place: the same words as dropping both operands
/// first, and a level above either operand's is an error.
#[test]
fn products_at_a_lower_level_equal_drop_then_multiply() {
    let mut s = setup(presets::INSECURE_TEST_N12);
    let slots = s.ectx.n() / 2;
    let (a, b) = (s.values(slots), s.values(slots));
    let (ca, cb) = (s.encrypt(&a), s.encrypt(&b));
    let rlk = RelinearizationKey::generate(&s.ectx, &s.sk, &mut s.rng).unwrap();
    let ev = Evaluator::new(&s.ectx);
    let top = ca.meta.level;
    let cb_low = ev.drop_to_level(&cb, top - 1).unwrap();
    for level in [top - 1, 1] {
        let got = ev.mul_relin_at(&ca, &cb_low, level, &rlk).unwrap();
        let want = ev
            .mul_relin(
                &ev.drop_to_level(&ca, level).unwrap(),
                &ev.drop_to_level(&cb_low, level).unwrap(),
                &rlk,
            )
            .unwrap();
        assert_eq!(got.meta, want.meta);
        assert!(got.c0.as_slice() == want.c0.as_slice() && got.c1.as_slice() == want.c1.as_slice());
    }
    assert!(matches!(
        ev.mul_relin_at(&ca, &cb_low, top, &rlk),
        Err(EvalError::LevelMismatch { .. })
    ));
    assert!(matches!(ev.tensor(&ca, &cb_low), Err(EvalError::LevelMismatch { .. })));
}
