//! Plaintext logistic regression on the same 8 standardised features: the baseline the GNN must
//! beat (it is what the GNN would collapse to without its nonlinearity).

use clifhe_core::multivector::Multivector;

use super::error::GnnError;
use super::model::{softmax, Normalisation};
use super::train::class_weights;

/// Multinomial logistic regression: score_c = w_c . z + b_c with z the standardised features.
#[derive(Clone, Debug, PartialEq)]
pub struct LogisticRegression {
    pub normalisation: Normalisation,
    pub weights: Vec<[f64; 8]>,
    pub biases: Vec<f64>,
}

impl LogisticRegression {
    /// Minimises mean (optionally class-weighted) cross-entropy + (l2/2)|w|^2 by full-batch
    /// gradient descent with Adam; the problem is convex, so `iterations` only needs to be large
    /// enough (2000 is plenty for 8 standardised features). `l2 = 1/n` matches scikit-learn's
    /// default C = 1.
    pub fn train(
        xs: &[Multivector],
        ys: &[usize],
        classes: usize,
        l2: f64,
        class_weighting: bool,
        iterations: usize,
    ) -> Result<Self, GnnError> {
        if xs.is_empty() || xs.len() != ys.len() || classes < 2 || ys.iter().any(|&y| y >= classes) {
            return Err(GnnError::InvalidInput(
                "logistic regression needs matching samples and labels < classes >= 2".into(),
            ));
        }
        let normalisation = Normalisation::fit(xs)?;
        let zs: Vec<[f64; 8]> = xs.iter().map(|x| normalisation.apply(x)).collect();
        let cw = class_weights(ys, classes, class_weighting);
        let np = 9 * classes;
        let mut p = vec![0.0; np];
        let (mut m1, mut m2) = (vec![0.0; np], vec![0.0; np]);
        let (lr, b1, b2, eps) = (0.05, 0.9f64, 0.999f64, 1e-8);
        let n = xs.len() as f64;
        for t in 1..=iterations {
            let mut g = vec![0.0; np];
            for (z, &y) in zs.iter().zip(ys) {
                let s: Vec<f64> = (0..classes)
                    .map(|c| (0..8).map(|k| p[9 * c + k] * z[k]).sum::<f64>() + p[9 * c + 8])
                    .collect();
                let pr = softmax(&s);
                for c in 0..classes {
                    let d = cw[y] * (pr[c] - if c == y { 1.0 } else { 0.0 }) / n;
                    for k in 0..8 {
                        g[9 * c + k] += d * z[k];
                    }
                    g[9 * c + 8] += d;
                }
            }
            let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
            for i in 0..np {
                if i % 9 != 8 {
                    g[i] += l2 * p[i];
                }
                m1[i] = b1 * m1[i] + (1.0 - b1) * g[i];
                m2[i] = b2 * m2[i] + (1.0 - b2) * g[i] * g[i];
                p[i] -= lr * (m1[i] / c1) / ((m2[i] / c2).sqrt() + eps);
            }
        }
        let weights = (0..classes).map(|c| core::array::from_fn(|k| p[9 * c + k])).collect();
        let biases = (0..classes).map(|c| p[9 * c + 8]).collect();
        Ok(Self {
            normalisation,
            weights,
            biases,
        })
    }

    pub fn scores(&self, x: &Multivector) -> Vec<f64> {
        let z = self.normalisation.apply(x);
        self.weights
            .iter()
            .zip(&self.biases)
            .map(|(w, b)| w.iter().zip(&z).map(|(a, v)| a * v).sum::<f64>() + b)
            .collect()
    }

    pub fn scores_batch(&self, xs: &[Multivector]) -> Vec<Vec<f64>> {
        xs.iter().map(|x| self.scores(x)).collect()
    }
}
