//! The key-switching scratch: every buffer a switch needs, sized once for a context's top
//! level and a number of workers, and the context's pool of them (tfhe-rs's `*_scratch`
//! discipline: the hot path allocates nothing).

use crate::context::EvalContext;
use crate::error::EvalError;

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

/// `groups` contiguous groups of limbs covering `limbs` limbs, as even as possible.
pub(super) fn group_size(limbs: usize, workers: usize) -> usize {
    limbs.div_ceil(workers.max(1).min(limbs.max(1)))
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
