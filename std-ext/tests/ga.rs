//! Encrypted multivector batches against the plaintext `Multivector` algebra (docs/architecture.md §6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::multivector::left_mul_matrix;
use clifhe_core::params::presets;
use clifhe_core::{Multivector, Params, ParamsLiteral, PublicKey, SecretKey};
use clifhe_std::ga::{interleaved_rotation_steps, merge_rotation_steps, EncryptedMultivectorBatch, Layout};
use clifhe_std::{EvalContext, Evaluator, GaloisKeys, RelinearizationKey};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::time::Instant;

const BM: Layout = Layout::BladeMajor { stride: 1 };
const IL: Layout = Layout::Interleaved;

struct Setup {
    ectx: EvalContext,
    sk: SecretKey<Vec<i8>>,
    pk: PublicKey<Vec<u64>>,
    rlk: RelinearizationKey,
    gks: GaloisKeys,
    rng: ChaCha20Rng,
}

fn setup(lit: ParamsLiteral) -> Setup {
    let params = Params::new(lit).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng).unwrap();
    let gks = GaloisKeys::for_rotations(&ectx, &sk, &interleaved_rotation_steps(), false, &mut rng).unwrap();
    Setup {
        ectx,
        sk,
        pk,
        rlk,
        gks,
        rng,
    }
}

fn random_mv(rng: &mut ChaCha20Rng) -> Multivector {
    let mut c = [0.0; 8];
    c.iter_mut().for_each(|v| *v = rng.next_u64() as f64 / u64::MAX as f64 * 2.0 - 1.0);
    Multivector::new(c)
}

fn random_mvs(rng: &mut ChaCha20Rng, n: usize) -> Vec<Multivector> {
    (0..n).map(|_| random_mv(rng)).collect()
}

/// (min, mean) precision in bits, -log2 |got - want|, over every blade of every patient.
fn precision(got: &[Multivector], want: &[Multivector]) -> (f64, f64) {
    assert_eq!(got.len(), want.len());
    let bits: Vec<f64> = got
        .iter()
        .zip(want)
        .flat_map(|(g, w)| {
            g.coeffs()
                .into_iter()
                .zip(w.coeffs())
                .map(|(a, b)| -((a - b).abs().max(f64::EPSILON)).log2())
                .collect::<Vec<_>>()
        })
        .collect();
    (
        bits.iter().cloned().fold(f64::INFINITY, f64::min),
        bits.iter().sum::<f64>() / bits.len() as f64,
    )
}

/// Asserts min and mean precision (bits) of a decrypted batch.
fn check(tag: &str, got: &[Multivector], want: &[Multivector], min_bits: f64, mean_bits: f64) {
    let (min, mean) = precision(got, want);
    println!("{tag}: min {min:.1} bits, mean {mean:.1} bits over {} patients", want.len());
    assert!(min >= min_bits, "{tag}: min {min} < {min_bits}");
    assert!(mean >= mean_bits, "{tag}: mean {mean} < {mean_bits}");
}

/// (min, mean) precision of slot values at `slot(p)` against `want[p]`.
fn check_slots(tag: &str, s: &Setup, ct: &CiphertextOwned, slot: impl Fn(usize) -> usize, want: &[f64], min_bits: f64) {
    let dec = clifhe_core::decrypt::decrypt(s.ectx.core(), &s.sk, ct)
        .unwrap()
        .decode_real()
        .unwrap();
    let bits: Vec<f64> = want
        .iter()
        .enumerate()
        .map(|(p, w)| -((dec[slot(p)] - w).abs().max(f64::EPSILON)).log2())
        .collect();
    let min = bits.iter().cloned().fold(f64::INFINITY, f64::min);
    let mean = bits.iter().sum::<f64>() / bits.len() as f64;
    println!("{tag}: min {min:.1} bits, mean {mean:.1} bits over {} patients", want.len());
    assert!(min >= min_bits, "{tag}: min {min} < {min_bits}");
}

/// Minimum bits per family at a preset: (plaintext weight / sign flips / masks, encrypted x encrypted).
struct Bits {
    plain: f64,
    enc: f64,
    mean: f64,
}

