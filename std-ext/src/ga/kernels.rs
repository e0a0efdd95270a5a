//! Fused multiply-accumulate kernels for the batched geometric product (docs/architecture.md §6).
//!
//! Why here and not in the evaluator: a geometric product sums 8 products per output blade.
//! Doing that with `tensor` + `add_assign3` (or `mul_plain` + `add_assign`) allocates one
//! degree-2 (or degree-1) ciphertext per term and reduces every partial sum. These kernels
//! read every operand once, sum the (at most 32) 122-bit products of a coefficient in a u128
//! and reduce once, which is what makes the 64-term products cost about 8 tensor products.
//! They only use the public `RnsPoly`/`Modulus` API and validate shapes like the evaluator.

use crate::error::EvalError;
use crate::evaluator::{degree2_by_limb, Ciphertext3, PlaintextRns};
use crate::EvalContext;
use clifhe_core::ciphertext::{CiphertextMeta, CiphertextOwned};

/// Checks that `ct` is a well-formed NTT-form ciphertext of this parameter set sharing
/// level, slots and scale with `reference`: the evaluator's own checks, so both agree.
pub(crate) fn check_like(ectx: &EvalContext, reference: &CiphertextMeta, ct: &CiphertextOwned) -> Result<(), EvalError> {
    let ev = crate::evaluator::Evaluator::new(ectx);
    ev.check_ct(ct)?;
    ev.check_pair(reference, &ct.meta)
}

/// One term's limbs: x.c0, x.c1, y.c0, y.c1 and whether to negate.
type TermLimbs<'a> = (&'a [u64], &'a [u64], &'a [u64], &'a [u64], bool);

/// sum_t sign_t * x[a_t] (x) y[b_t] as one degree-2 ciphertext (no relinearization, no
/// rescale; scale = scale_x * scale_y). `terms` holds (a, b, sign) with sign = +-1; at most
/// 16 terms (c1 sums two 122-bit products per term, 32 in a u128).
pub(crate) fn signed_tensor_sum(
    ectx: &EvalContext,
    x: &[CiphertextOwned],
    y: &[CiphertextOwned],
    terms: &[(usize, usize, i8)],
) -> Result<Ciphertext3, EvalError> {
    let (&(a0, b0, _), rest) = terms.split_first().ok_or(EvalError::Invalid("empty tensor sum"))?;
    if rest.len() >= 16 {
        return Err(EvalError::Invalid("at most 16 terms per tensor sum"));
    }
    let xa = x.get(a0).ok_or(EvalError::Invalid("blade index out of range"))?;
    let yb = y.get(b0).ok_or(EvalError::Invalid("blade index out of range"))?;
    let (xm, ym) = (xa.meta, yb.meta);
    for &(a, b, _) in terms {
        check_like(ectx, &xm, x.get(a).ok_or(EvalError::Invalid("blade index out of range"))?)?;
        check_like(ectx, &ym, y.get(b).ok_or(EvalError::Invalid("blade index out of range"))?)?;
    }
    if xm.level != ym.level {
        return Err(EvalError::LevelMismatch {
            left: xm.level,
            right: ym.level,
        });
    }
    if xm.log_slots != ym.log_slots {
        return Err(EvalError::SlotsMismatch);
    }
    let n = ectx.n();
    let meta = CiphertextMeta {
        scale: xm.scale * ym.scale,
        ..xm
    };
    Ok(degree2_by_limb(ectx, meta, |m, r, o0, o1, o2| {
        // (x0, x1, y0, y1, negate) per term, sliced to this limb.
        let srcs: Vec<TermLimbs<'_>> = terms
            .iter()
            .map(|&(a, b, s)| {
                (
                    &x[a].c0.as_slice()[r.clone()],
                    &x[a].c1.as_slice()[r.clone()],
                    &y[b].c0.as_slice()[r.clone()],
                    &y[b].c1.as_slice()[r.clone()],
                    s < 0,
                )
            })
            .collect();
        for j in 0..n {
            let (mut s0, mut s1, mut s2) = (0u128, 0u128, 0u128);
            for &(x0, x1, y0, y1, neg) in &srcs {
                // The sign is public (the Cl(3,0) table): negate y's coefficients.
                let (v0, v1) = if neg { (m.neg(y0[j]), m.neg(y1[j])) } else { (y0[j], y1[j]) };
                s0 += x0[j] as u128 * v0 as u128;
                s1 += x0[j] as u128 * v1 as u128 + x1[j] as u128 * v0 as u128;
                s2 += x1[j] as u128 * v1 as u128;
            }
            o0[j] = m.reduce_u128(s0);
            o1[j] = m.reduce_u128(s1);
            o2[j] = m.reduce_u128(s2);
        }
    }))
}

/// sum_t pts[t] * cts[t] (slot-wise, in NTT form): the evaluator's one sum-of-products kernel
/// ([`crate::evaluator::Evaluator::mul_plain_sum`]), for the block-diagonal maps here.
pub(crate) fn plain_mul_sum(ectx: &EvalContext, cts: &[&CiphertextOwned], pts: &[&PlaintextRns]) -> Result<CiphertextOwned, EvalError> {
    if cts.len() != pts.len() {
        return Err(EvalError::Invalid("one plaintext per ciphertext"));
    }
    let terms: Vec<(&CiphertextOwned, &PlaintextRns)> = cts.iter().copied().zip(pts.iter().copied()).collect();
    crate::evaluator::Evaluator::new(ectx).mul_plain_sum(&terms)
}
