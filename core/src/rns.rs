//! RNS polynomials over caller-provided storage.
//!
//! A polynomial mod Q = q_0 * ... * q_l is held as l + 1 limbs of N words, limb-major
//! (`data[i * N .. (i + 1) * N]` is the residue mod q_i). Storage is a type parameter in the
//! style of tfhe-rs entities: `Vec<u64>` on the host (`RnsPolyOwned`, feature `alloc`), slices for views,
//! fixed arrays on the device. The representation (coefficients or NTT evaluations) is tracked
//! at run time and checked by every operation that cares.

use crate::arith::Modulus;
use crate::ntt::NttTable;

/// Coefficient or evaluation (NTT, bit-reversed) representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Representation {
    Coefficient,
    Ntt,
}

/// Errors from RNS operations; all are caller mistakes that would otherwise be silent garbage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RnsError {
    /// Storage length is not N * limbs, or N is not a power of two.
    Shape,
    /// Operands have different N or limb counts.
    Mismatch,
    /// Operands are in different representations, or the wrong one for the operation.
    Representation,
    /// Fewer moduli or tables than limbs.
    MissingModuli,
    /// Failure inside an NTT (table shape).
    Ntt,
}

impl core::fmt::Display for RnsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Shape => "storage length does not match N x limbs",
            Self::Mismatch => "polynomials differ in degree or number of limbs",
            Self::Representation => "polynomials are in the wrong (coefficient/NTT) representation",
            Self::MissingModuli => "fewer moduli than limbs",
            Self::Ntt => "NTT table does not fit the polynomial",
        })
    }
}

/// A polynomial in RNS form with `limbs` residues of degree `n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RnsPoly<S> {
    n: usize,
    limbs: usize,
    repr: Representation,
    data: S,
}

#[cfg(feature = "alloc")]
pub type RnsPolyOwned = RnsPoly<alloc::vec::Vec<u64>>;
pub type RnsPolyView<'a> = RnsPoly<&'a [u64]>;
pub type RnsPolyMut<'a> = RnsPoly<&'a mut [u64]>;

impl<S: AsRef<[u64]>> RnsPoly<S> {
    /// Wraps storage of exactly `n * limbs` words.
    pub fn from_storage(n: usize, limbs: usize, repr: Representation, data: S) -> Result<Self, RnsError> {
        if !n.is_power_of_two() || limbs == 0 || n.checked_mul(limbs) != Some(data.as_ref().len()) {
            return Err(RnsError::Shape);
        }
        Ok(Self { n, limbs, repr, data })
    }
    #[inline]
    pub fn n(&self) -> usize {
        self.n
    }
    /// Number of RNS limbs (level + 1 for a ciphertext polynomial).
    #[inline]
    pub fn limbs(&self) -> usize {
        self.limbs
    }
    #[inline]
    pub fn representation(&self) -> Representation {
        self.repr
    }
    #[inline]
    pub fn as_slice(&self) -> &[u64] {
        self.data.as_ref()
    }
    /// Residues modulo the i-th prime; `None` past the last limb.
    #[inline]
    pub fn limb(&self, i: usize) -> Option<&[u64]> {
        self.data.as_ref().get(i * self.n..(i + 1) * self.n)
    }
    /// Iterator over the limbs.
    pub fn limb_iter(&self) -> core::slice::ChunksExact<'_, u64> {
        self.data.as_ref().chunks_exact(self.n)
    }
    pub fn as_view(&self) -> RnsPolyView<'_> {
        RnsPoly {
            n: self.n,
            limbs: self.limbs,
            repr: self.repr,
            data: self.data.as_ref(),
        }
    }
    /// View of the first `limbs` limbs (dropping levels without copying).
    pub fn prefix(&self, limbs: usize) -> Result<RnsPolyView<'_>, RnsError> {
        if limbs == 0 || limbs > self.limbs {
            return Err(RnsError::Mismatch);
        }
        Ok(RnsPoly {
            n: self.n,
            limbs,
            repr: self.repr,
            data: &self.data.as_ref()[..limbs * self.n],
        })
    }
    pub fn into_storage(self) -> S {
        self.data
    }
    #[cfg(feature = "alloc")]
    pub fn to_owned_poly(&self) -> RnsPolyOwned {
        RnsPoly {
            n: self.n,
            limbs: self.limbs,
            repr: self.repr,
            data: self.data.as_ref().to_vec(),
        }
    }
}

