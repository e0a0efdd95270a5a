//! Limited-memory BFGS (Nocedal and Wright, "Numerical Optimization", 2nd ed., Algorithm 7.4:
//! the two-loop recursion; Algorithm 3.1: backtracking to the Armijo condition) for the
//! full-batch training of the equivariant network.
//!
//! Why not only Adam: the equivariant model has about 1 800 parameters and a smooth objective
//! on about a thousand scans. Adam's mini-batch noise stops it about one AUC point short of the
//! regularised optimum within the epochs a test can afford, and full-batch Adam needs
//! thousands of epochs to close the gap; L-BFGS gets there in a few hundred gradient
//! evaluations (BENCHMARKS.md, "The equivariant model"). Deterministic: no randomness, a fixed
//! order of every sum.

use std::collections::VecDeque;

/// Sufficient decrease constant of the Armijo condition (Nocedal and Wright's c1).
const ARMIJO: f64 = 1e-4;
/// Halvings of the step before the line search gives up.
const MAX_HALVINGS: usize = 40;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The optimizer's memory: the last `memory` steps `s` and gradient changes `y`.
#[derive(Clone, Debug)]
pub struct Lbfgs {
    memory: usize,
    pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)>,
}

impl Lbfgs {
    /// An optimizer keeping `memory` correction pairs (at least 1).
    #[must_use]
    pub fn new(memory: usize) -> Self {
        Self {
            memory: memory.max(1),
            pairs: VecDeque::new(),
        }
    }

    /// `-H g` by the two-loop recursion, with `H_0 = (s.y / y.y) I` from the newest pair.
    fn direction(&self, g: &[f64]) -> Vec<f64> {
        let mut q = g.to_vec();
        let mut alpha = vec![0.0; self.pairs.len()];
        for (a, (s, y, rho)) in alpha.iter_mut().zip(&self.pairs).rev() {
            *a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= *a * yi);
        }
        let gamma = self.pairs.back().map_or(1.0, |(s, y, _)| dot(s, y) / dot(y, y));
        q.iter_mut().for_each(|v| *v *= gamma);
        for (a, (s, y, rho)) in alpha.iter().zip(&self.pairs) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(qi, si)| *qi += si * (a - b));
        }
        q.iter_mut().for_each(|v| *v = -*v);
        q
    }

    /// One iteration from `x`, where the objective is `f` with gradient `g`; `eval` gives the
    /// objective and gradient at a point. Moves `x` and returns the new value and gradient, or
    /// `None` (leaving `x` where it was) when no step along the search direction decreases the
    /// objective: a stationary point, as far as the line search can tell.
    pub fn step(&mut self, x: &mut [f64], f: f64, g: &[f64], mut eval: impl FnMut(&[f64]) -> (f64, Vec<f64>)) -> Option<(f64, Vec<f64>)> {
        let mut d = self.direction(g);
        let mut slope = dot(g, &d);
        // NaN counts as "not descending" too.
        let descends = |slope: f64| slope.is_finite() && slope < 0.0;
        if !descends(slope) {
            // Not a descent direction (curvature information gone stale): restart from -g.
            self.pairs.clear();
            d = g.iter().map(|v| -v).collect();
            slope = -dot(g, g);
            if !descends(slope) {
                return None;
            }
        }
        // The first step has no curvature scale: at most unit length.
        let mut t = if self.pairs.is_empty() {
            (1.0 / dot(&d, &d).sqrt()).min(1.0)
        } else {
            1.0
        };
        let mut trial = vec![0.0; x.len()];
        for _ in 0..MAX_HALVINGS {
            trial.iter_mut().zip(x.iter().zip(&d)).for_each(|(p, (xi, di))| *p = xi + t * di);
            let (ft, gt) = eval(&trial);
            if ft.is_finite() && gt.iter().all(|v| v.is_finite()) && ft <= f + ARMIJO * t * slope {
                let s: Vec<f64> = trial.iter().zip(x.iter()).map(|(a, b)| a - b).collect();
                let y: Vec<f64> = gt.iter().zip(g).map(|(a, b)| a - b).collect();
                let sy = dot(&s, &y);
                // Keep the pair only with positive curvature, so H stays positive definite.
                if sy > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() {
                    if self.pairs.len() == self.memory {
                        self.pairs.pop_front();
                    }
                    self.pairs.push_back((s, y, 1.0 / sy));
                }
                x.copy_from_slice(&trial);
                return Some((ft, gt));
            }
            t *= 0.5;
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The Rosenbrock function in n dimensions and its gradient.
    fn rosenbrock(x: &[f64]) -> (f64, Vec<f64>) {
        let mut f = 0.0;
        let mut g = vec![0.0; x.len()];
        for i in 0..x.len() - 1 {
            let (a, b) = (1.0 - x[i], x[i + 1] - x[i] * x[i]);
            f += a * a + 100.0 * b * b;
            g[i] += -2.0 * a - 400.0 * x[i] * b;
            g[i + 1] += 200.0 * b;
        }
        (f, g)
    }

    #[test]
    fn minimises_rosenbrock_in_ten_dimensions() {
        let mut x = vec![-1.2; 10];
        let (mut f, mut g) = rosenbrock(&x);
        let mut opt = Lbfgs::new(8);
        let mut iterations = 0;
        while let Some((fn_, gn)) = opt.step(&mut x, f, &g, rosenbrock) {
            (f, g) = (fn_, gn);
            iterations += 1;
            if iterations == 500 || dot(&g, &g).sqrt() < 1e-10 {
                break;
            }
        }
        assert!(f < 1e-12, "f = {f} after {iterations} iterations");
        assert!(x.iter().all(|v| (v - 1.0).abs() < 1e-5), "{x:?}");
        // Gradient descent would need tens of thousands of steps here.
        assert!(iterations < 200, "{iterations} iterations");
    }

    #[test]
    fn a_stationary_point_ends_the_search() {
        let mut x = vec![1.0; 4];
        let (f, g) = rosenbrock(&x);
        assert!(Lbfgs::new(4).step(&mut x, f, &g, rosenbrock).is_none());
        assert_eq!(x, vec![1.0; 4]);
    }
}