fn exercise(lit: ParamsLiteral, patients: usize, bits: Bits) {
    let mut s = setup(lit);
    let ev = Evaluator::new(&s.ectx);
    let xs = random_mvs(&mut s.rng, patients);
    let ys = random_mvs(&mut s.rng, patients);
    let w = random_mv(&mut s.rng);
    let w2 = random_mv(&mut s.rng);
    for layout in [BM, IL] {
        let x = EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &xs, layout, &mut s.rng).unwrap();
        let y = EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &ys, layout, &mut s.rng).unwrap();
        let top = x.level();
        let l = format!("{layout:?}");
        let dec = |b: &EncryptedMultivectorBatch| b.decrypt(&s.ectx, &s.sk).unwrap();
        let map = |f: &dyn Fn(&Multivector) -> Multivector| xs.iter().map(f).collect::<Vec<_>>();

        let wx = x.gp_left_plain(&ev, &w, Some(&s.gks)).unwrap();
        assert_eq!(wx.level(), top - 1, "plaintext GP is 1 level");
        assert!((wx.scale() - x.scale()).abs() / x.scale() < 1e-9, "scale kept exactly");
        check(&format!("{l} w*x"), &dec(&wx), &map(&|x| w.gp(x)), bits.plain, bits.mean);
        let xw = x.gp_right_plain(&ev, &w, Some(&s.gks)).unwrap();
        check(&format!("{l} x*w"), &dec(&xw), &map(&|x| x.gp(&w)), bits.plain, bits.mean);
        // One layer's weights on shared rotations.
        let many = x
            .apply_matrices(&ev, &[left_mul_matrix(&w), left_mul_matrix(&w2)], Some(&s.gks))
            .unwrap();
        check(
            &format!("{l} w2*x (shared rotations)"),
            &dec(&many[1]),
            &map(&|x| w2.gp(x)),
            bits.plain,
            bits.mean,
        );

        let xy = x.gp(&ev, &y, &s.rlk, Some(&s.gks)).unwrap();
        let depth = if layout == IL { 2 } else { 1 };
        assert_eq!(xy.level(), top - depth);
        let want: Vec<_> = xs.iter().zip(&ys).map(|(a, b)| a.gp(b)).collect();
        check(&format!("{l} x*y (both encrypted)"), &dec(&xy), &want, bits.enc, bits.mean);

        check(
            &format!("{l} reverse"),
            &dec(&x.reverse(&ev).unwrap()),
            &map(&|x| x.reverse()),
            bits.plain,
            bits.mean,
        );
        check(
            &format!("{l} involute"),
            &dec(&x.involute(&ev).unwrap()),
            &map(&|x| x.involute()),
            bits.plain,
            bits.mean,
        );
        for k in 0..4 {
            check(
                &format!("{l} grade {k}"),
                &dec(&x.grade(&ev, k).unwrap()),
                &map(&|x| x.grade(k)),
                bits.plain,
                bits.mean,
            );
        }
        let (stride, sp_level) = if layout == IL { (8, top - 1) } else { (1, top) };
        let sp = x.scalar_part(&ev).unwrap();
        assert_eq!(sp.meta.level, sp_level);
        let scalars: Vec<f64> = xs.iter().map(|x| x.scalar_part()).collect();
        check_slots(&format!("{l} scalar part"), &s, &sp, |p| p * stride, &scalars, bits.plain);
        let ns = x.norm_squared(&ev, &s.rlk, Some(&s.gks)).unwrap();
        assert_eq!(ns.meta.level, top - 1);
        let norms: Vec<f64> = xs.iter().map(|x| x.norm_squared()).collect();
        check_slots(&format!("{l} squared norm"), &s, &ns, |p| p * stride, &norms, bits.enc - 2.0);
    }
    // Conversion round trip through stride-8 blade-major (1 level, then 0).
    let x = EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &xs, IL, &mut s.rng).unwrap();
    let b = x.to_blade_major(&ev, &s.gks).unwrap();
    assert_eq!(b.layout(), Layout::BladeMajor { stride: 8 });
    assert_eq!(b.level(), x.level() - 1);
    check(
        "interleaved -> blade-major/8",
        &b.decrypt(&s.ectx, &s.sk).unwrap(),
        &xs,
        bits.plain,
        bits.mean,
    );
    let back = b.to_interleaved(&ev, &s.gks).unwrap();
    assert_eq!(back.level(), b.level());
    check("-> interleaved", &back.decrypt(&s.ectx, &s.sk).unwrap(), &xs, bits.plain, bits.mean);
}