impl<S: AsRef<[u64]> + AsMut<[u64]>> RnsPoly<S> {
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u64] {
        self.data.as_mut()
    }
    #[inline]
    pub fn limb_mut(&mut self, i: usize) -> Option<&mut [u64]> {
        let n = self.n;
        self.data.as_mut().get_mut(i * n..(i + 1) * n)
    }
    pub fn limb_iter_mut(&mut self) -> core::slice::ChunksExactMut<'_, u64> {
        let n = self.n;
        self.data.as_mut().chunks_exact_mut(n)
    }
    pub fn as_mut_view(&mut self) -> RnsPolyMut<'_> {
        RnsPoly {
            n: self.n,
            limbs: self.limbs,
            repr: self.repr,
            data: self.data.as_mut(),
        }
    }
    /// Declares the representation of freshly written data (e.g. uniform samples drawn
    /// directly in the NTT domain). Does not transform anything.
    pub fn set_representation(&mut self, repr: Representation) {
        self.repr = repr;
    }

    fn check_binary<T: AsRef<[u64]>>(&self, other: &RnsPoly<T>, moduli: &[Modulus]) -> Result<(), RnsError> {
        if self.n != other.n || self.limbs > other.limbs {
            return Err(RnsError::Mismatch);
        }
        if self.repr != other.repr {
            return Err(RnsError::Representation);
        }
        if moduli.len() < self.limbs {
            return Err(RnsError::MissingModuli);
        }
        Ok(())
    }

    /// self += other (limb-wise; `other` may have more limbs, the extra ones are ignored).
    pub fn add_assign<T: AsRef<[u64]>>(&mut self, other: &RnsPoly<T>, moduli: &[Modulus]) -> Result<(), RnsError> {
        self.check_binary(other, moduli)?;
        for ((a, b), m) in self.limb_iter_mut().zip(other.limb_iter()).zip(moduli) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x = m.add(*x, *y));
        }
        Ok(())
    }

    /// self -= other.
    pub fn sub_assign<T: AsRef<[u64]>>(&mut self, other: &RnsPoly<T>, moduli: &[Modulus]) -> Result<(), RnsError> {
        self.check_binary(other, moduli)?;
        for ((a, b), m) in self.limb_iter_mut().zip(other.limb_iter()).zip(moduli) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x = m.sub(*x, *y));
        }
        Ok(())
    }

    /// self = -self.
    pub fn neg_assign(&mut self, moduli: &[Modulus]) -> Result<(), RnsError> {
        if moduli.len() < self.limbs {
            return Err(RnsError::MissingModuli);
        }
        for (a, m) in self.limb_iter_mut().zip(moduli) {
            a.iter_mut().for_each(|x| *x = m.neg(*x));
        }
        Ok(())
    }

    /// self *= other point-wise (both in NTT form: a negacyclic product).
    pub fn mul_assign<T: AsRef<[u64]>>(&mut self, other: &RnsPoly<T>, moduli: &[Modulus]) -> Result<(), RnsError> {
        self.check_binary(other, moduli)?;
        if self.repr != Representation::Ntt {
            return Err(RnsError::Representation);
        }
        for ((a, b), m) in self.limb_iter_mut().zip(other.limb_iter()).zip(moduli) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x = m.mul(*x, *y));
        }
        Ok(())
    }

    /// self += a * b point-wise (NTT form).
    pub fn mul_add_assign<T: AsRef<[u64]>, U: AsRef<[u64]>>(
        &mut self,
        a: &RnsPoly<T>,
        b: &RnsPoly<U>,
        moduli: &[Modulus],
    ) -> Result<(), RnsError> {
        self.check_binary(a, moduli)?;
        self.check_binary(b, moduli)?;
        if self.repr != Representation::Ntt {
            return Err(RnsError::Representation);
        }
        for (((c, x), y), m) in self.limb_iter_mut().zip(a.limb_iter()).zip(b.limb_iter()).zip(moduli) {
            for ((ci, xi), yi) in c.iter_mut().zip(x).zip(y) {
                *ci = m.add(*ci, m.mul(*xi, *yi));
            }
        }
        Ok(())
    }

    /// Coefficient -> NTT, limb i with `tables[i]`.
    pub fn ntt<T: AsRef<[u64]>>(&mut self, tables: &[NttTable<T>]) -> Result<(), RnsError> {
        if self.repr != Representation::Coefficient {
            return Err(RnsError::Representation);
        }
        if tables.len() < self.limbs {
            return Err(RnsError::MissingModuli);
        }
        for (a, t) in self.limb_iter_mut().zip(tables) {
            t.forward(a).map_err(|_| RnsError::Ntt)?;
        }
        self.repr = Representation::Ntt;
        Ok(())
    }

    /// NTT -> coefficient.
    pub fn intt<T: AsRef<[u64]>>(&mut self, tables: &[NttTable<T>]) -> Result<(), RnsError> {
        if self.repr != Representation::Ntt {
            return Err(RnsError::Representation);
        }
        if tables.len() < self.limbs {
            return Err(RnsError::MissingModuli);
        }
        for (a, t) in self.limb_iter_mut().zip(tables) {
            t.inverse(a).map_err(|_| RnsError::Ntt)?;
        }
        self.repr = Representation::Coefficient;
        Ok(())
    }
}

