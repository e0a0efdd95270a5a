use super::*;
use rand_chacha::rand_core::{RngCore, SeedableRng};

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

/// Independent construction: blades as sorted generator lists; the sign of e_A e_B is
/// (-1)^(number of pairs (i in A, j in B) with i > j), and repeated generators square to +1.
#[test]
fn gp_table_matches_bitmask_construction() {
    for a in 0..8 {
        for b in 0..8 {
            let (ma, mb) = (BLADE_MASKS[a], BLADE_MASKS[b]);
            let mut swaps = 0;
            for i in 0..3 {
                for j in 0..3 {
                    if ma & (1 << i) != 0 && mb & (1 << j) != 0 && i > j {
                        swaps += 1;
                    }
                }
            }
            let sign = if swaps % 2 == 0 { 1 } else { -1 };
            let result = BLADE_MASKS.iter().position(|&m| m == ma ^ mb).unwrap() as u8;
            assert_eq!(GP_TABLE[a][b], (result, sign), "e{a} * e{b}");
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
