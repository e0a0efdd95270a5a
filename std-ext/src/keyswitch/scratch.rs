//! The key-switching scratch: every buffer a switch needs, sized once for a context's top
//! level and a number of workers, and the context's pool of them (tfhe-rs's `*_scratch`
//! discipline: the hot path allocates nothing).

use crate::context::EvalContext;
use crate::error::EvalError;
use clifhe_core::ntt::NttPath;

/// Buffers for key switching under one [`EvalContext`], sized for its top level and a number
/// of workers (the rayon threads that run a switch). Reused across calls; see
/// [`KeySwitchScratch::words`] for the size.
pub struct KeySwitchScratch {
    params_id: u16,
    n: usize,
    /// The input in coefficient form, each digit's limbs scaled for the basis conversion.
    pub(super) coeff: Vec<u64>,
    /// The two inner products over Q_l * P (NTT form), before ModDown.
    pub(super) acc: Vec<u64>,
    /// Per worker: the digit extensions of one limb, the regenerated key halves of a compact
    /// key, and one limb for ModDown.
    pub(super) workers: Vec<u64>,
    pub(super) worker_words: usize,
}

impl core::fmt::Debug for KeySwitchScratch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeySwitchScratch")
            .field("params_id", &self.params_id)
            .field("words", &(self.coeff.len() + self.acc.len() + self.workers.len()))
            .field("workers", &self.worker_count())
            .finish()
    }
}

impl KeySwitchScratch {
    /// Scratch for `ectx` with one worker buffer per thread of the current rayon pool.
    pub fn new(ectx: &EvalContext) -> Self {
        Self::with_workers(ectx, rayon::current_num_threads())
    }

    /// Scratch for `ectx` with `workers` worker buffers (at least one). More workers than
    /// threads cost memory only; fewer limit the parallelism of a switch.
    pub fn with_workers(ectx: &EvalContext, workers: usize) -> Self {
        let (n, nq, limbs, worker_words) = Self::shape(ectx);
        let workers = workers.max(1);
        Self {
            params_id: ectx.params().id(),
            n,
            coeff: vec![0; nq * n],
            acc: vec![0; 2 * limbs * n],
            workers: vec![0; workers * worker_words],
            worker_words,
        }
    }

    /// The size in 64-bit words of a scratch for `ectx` with `workers` workers:
    /// (|Q| + 2 |Q P|) N for the whole switch plus (2 digits + 1) N per worker.
    pub fn words(ectx: &EvalContext, workers: usize) -> usize {
        let (n, nq, limbs, worker_words) = Self::shape(ectx);
        nq * n + 2 * limbs * n + workers.max(1) * worker_words
    }

    fn shape(ectx: &EvalContext) -> (usize, usize, usize, usize) {
        let n = ectx.n();
        let nq = ectx.params().q().len();
        let limbs = nq + ectx.params().p().len();
        (n, nq, limbs, (2 * ectx.digits() + 1) * n)
    }

    /// Number of worker buffers.
    pub fn worker_count(&self) -> usize {
        self.workers.len() / self.worker_words.max(1)
    }

    pub(super) fn check(&self, ectx: &EvalContext) -> Result<(), EvalError> {
        if self.params_id != ectx.params().id() || self.n != ectx.n() {
            return Err(EvalError::Invalid("key-switching scratch was sized for another parameter set"));
        }
        Ok(())
    }
}