#[cfg(feature = "alloc")]
impl RnsPoly<alloc::vec::Vec<u64>> {
    /// The zero polynomial.
    pub fn zero(n: usize, limbs: usize, repr: Representation) -> Self {
        Self {
            n,
            limbs,
            repr,
            data: alloc::vec![0; n * limbs],
        }
    }
    /// Drops the top limbs in place.
    pub fn truncate_limbs(&mut self, limbs: usize) -> Result<(), RnsError> {
        if limbs == 0 || limbs > self.limbs {
            return Err(RnsError::Mismatch);
        }
        self.data.truncate(limbs * self.n);
        self.limbs = limbs;
        Ok(())
    }
}

/// Writes the residues of small signed integers (secrets, errors) into `out` modulo `m`.
/// Constant time in the values.
pub fn reduce_small_into(values: &[i8], m: &Modulus, out: &mut [u64]) {
    for (o, &v) in out.iter_mut().zip(values) {
        *o = m.reduce_i8(v);
    }
}

/// CRT reconstruction of coefficients from their residues to centred values as f64.
///
/// Mixed-radix (Garner) digits v_k are computed exactly in word arithmetic, so
/// x = v_0 + v_1 q_0 + v_2 q_0 q_1 + ... . The centred value is x if x <= (Q-1)/2, else
/// -(Q-1-x) - 1, and Q-1-x has digits q_k - 1 - v_k with no borrows; whichever of the two is
/// small is evaluated in f64 by Horner's rule from the top, so the result has f64 relative
/// precision whatever the size of Q. Both candidates are always evaluated and the choice is a
/// select, not a branch (decrypted values are secret). The constants (q_j mod q_k and the
/// inverses of the prefix products) are computed once per basis.
#[cfg(feature = "alloc")]
#[derive(Clone, Debug)]
pub struct CrtComposer {
    moduli: alloc::vec::Vec<Modulus>,
    /// (q_0 ... q_(k-1))^-1 mod q_k with its Shoup quotient.
    inv_prefix: alloc::vec::Vec<(u64, u64)>,
    /// w[k * l + j] = q_0 ... q_(j-1) mod q_k for j < k (the mixed-radix weights), with their
    /// Shoup quotients: x mod q_k = sum_j d_j w[k][j], one Shoup product per term.
    w: alloc::vec::Vec<(u64, u64)>,
}

#[cfg(feature = "alloc")]
impl CrtComposer {
    pub fn new(moduli: &[Modulus]) -> Self {
        let l = moduli.len();
        let mut w = alloc::vec![(0u64, 0u64); l * l];
        let mut inv_prefix = alloc::vec::Vec::with_capacity(l);
        for (k, mk) in moduli.iter().enumerate() {
            let mut prefix = 1u64 % mk.value();
            for (j, mj) in moduli[..k].iter().enumerate() {
                w[k * l + j] = (prefix, mk.shoup(prefix));
                prefix = mk.mul(prefix, mk.reduce(mj.value()));
            }
            let inv = mk.inv(prefix);
            inv_prefix.push((inv, mk.shoup(inv)));
        }
        Self {
            moduli: moduli.to_vec(),
            inv_prefix,
            w,
        }
    }

    pub fn limbs(&self) -> usize {
        self.moduli.len()
    }

