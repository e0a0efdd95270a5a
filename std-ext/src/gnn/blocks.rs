//! The block layout: the latency path for few patients. All 8 blades of a patient sit in one
//! ciphertext, so a form costs one relinearization for every output instead of the blade-major
//! layout's 8 + C, and the last form needs no rotation of its input at all.
//!
//! # Layout
//!
//! The S slots are 8 blocks of S/8 ([`block_size`]); a rotation by t blocks is a cyclic shift of
//! the block index. Each patient has one *lane* per class (C lanes: [`block_capacity`] patients
//! per ciphertext), lane c of patient p being slot `p C + c` of every block. The hospital puts
//! blade k + t mod 8 of patient p in block k of every one of the patient's lanes of vector t
//! ([`pack_blocks_rotated`]: the 8 block rotations, encrypted; or [`pack_blocks`], rotated by the
//! vendor).
//!
//! # A quadratic form in one pass
//!
//! With Z_t the input rotated by t blocks (block k holds x_(k+t)), the product Z_t Z_u holds
//! x_(k+t) x_(k+u) in block k, and every unordered pair of blades appears exactly once among the
//! 36 pairs t <= u for each k. So one fused pass over the 36 products with slot-wise constants
//! ([`Evaluator::rotation_quadratic_form`]) computes in *every* slot any quadratic function of
//! its patient's blades, one relinearization and two rescales for all of them. A hidden form
//! puts output k in block k (all lanes alike), and the next form rotates it by 1..7 blocks
//! (hoisted) to read it the same way.
//!
//! # The last form: principal axes and one sum over the blocks
//!
//! The scores are a quadratic form in the last hidden values h: `score_c = h^T S_c h + L_c . h +
//! K_c`. Instead of rotating h 7 times (a key switch each, then a 36-product pass), the form
//! before it is composed with the principal axes of each S_c ([`QuadraticForm::principal_axes`]:
//! `h^T S_c h = sum_j lambda_cj (v_cj . h)^2` with v_cj orthonormal, so also `L_c . h = sum_j
//! (L_c . v_cj)(v_cj . h)`): it puts u_cj = v_cj . h, a quadratic function of its own input, in
//! block j of lane c (C x 8 outputs, still one pass). Then
//!
//! * y = lambda u^2 + mu u slot by slot (mu_cj = L_c . v_cj): the same fused pass with one
//!   input, one relinearization, two rescales;
//! * the sum over the 8 blocks, `y + sum_(t=1..7) rot(y, t blocks)`, with one ModUp and one
//!   ModDown for all 7 rotations ([`Evaluator::rotate_sum_hoisted`], the same Galois keys);
//! * + K_c in block 0.
//!
//! Score c of patient p lands in slot p C + c ([`block_result_layout`]); every block holds the
//! same sums, and sanitisation masks all but those slots. The bounds of this evaluation are
//! [`super::noise::analyse`] with [`super::noise::Packing::Blocks`] or
//! [`super::noise::Packing::BlocksEncryptedRotations`].

use super::encrypted::Schedule;
use super::plan::{InferencePlan, QuadraticForm};
use crate::error::EvalError;
use crate::evaluator::{Evaluator, PlaintextRns};
use crate::keys::{GaloisKeys, RelinearizationKey};
use crate::privacy::ResultLayout;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::Params;
use rayon::prelude::*;
use std::borrow::Cow;

/// Slots per block of the block layout: 8 blocks fill the N/2 slots, so a rotation by t blocks
/// is a cyclic shift of the blade index (block k receives block k + t mod 8).
pub fn block_size(params: &Params) -> usize {
    params.max_slots() / 8
}

/// Patients one block-layout ciphertext holds for a model of `classes` classes (one lane per
/// class in every block).
pub fn block_capacity(params: &Params, classes: usize) -> usize {
    block_size(params) / classes.max(1)
}

/// Rotation steps the block layout needs (Galois keys for them): t blocks, t = 1..7.
pub fn block_rotation_steps(params: &Params) -> Vec<i64> {
    (1..8).map(|t| (t * block_size(params)) as i64).collect()
}

/// Where score c of patient p lands: slot p C + c of the one result ciphertext.
pub fn block_result_layout(patients: usize, classes: usize) -> ResultLayout {
    ResultLayout::Interleaved {
        groups: patients,
        classes,
        stride: classes,
    }
}