#[test]
fn batches_at_test_preset() {
    exercise(
        presets::INSECURE_TEST_N12,
        64,
        Bits {
            plain: 19.0,
            enc: 18.0,
            mean: 24.0,
        },
    );
}

#[test]
fn batches_at_leveled_n14() {
    // Rotations (key switching with one 60-bit special prime) put the interleaved tails at
    // about 17 bits here; blade-major stays above 21.
    exercise(
        presets::LEVELED_N14,
        100,
        Bits {
            plain: 16.0,
            enc: 15.0,
            mean: 23.0,
        },
    );
}

#[test]
fn eight_interleaved_batches_pack_into_one_blade_major_batch() {
    let mut s = setup(presets::INSECURE_TEST_N12);
    let ev = Evaluator::new(&s.ectx);
    let w = random_mv(&mut s.rng);
    // Uneven patient counts: batch j holds 5 + j patients (the last block of some is empty).
    let sets: Vec<Vec<Multivector>> = (0..8).map(|j| random_mvs(&mut s.rng, 5 + j)).collect();
    let batches: Vec<_> = sets
        .iter()
        .map(|xs| EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, xs, IL, &mut s.rng).unwrap())
        .collect();
    let packed = EncryptedMultivectorBatch::pack_blade_major(&ev, &batches, &s.gks).unwrap();
    assert_eq!(packed.layout(), BM);
    assert_eq!(packed.level(), batches[0].level() - 1);
    // Batch j's patient p is patient 8p + j; missing patients decrypt as zero.
    let want: Vec<Multivector> = (0..packed.patients())
        .map(|i| sets[i % 8].get(i / 8).copied().unwrap_or(Multivector::zero()))
        .collect();
    check(
        "8 interleaved -> blade-major/1",
        &packed.decrypt(&s.ectx, &s.sk).unwrap(),
        &want,
        19.0,
        24.0,
    );
    let wx = packed.gp_left_plain(&ev, &w, None).unwrap();
    let wwant: Vec<_> = want.iter().map(|x| w.gp(x)).collect();
    check("packed w*x", &wx.decrypt(&s.ectx, &s.sk).unwrap(), &wwant, 19.0, 24.0);
    let unpacked = wx.unpack_interleaved(&ev, &s.gks).unwrap();
    assert_eq!(unpacked.len(), 8);
    for (j, (u, xs)) in unpacked.iter().zip(&sets).enumerate() {
        assert_eq!(u.layout(), IL);
        // The packed batch only knows its highest patient index: every output batch covers
        // 12 blocks, the ones no input filled decrypt as zero.
        assert_eq!(u.patients(), 12, "batch {j}");
        let mut want: Vec<_> = xs.iter().map(|x| w.gp(x)).collect();
        want.resize(12, Multivector::zero());
        check(
            &format!("-> interleaved batch {j}"),
            &u.decrypt(&s.ectx, &s.sk).unwrap(),
            &want,
            18.0,
            23.0,
        );
    }
}

/// Output of patient p of `f(batch)` with patient 3 replaced, against the original: every
/// other patient is unchanged to within the precision.
fn independence(
    s: &Setup,
    rng: &mut ChaCha20Rng,
    layout: Layout,
    f: &dyn Fn(&EncryptedMultivectorBatch, &EncryptedMultivectorBatch) -> EncryptedMultivectorBatch,
) {
    let mut xs = random_mvs(rng, 16);
    let ys = random_mvs(rng, 16);
    let y = EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &ys, layout, rng).unwrap();
    let x = EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &xs, layout, rng).unwrap();
    let a = f(&x, &y).decrypt(&s.ectx, &s.sk).unwrap();
    xs[3] = random_mv(rng).scale(4.0);
    let x = EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &xs, layout, rng).unwrap();
    let b = f(&x, &y).decrypt(&s.ectx, &s.sk).unwrap();
    for p in 0..xs.len() {
        let d = a[p]
            .coeffs()
            .iter()
            .zip(b[p].coeffs())
            .map(|(u, v)| (u - v).abs())
            .fold(0.0, f64::max);
        if p == 3 {
            assert!(d > 1e-2, "{layout:?}: patient 3 changed");
        } else {
            assert!(d < 1e-4, "{layout:?}: patient {p} moved by {d}");
        }
    }
}

