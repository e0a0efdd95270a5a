//! The one kernel for a sum of products with two outputs that share one factor, modulo one
//! prime: `out0 = sum_t e_t * b_t`, `out1 = sum_t e_t * a_t` point-wise. Key switching's inner
//! product has this shape (digit extensions times the key's `b` and `a` halves), and so has a
//! plaintext sum of products (plaintexts times the ciphertexts' `c0` and `c1` halves, the inner
//! sums of baby-step giant-step transforms and of the GNN's block maps).
//!
//! On an AVX-512 IFMA host the terms go to `clifhe_core::lincomb::inner_product` (eight
//! coefficients per step, [`MAX_DIGITS`] terms per call); elsewhere to a scalar kernel that
//! sums 128-bit products in blocks of [`IP_BLOCK`] coefficients whose accumulators stay in L1.
//! Both reduce fully, so the words are the same on every host.

use clifhe_core::arith::Modulus;
use clifhe_core::lincomb::{inner_product as inner_product_ifma, MAX_DIGITS};

/// Coefficients per block of the scalar kernel: two 128-bit accumulators of this many words
/// (8 KiB) stay in L1 while every term streams through.
const IP_BLOCK: usize = 256;

/// Terms summed in 128-bit accumulators before a reduction: a factor below 4q times one below
/// q is below 2^124 for q < 2^61, so 8 products and a reduced remainder stay below 2^128.
const DIGITS_PER_REDUCTION: usize = 8;

/// `out0 = sum_t e(t) * b(t)` and `out1 = sum_t e(t) * a(t)` modulo `m` over `terms` terms,
/// point-wise over `out0.len()` coefficients (`out1` as long, every input at least as long);
/// `e(t)` below 4m, `b(t)` and `a(t)` below m. With `add_to_out` the sums are added (modulo
/// `m`) to the canonical values already in `out0` and `out1`. The outputs are canonical.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sum_of_products<'k>(
    m: &Modulus,
    terms: usize,
    e: impl Fn(usize) -> &'k [u64],
    b: impl Fn(usize) -> &'k [u64],
    a: impl Fn(usize) -> &'k [u64],
    out0: &mut [u64],
    out1: &mut [u64],
    add_to_out: bool,
) {
    let n = out0.len();
    // On an IFMA host: eight coefficients per step (core's lincomb), at most MAX_DIGITS terms
    // per call, the later calls adding to the first's sums.
    let mut done = 0;
    while done < terms {
        let take = (terms - done).min(MAX_DIGITS);
        let rows = |f: &dyn Fn(usize) -> &'k [u64]| -> [&'k [u64]; MAX_DIGITS] {
            core::array::from_fn(|j| if j < take { f(done + j) } else { &[] })
        };
        let (es, bs, as_) = (rows(&e), rows(&b), rows(&a));
        let add = add_to_out || done > 0;
        if !inner_product_ifma(m, &es[..take], n, &bs[..take], &as_[..take], out0, out1, add) {
            break;
        }
        done += take;
    }
    if done < terms {
        let skip = |f: &'_ dyn Fn(usize) -> &'k [u64], t: usize| f(done + t);
        let add = add_to_out || done > 0;
        scalar(
            m,
            terms - done,
            &|t| skip(&e, t),
            &|t| skip(&b, t),
            &|t| skip(&a, t),
            out0,
            out1,
            add,
        );
    }
}

/// The scalar kernel of [`sum_of_products`] (any host, any number of terms).
#[allow(clippy::too_many_arguments)]
fn scalar<'k>(
    m: &Modulus,
    terms: usize,
    ext: &dyn Fn(usize) -> &'k [u64],
    kb: &dyn Fn(usize) -> &'k [u64],
    ka: &dyn Fn(usize) -> &'k [u64],
    out0: &mut [u64],
    out1: &mut [u64],
    add_to_out: bool,
) {
    let n = out0.len();
    let mut acc0 = [0u128; IP_BLOCK];
    let mut acc1 = [0u128; IP_BLOCK];
    let mut start = 0;
    while start < n {
        let len = IP_BLOCK.min(n - start);
        let (a0, a1) = (&mut acc0[..len], &mut acc1[..len]);
        a0.fill(0);
        a1.fill(0);
        // Four terms per pass over the accumulators (a quarter of their loads and stores),
        // never straddling a reduction.
        let mut j = 0;
        while j < terms {
            let take = (terms - j).min(4).min(DIGITS_PER_REDUCTION - j % DIGITS_PER_REDUCTION);
            let slices = |f: &dyn Fn(usize) -> &'k [u64]| -> [&'k [u64]; 4] {
                core::array::from_fn(|k| if k < take { &f(j + k)[start..start + len] } else { &[] })
            };
            let (e, b, a) = (slices(ext), slices(kb), slices(ka));
            match take {
                4 => accumulate::<4>(a0, a1, e, b, a),
                3 => accumulate::<3>(a0, a1, e, b, a),
                2 => accumulate::<2>(a0, a1, e, b, a),
                _ => accumulate::<1>(a0, a1, e, b, a),
            }
            j += take;
            if j % DIGITS_PER_REDUCTION == 0 && j < terms {
                a0.iter_mut().chain(a1.iter_mut()).for_each(|v| *v = m.reduce_u128(*v) as u128);
            }
        }
        for ((o, v), (p, w)) in out0[start..start + len]
            .iter_mut()
            .zip(a0.iter())
            .zip(out1[start..start + len].iter_mut().zip(a1.iter()))
        {
            let (x, y) = (m.reduce_u128(*v), m.reduce_u128(*w));
            (*o, *p) = if add_to_out { (m.add(*o, x), m.add(*p, y)) } else { (x, y) };
        }
        start += len;
    }
}

/// a0 += sum_k e_k * b_k and a1 += sum_k e_k * a_k over the first K of the four term slices
/// (each as long as the accumulators).
#[inline(always)]
fn accumulate<const K: usize>(a0: &mut [u128], a1: &mut [u128], e: [&[u64]; 4], b: [&[u64]; 4], a: [&[u64]; 4]) {
    let len = a0.len();
    let e: [&[u64]; K] = core::array::from_fn(|k| &e[k][..len]);
    let b: [&[u64]; K] = core::array::from_fn(|k| &b[k][..len]);
    let a: [&[u64]; K] = core::array::from_fn(|k| &a[k][..len]);
    for (i, (s0, s1)) in a0.iter_mut().zip(a1[..len].iter_mut()).enumerate() {
        let (mut x0, mut x1) = (*s0, *s1);
        for k in 0..K {
            let v = e[k][i] as u128;
            x0 += v * b[k][i] as u128;
            x1 += v * a[k][i] as u128;
        }
        *s0 = x0;
        *s1 = x1;
    }
}