/// The slots that hold scores (sanitisation keeps those, masks the rest).
pub fn block_used_slots(params: &Params, patients: usize, classes: usize) -> Vec<bool> {
    (0..params.max_slots()).map(|s| s < patients * classes).collect()
}

/// The 8 block rotations the hospital encrypts ([`evaluate_blocks`] then rotates nothing before
/// the first form): vector t holds blade k + t mod 8 of patient p in block k, lanes p C..p C + C.
/// Other slots hold 0 (with box-encoded inputs: the box centre).
pub fn pack_blocks_rotated(params: &Params, inputs: &[[f64; 8]], classes: usize) -> Result<Vec<Vec<f64>>, EvalError> {
    (0..8).map(|t| pack_rotation(params, inputs, classes, t)).collect()
}

/// The block layout unrotated, as one vector (the vendor rotates it: key switching at the input
/// scale, hence [`super::encrypted::PRIVATE_LOG_INPUT_SCALE_BLOCKS`]).
pub fn pack_blocks(params: &Params, inputs: &[[f64; 8]], classes: usize) -> Result<Vec<f64>, EvalError> {
    pack_rotation(params, inputs, classes, 0)
}

fn pack_rotation(params: &Params, inputs: &[[f64; 8]], classes: usize, t: usize) -> Result<Vec<f64>, EvalError> {
    let b = block_size(params);
    if classes == 0 || inputs.len() > block_capacity(params, classes) {
        return Err(EvalError::Invalid("more patients than a block-layout ciphertext holds"));
    }
    let mut v = vec![0.0; params.max_slots()];
    for (p, x) in inputs.iter().enumerate() {
        for k in 0..8 {
            let start = k * b + p * classes;
            v[start..start + classes].fill(x[(k + t) % 8]);
        }
    }
    Ok(v)
}

/// Which output of a form a slot computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Output k in block k, every lane (a hidden form, read by the next through rotations).
    Blocks,
    /// Output c 8 + j in block j of lane c (the principal-axis values u_cj).
    AxisLanes,
    /// Output c in block 0 of lane c (the scores of a one-form plan).
    ScoreLanes,
}

impl Placement {
    /// The output slot (block, lane c) computes, if any.
    fn output(self, block: usize, lane: usize, outputs: usize) -> Option<usize> {
        let o = match self {
            Self::Blocks => block,
            Self::AxisLanes => lane * 8 + block,
            Self::ScoreLanes if block == 0 => lane,
            Self::ScoreLanes => return None,
        };
        (o < outputs).then_some(o)
    }

    /// The block output `o` sits in.
    pub(crate) fn block_of(self, o: usize) -> usize {
        match self {
            Self::Blocks => o,
            Self::AxisLanes => o % 8,
            Self::ScoreLanes => 0,
        }
    }
}

/// The last form on its principal axes (module docs), per class: `score_c = sum_j (lambda[c][j]
/// u_cj^2 + mu[c][j] u_cj) + constant[c]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AxisTail {
    pub(crate) lambda: Vec<[f64; 8]>,
    pub(crate) mu: Vec<[f64; 8]>,
    pub(crate) constant: Vec<f64>,
}

/// A plan as the block layout evaluates it: forms with rotations (the last of them placed by
/// [`Placement`]) and, for plans of two or more forms, the principal-axis tail.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BlockPlan {
    pub(crate) forms: Vec<(QuadraticForm, Placement)>,
    pub(crate) tail: Option<AxisTail>,
    pub(crate) classes: usize,
}