/// Runs `f(first limb, out0 group, out1 group, worker buffer)` on contiguous groups of the
/// limbs of `out0` and `out1` (limb-major, `n` words per limb, the first being limb `first`),
/// one group per worker buffer of `workers`, the groups side by side (`rayon::join`).
///
/// The groups are cut so that their summed `cost(limb)` is even, not their limb counts: a
/// limb's work depends on its prime (an NTT modulo a prime below 2^50 runs on AVX-512 IFMA at
/// well under half the time of a larger prime's, see [`LimbCost`]) and on how many
/// digits it converts, and bootstrap-n16 orders its chain by size, so equal counts put most
/// small primes on one worker and the large ones on the other. Measured on a 2-thread rotation
/// at its top level (28 + 6 limbs), the two workers' times: 60 and 77 ms for the inner
/// products and 24 and 31 ms for ModDown with equal counts, 83 and 77 ms and 32 and 32 ms with
/// this cut (in a slower minute). No allocation: the recursion splits the slices.
pub(super) fn for_each_limb_group<F>(
    n: usize,
    first: usize,
    (out0, out1): (&mut [u64], &mut [u64]),
    (workers, worker_words): (&mut [u64], usize),
    cost: &(dyn Fn(usize) -> u64 + Sync),
    f: &F,
) -> Result<(), EvalError>
where
    F: Fn(usize, &mut [u64], &mut [u64], &mut [u64]) -> Result<(), EvalError> + Sync,
{
    let limbs = out0.len() / n.max(1);
    let w = workers.len() / worker_words.max(1);
    if w == 0 {
        return Err(EvalError::Invalid("key-switching scratch without a worker buffer"));
    }
    if w == 1 || limbs <= 1 {
        return f(first, out0, out1, &mut workers[..worker_words]);
    }
    let w_lo = w / 2;
    let total: u64 = (first..first + limbs).map(cost).sum();
    // The cut whose left part's cost is nearest w_lo / w of the total, keeping a limb on each side.
    let target = total * w_lo as u64 / w as u64;
    let (mut cut, mut best, mut prefix) = (1, u64::MAX, 0u64);
    for m in 1..limbs {
        prefix += cost(first + m - 1);
        let miss = prefix.abs_diff(target);
        if miss < best {
            (cut, best) = (m, miss);
        }
    }
    let (a0, b0) = out0.split_at_mut(cut * n);
    let (a1, b1) = out1.split_at_mut(cut * n);
    let (wa, wb) = workers.split_at_mut(w_lo * worker_words);
    let (x, y) = rayon::join(
        || for_each_limb_group(n, first, (a0, a1), (wa, worker_words), cost, f),
        || for_each_limb_group(n, first + cut, (b0, b1), (wb, worker_words), cost, f),
    );
    x.and(y)
}

/// The work on one limb modulo `q` on this CPU, in the units of [`for_each_limb_group`]'s
/// callers: thirty-seconds of a scalar transform of a large prime. A transform costs four
/// times `NttPath::relative_cost`; on the scalar path one digit's inner product with the key
/// 4 (as much again to regenerate a compact key's half, or to gather a hoisted digit), and a
/// conversion into the limb 2 per source prime. On AVX-512 IFMA (`clifhe_core::lincomb`) a
/// conversion takes about a third of that for a prime below 2^50 and half for a larger one
/// (the conversion benchmarks), the inner product half and three quarters. On the Zen 4
/// machine of BENCHMARKS.md the two workers of a 2-thread sparse bootstrap at N = 2^16 still
/// differ by about 15% (the small primes' group longer, about 0.12 s per bootstrap); moving
/// these weights by a half either way did not close it.
#[derive(Clone, Copy, Debug)]
pub(super) struct LimbCost {
    path: NttPath,
}

impl LimbCost {
    pub(super) fn of(q: u64) -> Self {
        Self {
            path: clifhe_core::ntt::ntt_path(q),
        }
    }

    /// A forward or inverse NTT.
    pub(super) fn ntt(self) -> u64 {
        4 * self.path.relative_cost()
    }

    /// One digit's inner product with the key.
    pub(super) fn inner_product_digit(self) -> u64 {
        match self.path {
            NttPath::IfmaNarrow => 2,
            NttPath::IfmaWide => 3,
            _ => 4,
        }
    }

    /// Regenerating one digit's half of a compact key (ChaCha20 and rejection sampling).
    pub(super) fn key_expansion_digit(self) -> u64 {
        4
    }