#[test]
fn patients_are_independent() {
    let s = setup(presets::INSECURE_TEST_N12);
    let mut rng = s.rng.clone();
    let ev = Evaluator::new(&s.ectx);
    let w = random_mv(&mut rng);
    for layout in [IL, BM] {
        independence(&s, &mut rng, layout, &|x, _| x.gp_left_plain(&ev, &w, Some(&s.gks)).unwrap());
        independence(&s, &mut rng, layout, &|x, y| x.gp(&ev, y, &s.rlk, Some(&s.gks)).unwrap());
        independence(&s, &mut rng, layout, &|x, y| y.gp(&ev, x, &s.rlk, Some(&s.gks)).unwrap());
    }
}

#[test]
fn device_ciphertexts_merge() {
    let mut s = setup(presets::INSECURE_TEST_N12);
    let ev = Evaluator::new(&s.ectx);
    let xs = random_mvs(&mut s.rng, 13);
    let w = random_mv(&mut s.rng);
    let params = *s.ectx.params();
    let device = |rng: &mut ChaCha20Rng, x: &Multivector, block: usize| {
        let mut v = vec![0.0; params.max_slots()];
        v[8 * block..8 * block + 8].copy_from_slice(&x.coeffs());
        let pt = clifhe_core::encrypt::Plaintext::encode_real(&params, &v, params.default_scale()).unwrap();
        clifhe_core::encrypt::encrypt_pk(&params, s.ectx.q_tables(), &s.pk, &pt, params.max_level(), rng).unwrap()
    };
    let want: Vec<_> = xs.iter().map(|x| w.gp(x)).collect();
    // Gateway-assigned blocks: slots 8p..8p+7, merged by additions.
    let parts: Vec<_> = xs.iter().enumerate().map(|(p, x)| device(&mut s.rng, x, p)).collect();
    let merged = EncryptedMultivectorBatch::merge_interleaved(&s.ectx, &parts, xs.len()).unwrap();
    assert_eq!(merged.level(), params.max_level());
    check("merged (8p) inputs", &merged.decrypt(&s.ectx, &s.sk).unwrap(), &xs, 22.0, 24.0);
    let out = merged.gp_left_plain(&ev, &w, Some(&s.gks)).unwrap();
    check("merged (8p) w*x", &out.decrypt(&s.ectx, &s.sk).unwrap(), &want, 19.0, 24.0);
    // Every device in slots 0..7: the host rotates, log2(13) = 4 keys, 12 rotations.
    let steps = merge_rotation_steps(xs.len());
    assert_eq!(steps, vec![-8, -16, -32, -64]);
    let mgks = GaloisKeys::for_rotations(&s.ectx, &s.sk, &steps, false, &mut s.rng).unwrap();
    let parts: Vec<_> = xs.iter().map(|x| device(&mut s.rng, x, 0)).collect();
    let merged = EncryptedMultivectorBatch::merge_from_slot_zero(&ev, &parts, &mgks).unwrap();
    assert_eq!(merged.level(), params.max_level());
    assert_eq!(merged.patients(), xs.len());
    check("merged (slot 0) inputs", &merged.decrypt(&s.ectx, &s.sk).unwrap(), &xs, 20.0, 24.0);
    let out = merged.gp_left_plain(&ev, &w, Some(&s.gks)).unwrap();
    check("merged (slot 0) w*x", &out.decrypt(&s.ectx, &s.sk).unwrap(), &want, 18.0, 23.0);
    // Missing keys are an error, not a panic.
    assert!(EncryptedMultivectorBatch::merge_from_slot_zero(&ev, &parts, &s.gks).is_err());
}