    /// The centred value of one coefficient given its residues; `digits` is scratch of the
    /// same length.
    pub fn centered_f64(&self, residues: &[u64], digits: &mut [u64]) -> f64 {
        let l = residues.len().min(self.moduli.len()).min(digits.len());
        if l == 0 {
            return 0.0;
        }
        let stride = self.moduli.len();
        for k in 0..l {
            let mk = &self.moduli[k];
            let (q, two_q) = (mk.value(), 2 * mk.value());
            // Value of the digits found so far, modulo q_k: sum_j d_j w[k][j]. Shoup products
            // accept any u64 digit (no reduction of d_j mod q_k) and land in [0, 2q); the sum is
            // kept in [0, 2q) with one conditional subtraction per term.
            let mut acc = 0u64;
            for (d, &(wk, wks)) in digits[..k].iter().zip(&self.w[k * stride..k * stride + k]) {
                acc = crate::arith::csub(acc + mk.mul_shoup_lazy(*d, wk, wks), two_q);
            }
            let acc = crate::arith::csub(acc, q);
            let (inv, inv_s) = self.inv_prefix[k];
            digits[k] = mk.mul_shoup(mk.sub(mk.reduce(residues[k]), acc), inv, inv_s);
        }
        // x > (Q-1)/2  <=>  x > Q-1-x, decided lexicographically from the top digit.
        let mut greater = 0u64; // 1 once decided x > complement
        let mut decided = 0u64;
        let mut pos = 0.0f64;
        let mut neg = 0.0f64;
        for k in (0..l).rev() {
            let q = self.moduli[k].value();
            let v = digits[k];
            let c = q - 1 - v;
            let gt = (c.wrapping_sub(v) >> 63) & 1; // v > c
            let ne = ((v ^ c) | (v ^ c).wrapping_neg()) >> 63; // v != c
            greater |= gt & !decided & 1;
            decided |= ne;
            pos = pos * q as f64 + v as f64;
            neg = neg * q as f64 + c as f64;
        }
        let neg_val = -neg - 1.0;
        // Select without branching on the secret comparison.
        let mask = greater.wrapping_neg();
        f64::from_bits((neg_val.to_bits() & mask) | (pos.to_bits() & !mask))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::primes;
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use std::vec;

    fn moduli(qs: &[u64]) -> std::vec::Vec<Modulus> {
        qs.iter().map(|&q| Modulus::new(q).unwrap()).collect()
    }

    #[test]
    fn crt_round_trip_small_and_large_values() {
        let qs = [primes::Q60, primes::Q40[0], primes::Q40[1], primes::Q56[0]];
        let ms = moduli(&qs);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let mut digits = [0u64; 4];
        for limbs in 1..=4 {
            for _ in 0..2000 {
                // Values of up to ~100 bits, both signs (exactly representable in i128).
                let bits = rng.next_u32() % (if limbs == 1 { 58 } else { 98 });
                let v = ((rng.next_u64() as i128) << 40 | rng.next_u64() as i128) >> (104 - bits.min(104));
                let v = if rng.next_u32() & 1 == 1 { -v } else { v };
                let res: std::vec::Vec<u64> = qs[..limbs].iter().map(|&q| v.rem_euclid(q as i128) as u64).collect();
                let got = CrtComposer::new(&ms[..limbs]).centered_f64(&res, &mut digits);
                let want = v as f64;
                assert!((got - want).abs() <= want.abs() * 1e-15 + 1e-9, "limbs {limbs}: {got} vs {want}");
            }
        }
        // Extremes: (Q-1)/2 stays positive, (Q+1)/2 is negative.
        let q0 = qs[0] as i128;
        let q1 = qs[1] as i128;
        let big_q = q0 * q1;
        for (v, want) in [
            ((big_q - 1) / 2, ((big_q - 1) / 2) as f64),
            ((big_q + 1) / 2, -((big_q - 1) / 2) as f64),
        ] {
            let res = [(v % q0) as u64, (v % q1) as u64];
            assert_eq!(CrtComposer::new(&ms[..2]).centered_f64(&res, &mut digits), want);
        }
    }

    #[test]
    fn arithmetic_and_shape_checks() {
        let ms = moduli(&[primes::Q40[0], primes::Q40[1]]);
        let mut a = RnsPoly::from_storage(4, 2, Representation::Ntt, vec![1u64, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let b = RnsPoly::from_storage(4, 2, Representation::Ntt, vec![1u64; 8]).unwrap();
        a.add_assign(&b, &ms).unwrap();
        assert_eq!(a.limb(1).unwrap(), &[6, 7, 8, 9]);
        a.mul_assign(&b, &ms).unwrap();
        a.sub_assign(&b, &ms).unwrap();
        assert_eq!(a.limb(0).unwrap(), &[1, 2, 3, 4]);
        a.neg_assign(&ms).unwrap();
        assert_eq!(a.limb(0).unwrap()[0], primes::Q40[0] - 1);
        let c = RnsPoly::from_storage(4, 2, Representation::Coefficient, vec![0u64; 8]).unwrap();
        assert_eq!(a.add_assign(&c, &ms), Err(RnsError::Representation));
        assert_eq!(
            RnsPoly::from_storage(4, 2, Representation::Ntt, vec![0u64; 7]).unwrap_err(),
            RnsError::Shape
        );
        assert_eq!(a.add_assign(&b, &ms[..1]), Err(RnsError::MissingModuli));
        assert!(a.limb(2).is_none());
    }
}
