use super::*;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use std::string::String;
use std::vec::Vec;

fn random_mv(rng: &mut rand_chacha::ChaCha20Rng) -> Multivector {
    let mut c = [0.0; 8];
    for x in c.iter_mut() {
        *x = rng.next_u64() as f64 / u64::MAX as f64 * 2.0 - 1.0;
    }
    Multivector::new(c)
}

fn close(a: &Multivector, b: &Multivector) -> bool {
    a.coeffs().iter().zip(b.coeffs()).all(|(x, y)| (x - y).abs() < 1e-12)
}

/// Independent construction: each blade is read from its *name* ("e13" -> generators {1, 3}),
/// not from `BLADE_MASKS`; the product of two sorted generator lists is sorted by adjacent
/// transpositions (each one a sign flip, since distinct generators anticommute), and a pair
/// e_i e_i that meets cancels to +1. The resulting generator set is looked up by name again.
#[test]
fn gp_table_matches_bitmask_construction() {
    // "1" -> {}, "e13" -> {1, 3} as bit set (bit g-1 for generator e_g).
    let gens = |name: &str| {
        name.strip_prefix('e')
            .map_or(0u8, |d| d.bytes().fold(0, |m, b| m | 1 << (b - b'1')))
    };
    let masks: Vec<u8> = BLADE_NAMES.iter().map(|n| gens(n)).collect();
    assert_eq!(masks, BLADE_MASKS, "BLADE_MASKS agrees with BLADE_NAMES");
    for (k, m) in masks.iter().enumerate() {
        assert_eq!(m.count_ones() as u8, BLADE_GRADES[k], "grade of {}", BLADE_NAMES[k]);
    }
    for a in 0..8 {
        for b in 0..8 {
            // Concatenate the generator lists and bubble-sort, counting swaps; then cancel pairs.
            let mut list: Vec<u8> = (1..=3).filter(|g| masks[a] & 1 << (g - 1) != 0).collect();
            list.extend((1..=3).filter(|g| masks[b] & 1 << (g - 1) != 0));
            let mut swaps = 0;
            for i in 0..list.len() {
                for j in 0..list.len() - 1 - i {
                    if list[j] > list[j + 1] {
                        list.swap(j, j + 1);
                        swaps += 1;
                    }
                }
            }
            let mut reduced: Vec<u8> = Vec::new();
            for g in list {
                if reduced.last() == Some(&g) {
                    reduced.pop(); // e_g e_g = +1
                } else {
                    reduced.push(g);
                }
            }
            let name = if reduced.is_empty() {
                String::from("1")
            } else {
                reduced.iter().fold(String::from("e"), |mut s, g| {
                    s.push(char::from(b'0' + g));
                    s
                })
            };
            let result = BLADE_NAMES.iter().position(|n| *n == name).unwrap() as u8;
            let sign = if swaps % 2 == 0 { 1 } else { -1 };
            assert_eq!(GP_TABLE[a][b], (result, sign), "{} * {}", BLADE_NAMES[a], BLADE_NAMES[b]);
        }
    }
}

#[test]
fn algebra_identities() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    for _ in 0..200 {
        let (a, b, c) = (random_mv(&mut rng), random_mv(&mut rng), random_mv(&mut rng));
        assert!(close(&a.gp(&b).gp(&c), &a.gp(&b.gp(&c))), "associativity");
        assert!(close(&a.gp(&b).reverse(), &b.reverse().gp(&a.reverse())), "reverse of a product");
        assert!((a.norm_squared() - a.gp(&a.reverse()).scalar_part()).abs() < 1e-12);
        let m = left_mul_matrix(&a);
        let r = right_mul_matrix(&a);
        let (ab, ba) = (a.gp(&b), b.gp(&a));
        for k in 0..8 {
            let lk: f64 = (0..8).map(|j| m[k][j] * b.coeffs()[j]).sum();
            let rk: f64 = (0..8).map(|j| r[k][j] * b.coeffs()[j]).sum();
            assert!((lk - ab.coeffs()[k]).abs() < 1e-12 && (rk - ba.coeffs()[k]).abs() < 1e-12);
        }
        // Wedge of vectors is antisymmetric, a ^ a = 0 for a vector.
        let (u, v) = (a.grade(1), b.grade(1));
        assert!(close(&u.wedge(&v), &-v.wedge(&u)));
        assert!(close(&u.wedge(&u), &Multivector::zero()));
        assert!(close(&(a + b - b), &a));
        assert!(close(&a.conjugate(), &a.involute().reverse()));
    }
}