#[test]
fn mismatches_are_errors() {
    let mut s = setup(presets::INSECURE_TEST_N12);
    let ev = Evaluator::new(&s.ectx);
    let xs = random_mvs(&mut s.rng, 4);
    let il = EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &xs, IL, &mut s.rng).unwrap();
    let bm = EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &xs, BM, &mut s.rng).unwrap();
    assert!(il.gp(&ev, &bm, &s.rlk, Some(&s.gks)).is_err());
    assert!(il.gp_left_plain(&ev, &xs[0], None).is_err(), "interleaved needs Galois keys");
    let lower = bm.gp_left_plain(&ev, &xs[0], None).unwrap();
    assert!(lower.gp(&ev, &bm, &s.rlk, None).is_err(), "level mismatch");
    assert!(bm.to_interleaved(&ev, &s.gks).is_err(), "stride 1 unpacks, not converts");
    assert!(il.unpack_interleaved(&ev, &s.gks).is_err());
    assert!(il.grade(&ev, 4).is_err());
    assert!(il.decrypt_multivectors(&s.ectx, &s.sk, 5).is_err());
    let too_many = vec![xs[0]; EncryptedMultivectorBatch::capacity(&s.ectx, IL) + 1];
    assert!(EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &too_many, IL, &mut s.rng).is_err());
    assert!(EncryptedMultivectorBatch::from_ciphertexts(&s.ectx, BM, il.ciphertexts().to_vec(), 1).is_err());
}

/// Rough wall times at N=2^14 (criterion benches are the reference; this is a quick look):
/// `cargo test --release -p clifhe-std --test ga -- --ignored --nocapture timings`.
#[test]
#[ignore]
fn timings_leveled_n14() {
    let mut s = setup(presets::LEVELED_N14);
    let ev = Evaluator::new(&s.ectx);
    let w = random_mv(&mut s.rng);
    let reps = 5;
    for layout in [BM, IL] {
        let cap = EncryptedMultivectorBatch::capacity(&s.ectx, layout);
        let xs = random_mvs(&mut s.rng, cap);
        let ys = random_mvs(&mut s.rng, cap);
        let x = EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &xs, layout, &mut s.rng).unwrap();
        let y = EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &ys, layout, &mut s.rng).unwrap();
        let time = |tag: &str, f: &dyn Fn()| {
            f();
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            let per = t.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{layout:?} {tag}: {:.2} ms per batch of {cap}, {:.3} us per patient",
                per * 1e3,
                per * 1e6 / cap as f64
            );
        };
        time("GP plaintext w", &|| {
            x.gp_left_plain(&ev, &w, Some(&s.gks)).unwrap();
        });
        time("GP encrypted", &|| {
            x.gp(&ev, &y, &s.rlk, Some(&s.gks)).unwrap();
        });
        if layout == IL {
            let rots = x.hoisted_rotations(&ev, &s.gks).unwrap();
            let m = left_mul_matrix(&w);
            time("hoisted rotations (once per layer)", &|| {
                x.hoisted_rotations(&ev, &s.gks).unwrap();
            });
            time("GP plaintext w on shared rotations", &|| {
                x.apply_matrix_with(&ev, &m, &rots).unwrap();
            });
        }
        if layout == BM {
            // Reference for the fused kernel: the same 64 terms as tensor + add_assign3 per term.
            time("GP encrypted, unfused reference (64 tensor + add, 8 relin)", &|| {
                let (xc, yc) = (x.ciphertexts(), y.ciphertexts());
                for k in 0..8u8 {
                    let mut acc: Option<clifhe_std::Ciphertext3> = None;
                    for (a, row) in clifhe_core::multivector::GP_TABLE.iter().enumerate() {
                        for (b, &(r, sign)) in row.iter().enumerate() {
                            if r == k {
                                let yb = if sign < 0 { ev.neg(&yc[b]).unwrap() } else { yc[b].clone() };
                                let t = ev.tensor(&xc[a], &yb).unwrap();
                                match &mut acc {
                                    None => acc = Some(t),
                                    Some(s) => ev.add_assign3(s, &t).unwrap(),
                                }
                            }
                        }
                    }
                    ev.rescale(&ev.relinearize(&acc.unwrap(), &s.rlk).unwrap()).unwrap();
                }
            });
        }
        time("squared norm", &|| {
            x.norm_squared(&ev, &s.rlk, Some(&s.gks)).unwrap();
        });
    }
}