impl BlockPlan {
    pub(crate) fn new(plan: &InferencePlan) -> Result<Self, EvalError> {
        let mut forms = plan.forms();
        let last = forms.pop().ok_or(EvalError::Invalid("a plan without forms"))?;
        let classes = last.outputs();
        if classes == 0 || classes > 8 {
            return Err(EvalError::Invalid("the block layout takes 1 to 8 classes"));
        }
        let Some(before) = forms.pop() else {
            return Ok(Self {
                forms: vec![(last, Placement::ScoreLanes)],
                tail: None,
                classes,
            });
        };
        if last.is_affine() {
            // Trained hidden layers are products of two affine maps; a last layer whose products
            // all vanish would take one level where the schedule counts two.
            return Err(EvalError::Invalid("the block layout needs a quadratic last layer"));
        }
        let mut rows = Vec::with_capacity(8 * classes);
        let (mut lambda, mut mu) = (Vec::with_capacity(classes), Vec::with_capacity(classes));
        for c in 0..classes {
            let (l, axes) = last.principal_axes(c);
            let mut m = [0.0; 8];
            for (mj, v) in m.iter_mut().zip(&axes) {
                *mj = v.iter().zip(&last.lin[c]).map(|(a, b)| a * b).sum();
            }
            rows.extend_from_slice(&axes);
            lambda.push(l);
            mu.push(m);
        }
        let mut placed: Vec<(QuadraticForm, Placement)> = forms.into_iter().map(|f| (f, Placement::Blocks)).collect();
        placed.push((before.combined(&rows), Placement::AxisLanes));
        Ok(Self {
            forms: placed,
            tail: Some(AxisTail {
                lambda,
                mu,
                constant: last.constant.clone(),
            }),
            classes,
        })
    }

    /// Plaintext evaluation in the block plan's own terms (the tests compare it with the plan).
    #[cfg(test)]
    fn evaluate(&self, x: &[f64; 8]) -> Vec<f64> {
        let mut h = x.to_vec();
        for (f, _) in &self.forms {
            let mut input = [0.0; 8];
            input.iter_mut().zip(&h).for_each(|(i, v)| *i = *v);
            h = f.evaluate(&input);
        }
        match &self.tail {
            None => h,
            Some(t) => (0..self.classes)
                .map(|c| {
                    (0..8).fold(t.constant[c], |acc, j| {
                        let u = h[c * 8 + j];
                        acc + t.lambda[c][j] * u * u + t.mu[c][j] * u
                    })
                })
                .collect(),
        }
    }
}

/// Plaintext constants of the block layout for one plan and schedule (computed once per model,
/// like the vendor's other preprocessing).
#[derive(Debug)]
pub struct BlockConstants {
    classes: usize,
    forms: Vec<BlockFormConstants>,
    tail: Option<TailConstants>,
}

#[derive(Debug)]
struct BlockFormConstants {
    affine: bool,
    quad: Vec<PlaintextRns>,
    lin: Vec<PlaintextRns>,
    constant: PlaintextRns,
}

#[derive(Debug)]
struct TailConstants {
    lambda: PlaintextRns,
    mu: PlaintextRns,
    constant: PlaintextRns,
}

/// (t, u) with t <= u: the 36 rotation pairs of the block layout.
fn block_pairs() -> Vec<(usize, usize)> {
    (0..8).flat_map(|t| (t..8).map(move |u| (t, u))).collect()
}

/// Encodes `values` at `level` and an arbitrary `scale`: directly when the f64 encoder can
/// (coefficients below 2^100), otherwise at scale / F with F the smallest integer that brings
/// them there, then multiplied by F in every limb; the plaintext's scale is (scale / F) F, equal
/// to `scale` up to f64 rounding.
fn encode_at_scale(ev: &Evaluator<'_>, values: &[f64], level: usize, scale: f64) -> Result<PlaintextRns, EvalError> {
    let vmax = values.iter().fold(0.0f64, |m, v| m.max(v.abs())) + 1.0;
    let f = (scale * vmax / 100f64.exp2()).ceil().max(1.0);
    if !(f.is_finite() && f < 2f64.powi(62)) {
        return Err(EvalError::Invalid("constant vector too large for its scale"));
    }
    let mut pt = ev.encode_real(values, level, scale / f)?;
    if f > 1.0 {
        let n = ev.context().n();
        let fk = f as u64;
        for i in 0..=level {
            let m = &ev.context().q_moduli()[i];
            let k = m.reduce(fk);
            let ks = m.shoup(k);
            if let Some(l) = pt.poly.as_mut_slice().get_mut(i * n..(i + 1) * n) {
                l.iter_mut().for_each(|x| *x = m.mul_shoup(*x, k, ks));
            }
        }
    }
    pt.scale = (scale / f) * f;
    Ok(pt)
}