    /// Gathering one digit of a hoisted decomposition (a copy or a Galois permutation).
    pub(super) fn gather_digit(self) -> u64 {
        4
    }

    /// One basis conversion into this limb from `sources` primes.
    pub(super) fn conversion(self, sources: usize) -> u64 {
        let sources = sources as u64;
        match self.path {
            NttPath::IfmaNarrow => (2 * sources).div_ceil(3),
            NttPath::IfmaWide => sources,
            _ => 2 * sources,
        }
    }
}

impl EvalContext {
    /// Runs `f` with a key-switching scratch from this context's pool (made on first use,
    /// returned afterwards), so the owned-output operations reuse their buffers across calls.
    pub fn with_switch_scratch<R>(&self, f: impl FnOnce(&mut KeySwitchScratch) -> R) -> R {
        let mut scratch = self.switch_pool().pop().unwrap_or_else(|| KeySwitchScratch::new(self));
        let r = f(&mut scratch);
        let mut pool = self.switch_pool();
        // Keep at most one scratch per thread that ran a switch concurrently.
        if pool.len() < rayon::current_num_threads().max(2) {
            pool.push(scratch);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// (first limb, limbs) of every group `for_each_limb_group` makes.
    fn groups(limbs: usize, workers: usize, cost: &(dyn Fn(usize) -> u64 + Sync)) -> Vec<(usize, usize)> {
        let n = 4;
        let (mut o0, mut o1) = (vec![0u64; limbs * n], vec![0u64; limbs * n]);
        let mut w = vec![0u64; workers * 3];
        let seen = Mutex::new(Vec::new());
        let f = |first: usize, a: &mut [u64], b: &mut [u64], buf: &mut [u64]| -> Result<(), EvalError> {
            assert_eq!((a.len(), b.len(), buf.len()), (b.len(), a.len(), 3));
            a.iter_mut().chain(b.iter_mut()).for_each(|x| *x += 1);
            seen.lock().map_err(|_| EvalError::Invalid("poisoned"))?.push((first, a.len() / n));
            Ok(())
        };
        for_each_limb_group(n, 5, (&mut o0, &mut o1), (&mut w, 3), cost, &f).unwrap();
        assert!(o0.iter().chain(&o1).all(|&x| x == 1), "every limb exactly once");
        let mut g = seen.into_inner().unwrap();
        g.sort_unstable();
        g
    }

    #[test]
    fn limb_groups_cover_every_limb_once_and_balance_the_cost() {
        // Equal costs: as even as the counts allow, one group per worker, never an empty one.
        assert_eq!(groups(10, 2, &|_| 1), vec![(5, 5), (10, 5)]);
        assert_eq!(groups(3, 8, &|_| 1).len(), 3);
        assert_eq!(groups(7, 1, &|_| 1), vec![(5, 7)]);
        // bootstrap-n16's shape: cheap limbs first. Equal counts would give the second worker
        // 2.7 times the first's work (112 against 42); the cut follows the cost instead.
        let cost = |i: usize| if i < 5 + 14 { 3 } else { 8 };
        let g = groups(28, 2, &cost);
        let work = |(first, len): (usize, usize)| (first..first + len).map(cost).sum::<u64>();
        let (a, b) = (work(g[0]), work(g[1]));
        assert!(a.abs_diff(b) <= 8, "{g:?}: {a} against {b}");
        // Four workers: four groups of near-equal work.
        let g = groups(28, 4, &cost);
        assert_eq!(g.len(), 4);
        let w: Vec<u64> = g.iter().map(|&x| work(x)).collect();
        assert!(w.iter().max().unwrap() - w.iter().min().unwrap() <= 16, "{w:?}");
        // No worker buffer is an error, not a panic.
        let f = |_: usize, _: &mut [u64], _: &mut [u64], _: &mut [u64]| -> Result<(), EvalError> { Ok(()) };
        assert!(for_each_limb_group(4, 0, (&mut [0; 8], &mut [0; 8]), (&mut [], 3), &|_| 1, &f).is_err());
    }
}
