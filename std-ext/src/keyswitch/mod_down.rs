//! ModDown: the two inner products over Q_l P divided by P back to Q_l, with the centred
//! conversion of `basis` (the division rounds to nearest), added into the caller's outputs.

use super::scratch::{for_each_limb_group, KeySwitchScratch, LimbCost};
use super::{LevelPrecomp, SwitchingKey};
use crate::context::EvalContext;
use crate::error::EvalError;
use clifhe_core::lincomb::{scale_difference, Destination};
use clifhe_core::rns::{Representation, RnsPoly};
use rayon::prelude::*;

/// What a key switch does with the second output polynomial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondOutput {
    /// out1 += d1 (relinearization: c1 + d1).
    Add,
    /// out1 = d1 (automorphisms and key switches of c1: the old c1 is replaced).
    Set,
}

impl EvalContext {
    /// ModDown of both inner products: d = (x - [x]_P) * P^-1 over Q_l with `[x]_P` centred
    /// (the division rounds to nearest, without the bias of the plain fast conversion; see
    /// [`super::basis`]), added to `out0` and added to or written into `out1`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn mod_down_into(
        &self,
        pre: &LevelPrecomp,
        level: usize,
        acc: &mut [u64],
        workers: &mut [u64],
        worker_words: usize,
        out0: &mut [u64],
        out1: &mut [u64],
        second: SecondOutput,
    ) -> Result<(), EvalError> {
        let n = self.n();
        let nq = level + 1;
        let np = self.params().p().len();
        let limbs = nq + np;
        let half = acc.len() / 2;
        let (acc0, acc1) = acc.split_at_mut(half);
        let (q0, p0) = acc0[..limbs * n].split_at_mut(nq * n);
        let (q1, p1) = acc1[..limbs * n].split_at_mut(nq * n);
        self.prepare_p_parts(pre, p0, p1)?;
        let (p0, p1) = (&*p0, &*p1);
        let (q0, q1) = (&*q0, &*q1);
        // Per limb: two conversions from the |P| primes and two forward NTTs (`LimbCost`).
        let cost = |i: usize| {
            let limb = LimbCost::of(self.q_moduli()[i].value());
            2 * (limb.conversion(np) + limb.ntt())
        };
        let group = |first: usize, o0: &mut [u64], o1: &mut [u64], buf: &mut [u64]| -> Result<(), EvalError> {
            let buf = &mut buf[..n];
            for (k, (o0, o1)) in o0.chunks_exact_mut(n).zip(o1.chunks_exact_mut(n)).enumerate() {
                let i = first + k;
                let (x0, x1) = (&q0[i * n..(i + 1) * n], &q1[i * n..(i + 1) * n]);
                let m = &self.q_moduli()[i];
                let (pinv, pinv_s) = pre.p_inv[i];
                let table = &self.q_tables()[i];
                pre.mod_down.convert_scaled_to(n, p0, i, buf);
                table.forward(buf).map_err(|_| EvalError::Representation)?;
                if !scale_difference(m, pinv, x0, buf, Destination::Add(o0)) {
                    for ((o, x), e) in o0.iter_mut().zip(x0).zip(buf.iter()) {
                        *o = m.add(*o, m.mul_shoup(m.sub(*x, *e), pinv, pinv_s));
                    }
                }
                pre.mod_down.convert_scaled_to(n, p1, i, buf);
                table.forward(buf).map_err(|_| EvalError::Representation)?;
                match second {
                    SecondOutput::Add => {
                        if !scale_difference(m, pinv, x1, buf, Destination::Add(o1)) {
                            for ((o, x), e) in o1.iter_mut().zip(x1).zip(buf.iter()) {
                                *o = m.add(*o, m.mul_shoup(m.sub(*x, *e), pinv, pinv_s));
                            }
                        }
                    }
                    SecondOutput::Set => {
                        if !scale_difference(m, pinv, x1, buf, Destination::Set(o1)) {
                            for ((o, x), e) in o1.iter_mut().zip(x1).zip(buf.iter()) {
                                *o = m.mul_shoup(m.sub(*x, *e), pinv, pinv_s);
                            }
                        }
                    }
                }
            }
            Ok(())
        };
        let short = || EvalError::Invalid("key-switch outputs must hold the input's limbs");
        let out0 = out0.get_mut(..nq * n).ok_or_else(short)?;
        let out1 = out1.get_mut(..nq * n).ok_or_else(short)?;
        for_each_limb_group(n, 0, (out0, out1), (workers, worker_words), &cost, &group)
    }

    /// The P parts of both inner products in coefficient form, scaled and centred for the
    /// conversion to Q_l.
    fn prepare_p_parts(&self, pre: &LevelPrecomp, p0: &mut [u64], p1: &mut [u64]) -> Result<(), EvalError> {
        let n = self.n();
        p0.par_chunks_mut(n)
            .enumerate()
            .chain(p1.par_chunks_mut(n).enumerate())
            .try_for_each(|(k, l)| {
                self.p_tables()[k].inverse(l).map_err(|_| EvalError::Representation)?;
                pre.mod_down.scale_input_limb(k, l);
                Ok::<(), EvalError>(())
            })?;
        rayon::join(|| pre.mod_down.centre_scaled(n, p0), || pre.mod_down.centre_scaled(n, p1));
        Ok(())
    }

    /// Relinearization of the degree-2 ciphertext (c0, c1, c2) at level l (c2's key switch
    /// with `key` added to c0 and c1) followed by the division by q_(l-1) q_l, into `out0` and
    /// `out1` (l - 1 limbs each, NTT form): the same words as [`Self::key_switch_into`] then
    /// `Evaluator::rescale_twice_owned`, with one transform fewer per limb and polynomial.
    ///
    /// Both steps are linear maps mod each q_i except where they round, and they round on the
    /// same values. So ModDown's conversions of the P parts stay in coefficient form: on the two
    /// top limbs, c + x P^-1 is transformed back once and the conversion subtracted there
    /// (instead of transforming the conversion forward and the sum back); on each lower limb,
    /// the conversion times P^-1 and the top limbs' centred lift are added in coefficient form
    /// and transformed forward together (instead of each on its own).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn relinearize_rescale_twice_into<S: AsRef<[u64]> + Sync>(
        &self,
        c2: &RnsPoly<S>,
        key: &SwitchingKey,
        scratch: &mut KeySwitchScratch,
        c0: &[u64],
        c1: &[u64],
        out0: &mut [u64],
        out1: &mut [u64],
    ) -> Result<(), EvalError> {
        if c2.representation() != Representation::Ntt {
            return Err(EvalError::Representation);
        }
        let level = c2.limbs().checked_sub(1).ok_or(EvalError::Representation)?;
        if level < 2 {
            return Err(EvalError::OutOfLevels);
        }
        let pre = self.check_key(key, level, scratch, None)?;
        self.check_outputs(level, c0, c1)?;
        let n = self.n();
        let keep = level - 1;
        if out0.len() != keep * n || out1.len() != keep * n {
            return Err(EvalError::Invalid("the outputs hold the limbs below the two divided"));
        }
        self.products_into_scratch(pre, level, c2, None, key, scratch, false)?;
        let nq = level + 1;
        let limbs = nq + self.params().p().len();
        let half = scratch.acc.len() / 2;
        let (acc0, acc1) = scratch.acc.split_at_mut(half);
        let (q0, p0) = acc0[..limbs * n].split_at_mut(nq * n);
        let (q1, p1) = acc1[..limbs * n].split_at_mut(nq * n);
        self.prepare_p_parts(pre, p0, p1)?;
        let parts = [(c0, &*q0, &*p0), (c1, &*q1, &*p1)];
        // The top limbs of c + ModDown(x) in coefficient form: INTT(c + x P^-1) - conv P^-1.
        let tops: Vec<Vec<u64>> = [(0, keep), (0, level), (1, keep), (1, level)]
            .par_iter()
            .map(|&(k, j)| {
                let (c, x, p) = parts[k];
                let m = &self.q_moduli()[j];
                let (pinv, pinv_s) = pre.p_inv[j];
                let mut w: Vec<u64> = c[j * n..(j + 1) * n]
                    .iter()
                    .zip(&x[j * n..(j + 1) * n])
                    .map(|(&c, &x)| m.add(c, m.mul_shoup(x, pinv, pinv_s)))
                    .collect();
                self.q_tables()[j].inverse(&mut w).map_err(|_| EvalError::Representation)?;
                let mut conv = vec![0u64; n];
                pre.mod_down.convert_scaled_to(n, p, j, &mut conv);
                for (w, e) in w.iter_mut().zip(&conv) {
                    *w = m.sub(*w, m.mul_shoup(*e, pinv, pinv_s));
                }
                Ok(w)
            })
            .collect::<Result<_, EvalError>>()?;
        let (lift0, lift1) = rayon::join(
            || self.centred_pair_lift(&tops[0], &tops[1], level),
            || self.centred_pair_lift(&tops[2], &tops[3], level),
        );
        let lifts = [lift0, lift1];
        let q2 = self.q_moduli()[level].value() as u128 * self.q_moduli()[keep].value() as u128;
        // Each lower limb: (c + x P^-1 - NTT(conv P^-1 + lift)) (q_(l-1) q_l)^-1.
        out0.par_chunks_mut(n)
            .enumerate()
            .map(|(i, o)| (0, i, o))
            .chain(out1.par_chunks_mut(n).enumerate().map(|(i, o)| (1, i, o)))
            .try_for_each_init(
                || vec![0u64; n],
                |buf, (k, i, o)| {
                    let (c, x, p) = parts[k];
                    let m = &self.q_moduli()[i];
                    let (pinv, pinv_s) = pre.p_inv[i];
                    pre.mod_down.convert_scaled_to(n, p, i, buf);
                    for (b, &l) in buf.iter_mut().zip(&lifts[k]) {
                        *b = m.add(m.mul_shoup(*b, pinv, pinv_s), m.reduce_i128(l));
                    }
                    self.q_tables()[i].forward(buf).map_err(|_| EvalError::Representation)?;
                    let inv = m.inv(m.reduce_u128(q2));
                    let inv_s = m.shoup(inv);
                    for ((o, (&c, &x)), &b) in o
                        .iter_mut()
                        .zip(c[i * n..(i + 1) * n].iter().zip(&x[i * n..(i + 1) * n]))
                        .zip(buf.iter())
                    {
                        *o = m.mul_shoup(m.sub(m.add(c, m.mul_shoup(x, pinv, pinv_s)), b), inv, inv_s);
                    }
                    Ok(())
                },
            )
    }
}
