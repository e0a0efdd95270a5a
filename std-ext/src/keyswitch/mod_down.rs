//! ModDown: the two inner products over Q_l P divided by P back to Q_l, with the centred
//! conversion of `basis` (the division rounds to nearest), added into the caller's outputs.

use super::scratch::group_size;
use super::LevelPrecomp;
use crate::context::EvalContext;
use crate::error::EvalError;
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
        // The P parts in coefficient form, scaled for the conversion to Q_l.
        p0.par_chunks_mut(n)
            .enumerate()
            .chain(p1.par_chunks_mut(n).enumerate())
            .try_for_each(|(k, l)| {
                self.p_tables()[k].inverse(l).map_err(|_| EvalError::Representation)?;
                pre.mod_down.scale_input_limb(k, l);
                Ok::<(), EvalError>(())
            })?;
        rayon::join(|| pre.mod_down.centre_scaled(n, p0), || pre.mod_down.centre_scaled(n, p1));
        let (p0, p1) = (&*p0, &*p1);
        let group = group_size(nq, workers.len() / worker_words);
        out0.par_chunks_mut(group * n)
            .zip(out1.par_chunks_mut(group * n))
            .zip(q0.par_chunks(group * n).zip(q1.par_chunks(group * n)))
            .zip(workers.par_chunks_mut(worker_words))
            .enumerate()
            .try_for_each(|(w, (((o0, o1), (x0, x1)), buf))| {
                let buf = &mut buf[..n];
                for (k, ((o0, o1), (x0, x1))) in o0
                    .chunks_exact_mut(n)
                    .zip(o1.chunks_exact_mut(n))
                    .zip(x0.chunks_exact(n).zip(x1.chunks_exact(n)))
                    .enumerate()
                {
                    let i = w * group + k;
                    let m = &self.q_moduli()[i];
                    let (pinv, pinv_s) = pre.p_inv[i];
                    let table = &self.q_tables()[i];
                    pre.mod_down.convert_scaled_to(n, p0, i, buf);
                    table.forward(buf).map_err(|_| EvalError::Representation)?;
                    for ((o, x), e) in o0.iter_mut().zip(x0).zip(buf.iter()) {
                        *o = m.add(*o, m.mul_shoup(m.sub(*x, *e), pinv, pinv_s));
                    }
                    pre.mod_down.convert_scaled_to(n, p1, i, buf);
                    table.forward(buf).map_err(|_| EvalError::Representation)?;
                    match second {
                        SecondOutput::Add => {
                            for ((o, x), e) in o1.iter_mut().zip(x1).zip(buf.iter()) {
                                *o = m.add(*o, m.mul_shoup(m.sub(*x, *e), pinv, pinv_s));
                            }
                        }
                        SecondOutput::Set => {
                            for ((o, x), e) in o1.iter_mut().zip(x1).zip(buf.iter()) {
                                *o = m.mul_shoup(m.sub(*x, *e), pinv, pinv_s);
                            }
                        }
                    }
                }
                Ok(())
            })
    }
}