impl BlockConstants {
    pub fn new(ev: &Evaluator<'_>, plan: &InferencePlan, schedule: &Schedule) -> Result<Self, EvalError> {
        let params = *ev.context().params();
        let bp = BlockPlan::new(plan)?;
        let steps = bp.forms.len() + usize::from(bp.tail.is_some());
        if steps != schedule.scales.len() {
            return Err(EvalError::Invalid("the schedule was made for another plan"));
        }
        let (b, classes) = (block_size(&params), bp.classes);
        let patients = block_capacity(&params, classes);
        // The slot vector whose slot (block, lane c) of every patient holds f(block, output).
        let vector = |placement: Placement, outputs: usize, f: &(dyn Fn(usize, usize) -> f64 + Sync)| -> Vec<f64> {
            let mut v = vec![0.0; params.max_slots()];
            for block in 0..8 {
                for c in 0..classes {
                    if let Some(o) = placement.output(block, c, outputs) {
                        let x = f(block, o);
                        for p in 0..patients {
                            v[block * b + p * classes + c] = x;
                        }
                    }
                }
            }
            v
        };
        let q = |l: usize| params.q()[l] as f64;
        let mut level = schedule.input_level;
        let mut d_in = schedule.input_scale;
        let mut forms = Vec::with_capacity(bp.forms.len());
        for ((form, placement), &out_scale) in bp.forms.iter().zip(&schedule.scales) {
            let (placement, outputs) = (*placement, form.outputs());
            let affine = form.is_affine();
            let (s, next_level) = if affine {
                (out_scale * q(level) / d_in, level - 1)
            } else {
                (out_scale * q(level) * q(level - 1) / (d_in * d_in), level - 2)
            };
            let quad = if affine {
                Vec::new()
            } else {
                block_pairs()
                    .par_iter()
                    .map(|&(t, u)| {
                        let v = vector(placement, outputs, &|k, o| {
                            let (a, c) = ((k + t) % 8, (k + u) % 8);
                            form.quad[o][a.min(c)][a.max(c)]
                        });
                        encode_at_scale(ev, &v, level, s)
                    })
                    .collect::<Result<Vec<_>, _>>()?
            };
            let lin_scale = if affine { s } else { s * d_in };
            let lin = (0..8)
                .into_par_iter()
                .map(|t| encode_at_scale(ev, &vector(placement, outputs, &|k, o| form.lin[o][(k + t) % 8]), level, lin_scale))
                .collect::<Result<Vec<_>, _>>()?;
            let constant = encode_at_scale(ev, &vector(placement, outputs, &|_, o| form.constant[o]), next_level, out_scale)?;
            forms.push(BlockFormConstants {
                affine,
                quad,
                lin,
                constant,
            });
            level = next_level;
            d_in = out_scale;
        }
        let tail = match (&bp.tail, schedule.scales.last()) {
            (Some(t), Some(&out_scale)) => {
                let s = out_scale * q(level) * q(level - 1) / (d_in * d_in);
                let axes = |f: &(dyn Fn(usize, usize) -> f64 + Sync)| vector(Placement::AxisLanes, 8 * classes, f);
                let lambda = encode_at_scale(ev, &axes(&|j, o| t.lambda[o / 8][j]), level, s)?;
                let mu = encode_at_scale(ev, &axes(&|j, o| t.mu[o / 8][j]), level, s * d_in)?;
                let k = vector(Placement::ScoreLanes, classes, &|_, c| t.constant[c]);
                let constant = encode_at_scale(ev, &k, level - 2, out_scale)?;
                Some(TailConstants { lambda, mu, constant })
            }
            _ => None,
        };
        Ok(Self { classes, forms, tail })
    }

    /// Classes (lanes per patient) of the model these constants were made for.
    pub fn classes(&self) -> usize {
        self.classes
    }
}

