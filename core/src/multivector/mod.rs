//! Cl(3,0) multivectors and scan features.
//!
//! Basis order everywhere (docs/architecture.md §6): [1, e1, e2, e3, e12, e13, e23, e123], with
//! e_i e_i = +1. The geometric product is given by [`GP_TABLE`]; the encrypted code in
//! clifhe-std builds its block-diagonal linear maps from the same table
//! ([`left_mul_matrix`], [`right_mul_matrix`]), so plaintext and encrypted products cannot
//! disagree on a sign.

pub mod axes;
pub mod channels;
pub mod depth;
pub mod features;
pub mod fixed_channels;
pub mod fixed_features;

use core::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};

/// Blade bit masks in basis order: bit 0 = e1, bit 1 = e2, bit 2 = e3.
pub const BLADE_MASKS: [u8; 8] = [0b000, 0b001, 0b010, 0b100, 0b011, 0b101, 0b110, 0b111];
/// Grade of each basis blade.
pub const BLADE_GRADES: [u8; 8] = [0, 1, 1, 1, 2, 2, 2, 3];
/// Names of the components, in basis order.
pub const BLADE_NAMES: [&str; 8] = ["1", "e1", "e2", "e3", "e12", "e13", "e23", "e123"];

/// e_a * e_b = sign * e_result, as `GP_TABLE[a][b] = (result, sign)`.
///
/// Written out by hand; the test `gp_table_matches_bitmask_construction` derives it again from
/// the bit-mask rule (count the transpositions that sort the concatenated generator lists).
pub const GP_TABLE: [[(u8, i8); 8]; 8] = [
    // 1
    [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1)],
    // e1
    [(1, 1), (0, 1), (4, 1), (5, 1), (2, 1), (3, 1), (7, 1), (6, 1)],
    // e2
    [(2, 1), (4, -1), (0, 1), (6, 1), (1, -1), (7, -1), (3, 1), (5, -1)],
    // e3
    [(3, 1), (5, -1), (6, -1), (0, 1), (7, 1), (1, -1), (2, -1), (4, 1)],
    // e12
    [(4, 1), (2, -1), (1, 1), (7, 1), (0, -1), (6, -1), (5, 1), (3, -1)],
    // e13
    [(5, 1), (3, -1), (7, -1), (1, 1), (6, 1), (0, -1), (4, -1), (2, 1)],
    // e23
    [(6, 1), (7, 1), (3, -1), (2, 1), (5, -1), (4, 1), (0, -1), (1, -1)],
    // e123
    [(7, 1), (6, 1), (5, -1), (4, 1), (3, -1), (2, 1), (1, -1), (0, -1)],
];

/// A multivector of Cl(3,0).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Multivector {
    c: [f64; 8],
}

impl Multivector {
    /// From coefficients in basis order [1, e1, e2, e3, e12, e13, e23, e123].
    pub const fn new(c: [f64; 8]) -> Self {
        Self { c }
    }
    /// The zero multivector.
    pub const fn zero() -> Self {
        Self { c: [0.0; 8] }
    }
    /// s times the unit scalar.
    pub const fn scalar(s: f64) -> Self {
        let mut c = [0.0; 8];
        c[0] = s;
        Self { c }
    }
    /// The basis blade with index `i` (basis order); `None` past 7.
    pub fn basis(i: usize) -> Option<Self> {
        let mut c = [0.0; 8];
        *c.get_mut(i)? = 1.0;
        Some(Self { c })
    }
    /// Coefficients in basis order.
    pub const fn coeffs(&self) -> [f64; 8] {
        self.c
    }

    /// Geometric product self * other.
    pub fn gp(&self, other: &Self) -> Self {
        let mut out = [0.0; 8];
        for (a, row) in GP_TABLE.iter().enumerate() {
            if self.c[a] == 0.0 {
                continue;
            }
            for (b, &(r, sign)) in row.iter().enumerate() {
                out[r as usize] += sign as f64 * self.c[a] * other.c[b];
            }
        }
        Self { c: out }
    }

    /// Outer (wedge) product: the grade-(r+s) part of products of grade-r and grade-s blades.
    pub fn wedge(&self, other: &Self) -> Self {
        let mut out = [0.0; 8];
        for (a, row) in GP_TABLE.iter().enumerate() {
            for (b, &(r, sign)) in row.iter().enumerate() {
                if BLADE_MASKS[a] & BLADE_MASKS[b] == 0 {
                    out[r as usize] += sign as f64 * self.c[a] * other.c[b];
                }
            }
        }
        Self { c: out }
    }