#[test]
fn known_products() {
    let e = |i| Multivector::basis(i).unwrap();
    let one = Multivector::scalar(1.0);
    for i in 1..4 {
        assert_eq!(e(i).gp(&e(i)), one, "e{i}^2 = 1");
        for j in 1..4 {
            if i != j {
                assert!(close(&e(i).gp(&e(j)), &-e(j).gp(&e(i))), "e{i} e{j} = -e{j} e{i}");
            }
        }
    }
    assert_eq!(e(1).gp(&e(2)).gp(&e(3)), e(7), "e1 e2 e3 = e123");
    assert_eq!(e(7).gp(&e(7)), -one, "e123^2 = -1");
    assert_eq!(e(4).gp(&e(4)), -one, "e12^2 = -1");
    assert_eq!((one + e(1)).gp(&(one - e(1))), Multivector::zero(), "(1+e1)(1-e1) = 0");
    assert_eq!((e(1) + e(2)).gp(&(e(1) - e(2))), e(4).scale(-2.0), "(e1+e2)(e1-e2) = -2 e12");
    assert_eq!(e(1).wedge(&e(2)), e(4));
    assert_eq!(e(1).wedge(&e(1)), Multivector::zero());
    // A rotor by 90 degrees in the e1e2 plane maps e1 to e2: R e1 ~R with R = (1 - e12)/sqrt 2.
    let h = core::f64::consts::FRAC_1_SQRT_2;
    let r = Multivector::new([h, 0.0, 0.0, 0.0, -h, 0.0, 0.0, 0.0]);
    assert!(close(&r.gp(&e(1)).gp(&r.reverse()), &e(2)));
    assert_eq!(Multivector::basis(8), None);
    assert_eq!(e(5).grade(2), e(5));
    assert_eq!(e(5).grade(1), Multivector::zero());
}

#[test]
fn vector_products_and_operators() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
    let e = |i| Multivector::basis(i).unwrap();
    for _ in 0..100 {
        let (a, b, c) = (random_mv(&mut rng), random_mv(&mut rng), random_mv(&mut rng));
        // For vectors: u v = u.v + u ^ v, and u ^ v ^ w = det[u v w] e123.
        let (u, v, w) = (a.grade(1), b.grade(1), c.grade(1));
        let (uc, vc, wc) = (u.coeffs(), v.coeffs(), w.coeffs());
        let dot = uc[1] * vc[1] + uc[2] * vc[2] + uc[3] * vc[3];
        assert!(close(&u.gp(&v), &(Multivector::scalar(dot) + u.wedge(&v))));
        let det =
            uc[1] * (vc[2] * wc[3] - vc[3] * wc[2]) - uc[2] * (vc[1] * wc[3] - vc[3] * wc[1]) + uc[3] * (vc[1] * wc[2] - vc[2] * wc[1]);
        assert!(close(&u.wedge(&v).wedge(&w), &e(7).scale(det)));
        assert!(close(&a.wedge(&b).wedge(&c), &a.wedge(&b.wedge(&c))), "wedge is associative");
        // Operators agree with the named methods.
        let (ra, rb) = (&a, &b); // the by-reference impl, as std-ext uses it
        assert_eq!(ra * rb, a.gp(&b));
        assert_eq!(a * b, a.gp(&b));
        assert_eq!(a * 2.5, a.scale(2.5));
        assert_eq!(2.5 * a, a.scale(2.5));
        let mut s = a;
        s += b;
        s -= c;
        assert_eq!(s, a + b - c);
        assert_eq!(-a, a.scale(-1.0));
        // The grades partition the multivector; scalar_product is <ab>_0 and symmetric.
        let sum = (0..4).fold(Multivector::zero(), |acc, k| acc + a.grade(k));
        assert_eq!(sum, a);
        assert_eq!(a.grade(4), Multivector::zero());
        assert!((a.scalar_product(&b) - b.scalar_product(&a)).abs() < 1e-12);
        assert!((a.norm() * a.norm() - a.norm_squared()).abs() < 1e-12);
    }
    // Involution signs per grade: involute (+,-,+,-), reverse (+,+,-,-), conjugate (+,-,-,+).
    for (i, &g) in BLADE_GRADES.iter().enumerate() {
        let b = e(i);
        let s = |neg: bool| if neg { -b } else { b };
        assert_eq!(b.involute(), s(g % 2 == 1));
        assert_eq!(b.reverse(), s(g >= 2));
        assert_eq!(b.conjugate(), s(g == 1 || g == 2));
    }
    assert_eq!(Multivector::default(), Multivector::zero());
    assert_eq!(Multivector::scalar(3.0).scalar_part(), 3.0);
}