/// Evaluates a plan on one block-layout ciphertext ([`pack_blocks`]), or on its 8 rotations
/// encrypted by the hospital ([`pack_blocks_rotated`]: no key switching at the input scale, so a
/// smaller noise bound, [`super::noise::Packing::BlocksEncryptedRotations`]), with the levels
/// and scales of `schedule` and the `constants` made for both: per hidden form 7 hoisted
/// rotations, one fused pass over the 36 products, one relinearization and two rescales; the
/// last form as its principal axes (module docs). Score c of patient p lands in slot p C + c.
pub fn evaluate_blocks(
    ev: &Evaluator<'_>,
    rlk: &RelinearizationKey,
    gks: &GaloisKeys,
    schedule: &Schedule,
    constants: &BlockConstants,
    input: &[CiphertextOwned],
) -> Result<CiphertextOwned, EvalError> {
    let params = *ev.context().params();
    if input.len() != 1 && input.len() != 8 {
        return Err(EvalError::Invalid("the block layout takes one ciphertext or its 8 rotations"));
    }
    if constants.forms.len() + usize::from(constants.tail.is_some()) != schedule.scales.len() {
        return Err(EvalError::Invalid("constants and schedule made for different plans"));
    }
    let at_input = schedule.inputs_at_level(ev, input)?;
    // 8 inputs: the first form's rotations, as given; 1 input: rotated by the first form. `h`
    // is the current ciphertext, absent only before the first form when the rotations are given.
    let (mut h, mut given): (Option<Cow<'_, CiphertextOwned>>, _) = if at_input.len() == 8 {
        (None, Some(at_input))
    } else {
        let first = match at_input {
            Cow::Borrowed(s) => s.first().map(Cow::Borrowed),
            Cow::Owned(v) => v.into_iter().next().map(Cow::Owned),
        };
        (first, None)
    };
    let steps = block_rotation_steps(&params);
    for (c, &out_scale) in constants.forms.iter().zip(&schedule.scales) {
        // The form's inputs: the given rotations, or the current ciphertext itself (rotation 0,
        // not copied) and its hoisted rotations by 1..7 blocks.
        let given_now = given.take();
        let rotated = match (&given_now, h.as_deref()) {
            (Some(_), _) => Vec::new(),
            (None, Some(cur)) => ev.rotate_hoisted(cur, &steps, gks)?,
            (None, None) => return Err(EvalError::Invalid("the block layout needs an input")),
        };
        let z_refs: Vec<&CiphertextOwned> = match &given_now {
            Some(z) => z.iter().collect(),
            None => h.as_deref().into_iter().chain(&rotated).collect(),
        };
        let lin_refs: Vec<&PlaintextRns> = c.lin.iter().collect();
        let mut out = if c.affine {
            let first = z_refs.first().ok_or(EvalError::Invalid("the block layout needs an input"))?;
            let mut acc = ev.mul_plain(first, &c.lin[0])?;
            for (zt, pt) in z_refs.iter().zip(&c.lin).skip(1) {
                ev.add_assign(&mut acc, &ev.mul_plain(zt, pt)?)?;
            }
            ev.rescale(&acc)?
        } else {
            let quad_refs: Vec<&PlaintextRns> = c.quad.iter().collect();
            let acc = ev.rotation_quadratic_form(&z_refs, &quad_refs, &lin_refs)?;
            ev.relinearize_rescale_twice(&acc, rlk)?
        };
        // Exactly the schedule's scale up to f64 rounding of the scale bookkeeping.
        out.meta.scale = out_scale;
        let mut next = ev.add_plain(&out, &c.constant)?;
        next.meta.scale = out_scale;
        h = Some(Cow::Owned(next));
    }
    let h = h.ok_or(EvalError::Invalid("a plan without forms"))?;
    let (Some(t), Some(&out_scale)) = (&constants.tail, schedule.scales.last()) else {
        return Ok(h.into_owned());
    };
    // lambda u^2 + mu u in every slot, then the sum over the blocks and the constant.
    let acc = ev.rotation_quadratic_form(&[h.as_ref()], &[&t.lambda], &[&t.mu])?;
    let mut y = ev.relinearize_rescale_twice(&acc, rlk)?;
    y.meta.scale = out_scale;
    let summed = ev.rotate_sum_hoisted(&y, &steps, gks)?;
    let mut scores = ev.add_plain(&summed, &t.constant)?;
    scores.meta.scale = out_scale;
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gnn::{GnnModel, Normalisation};

    #[test]
    fn the_block_plan_is_the_plan() {
        for (hidden, classes) in [(&[16usize, 8][..], 3), (&[5][..], 2), (&[][..], 4), (&[4, 4, 4][..], 8)] {
            let names = (0..classes).map(|c| format!("c{c}")).collect();
            let model = GnnModel::new_random(hidden, classes, names, Normalisation::identity(), 0.3, 1.0, 3).unwrap();
            let plan = model.plan();
            let bp = BlockPlan::new(&plan).unwrap();
            assert_eq!(bp.tail.is_some(), plan.forms().len() >= 2);
            for x in [
                [0.3, -0.2, 0.5, 0.1, -0.7, 0.25, 0.05, -0.4],
                [1.0, -1.0, 0.0, 0.5, 0.5, -0.5, 1.0, -1.0],
            ] {
                let (got, want) = (bp.evaluate(&x), plan.evaluate_coeffs(&x));
                assert_eq!(got.len(), want.len());
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-11 * (1.0 + b.abs()), "{hidden:?}: {got:?} vs {want:?}");
                }
            }
        }
    }

    /// Orthonormal axes that rebuild the form, also for the degenerate cases a trained model
    /// can produce: a vanishing quadratic part, rank one, repeated eigenvalues.
    #[test]
    fn principal_axes_rebuild_the_form() {
        let mut forms = vec![[[0.0f64; 8]; 8]];
        let w = [0.5, -1.0, 0.25, 0.0, 2.0, -0.75, 1.5, 0.1];
        forms.push(core::array::from_fn(|a| {
            core::array::from_fn(|b| match a.cmp(&b) {
                core::cmp::Ordering::Less => 2.0 * w[a] * w[b],
                core::cmp::Ordering::Equal => w[a] * w[a],
                core::cmp::Ordering::Greater => 0.0,
            })
        }));
        forms.push(core::array::from_fn(|a| {
            core::array::from_fn(|b| if a == b { [3.0, 3.0, -1.0, -1.0][a % 4] } else { 0.0 })
        }));
        forms.push(core::array::from_fn(|a| {
            core::array::from_fn(|b| if a <= b { ((a * 8 + b) as f64 * 0.37).sin() } else { 0.0 })
        }));
        for quad in forms {
            let f = QuadraticForm {
                quad: vec![quad],
                lin: vec![[0.0; 8]],
                constant: vec![0.0],
                factors: vec![Vec::new()],
                offset: vec![0.0],
            };
            let (lambda, v) = f.principal_axes(0);
            for i in 0..8 {
                for j in 0..8 {
                    let dot: f64 = v[i].iter().zip(&v[j]).map(|(a, b)| a * b).sum();
                    assert!((dot - f64::from(u8::from(i == j))).abs() < 1e-13);
                }
            }
            let x = [0.3, -0.2, 0.5, 0.1, -0.7, 0.25, 0.05, -0.4];
            let want = f.evaluate(&x)[0];
            let got: f64 = (0..8)
                .map(|j| lambda[j] * v[j].iter().zip(&x).map(|(a, b)| a * b).sum::<f64>().powi(2))
                .sum();
            assert!((got - want).abs() < 1e-13 * (1.0 + want.abs()), "{got} vs {want}");
        }
    }

    #[test]
    fn lanes_and_placements() {
        let params = Params::from_name("private-n15").unwrap();
        assert_eq!(block_capacity(&params, 3), 2048 / 3);
        let x: Vec<[f64; 8]> = (0..2).map(|p| core::array::from_fn(|k| (10 * p + k) as f64)).collect();
        let v = pack_blocks_rotated(&params, &x, 3).unwrap();
        // Vector t, block k, lane c of patient p: blade k + t.
        assert_eq!(v[2][5 * 2048 + 3 + 1], x[1][7]);
        assert_eq!(v[0][3 * 2048 + 2], x[0][3]);
        assert_eq!(v[0][3 * 2048 + 6], 0.0);
        assert!(pack_blocks(&params, &vec![[0.0; 8]; 683], 3).is_err());
        assert_eq!(Placement::AxisLanes.output(5, 2, 24), Some(21));
        assert_eq!(Placement::AxisLanes.block_of(21), 5);
        assert_eq!(Placement::ScoreLanes.output(1, 0, 3), None);
        assert_eq!(Placement::Blocks.output(7, 2, 3), None);
        assert_eq!(block_result_layout(2, 3).position(1, 2), (0, 5));
    }
}