    /// Reverse: grades 2 and 3 change sign.
    pub fn reverse(&self) -> Self {
        let mut c = self.c;
        for (x, g) in c.iter_mut().zip(BLADE_GRADES) {
            if g >= 2 {
                *x = -*x;
            }
        }
        Self { c }
    }

    /// Grade involution: odd grades change sign.
    pub fn involute(&self) -> Self {
        let mut c = self.c;
        for (x, g) in c.iter_mut().zip(BLADE_GRADES) {
            if g % 2 == 1 {
                *x = -*x;
            }
        }
        Self { c }
    }

    /// Clifford conjugate: reverse of the grade involution (grades 1 and 2 change sign).
    pub fn conjugate(&self) -> Self {
        self.involute().reverse()
    }

    /// Grade-k part (k > 3 gives zero).
    pub fn grade(&self, k: u8) -> Self {
        let mut c = [0.0; 8];
        for ((o, x), g) in c.iter_mut().zip(self.c).zip(BLADE_GRADES) {
            if g == k {
                *o = x;
            }
        }
        Self { c }
    }

    /// The grade-0 coefficient.
    pub const fn scalar_part(&self) -> f64 {
        self.c[0]
    }

    /// Scalar product `<a b>_0`.
    pub fn scalar_product(&self, other: &Self) -> f64 {
        self.gp(other).c[0]
    }

    /// <a ~a>_0, which in Cl(3,0) is the sum of squared coefficients.
    pub fn norm_squared(&self) -> f64 {
        self.c.iter().map(|x| x * x).sum()
    }

    /// sqrt(norm_squared): the Euclidean norm of the coefficient vector.
    pub fn norm(&self) -> f64 {
        libm::sqrt(self.norm_squared())
    }

    /// k times self (also `self * k` and `k * self`).
    pub fn scale(&self, k: f64) -> Self {
        let mut c = self.c;
        c.iter_mut().for_each(|x| *x *= k);
        Self { c }
    }
}

/// M with (w x).coeffs = M * x.coeffs: left multiplication by w as an 8x8 matrix.
pub fn left_mul_matrix(w: &Multivector) -> [[f64; 8]; 8] {
    let mut m = [[0.0; 8]; 8];
    for (a, row) in GP_TABLE.iter().enumerate() {
        for (b, &(r, sign)) in row.iter().enumerate() {
            m[r as usize][b] += sign as f64 * w.c[a];
        }
    }
    m
}

/// M with (x w).coeffs = M * x.coeffs: right multiplication by w.
pub fn right_mul_matrix(w: &Multivector) -> [[f64; 8]; 8] {
    let mut m = [[0.0; 8]; 8];
    for (a, row) in GP_TABLE.iter().enumerate() {
        for (b, &(r, sign)) in row.iter().enumerate() {
            m[r as usize][a] += sign as f64 * w.c[b];
        }
    }
    m
}

impl Add for Multivector {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        let mut c = self.c;
        c.iter_mut().zip(o.c).for_each(|(x, y)| *x += y);
        Self { c }
    }
}
impl Sub for Multivector {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        let mut c = self.c;
        c.iter_mut().zip(o.c).for_each(|(x, y)| *x -= y);
        Self { c }
    }
}
impl Neg for Multivector {
    type Output = Self;
    fn neg(self) -> Self {
        self.scale(-1.0)
    }
}
impl Mul for Multivector {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        self.gp(&o)
    }
}
impl Mul<&Multivector> for &Multivector {
    type Output = Multivector;
    fn mul(self, o: &Multivector) -> Multivector {
        self.gp(o)
    }
}
impl Mul<f64> for Multivector {
    type Output = Self;
    fn mul(self, k: f64) -> Self {
        self.scale(k)
    }
}
impl Mul<Multivector> for f64 {
    type Output = Multivector;
    fn mul(self, m: Multivector) -> Multivector {
        m.scale(self)
    }
}
impl AddAssign for Multivector {
    fn add_assign(&mut self, o: Self) {
        *self = *self + o;
    }
}
impl SubAssign for Multivector {
    fn sub_assign(&mut self, o: Self) {
        *self = *self - o;
    }
}

#[cfg(test)]
mod test_volumes;
#[cfg(test)]
mod tests;
