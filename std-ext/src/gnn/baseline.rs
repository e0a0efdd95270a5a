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
        let zs: Vec<Vec<f64>> = xs.iter().map(|x| normalisation.apply(x).to_vec()).collect();
        let cw = class_weights(ys, classes, class_weighting);
        let p = fit_softmax_regression(&zs, 8, ys, classes, l2, &cw, iterations);
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

/// Logistic regression on the equivariant model's input: every coefficient of every channel
/// (K x 8 numbers per scan), standardised. The baseline the equivariant model must beat on the
/// same inputs; it is not rotation invariant (it reads the vector components themselves).
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelLogisticRegression {
    /// Per coefficient (channel-major), the training mean and standard deviation (1 where the
    /// coefficient is constant).
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// Per class, a weight per coefficient.
    pub weights: Vec<Vec<f64>>,
    pub biases: Vec<f64>,
}

impl ChannelLogisticRegression {
    /// As [`LogisticRegression::train`], on K-channel samples.
    ///
    /// # Errors
    ///
    /// [`GnnError::InvalidInput`] for no samples, unequal channel counts, labels out of range or
    /// non-finite coefficients.
    pub fn train(
        xs: &[Vec<Multivector>],
        ys: &[usize],
        classes: usize,
        l2: f64,
        class_weighting: bool,
        iterations: usize,
    ) -> Result<Self, GnnError> {
        let k = xs.first().map_or(0, Vec::len);
        if k == 0 || xs.len() != ys.len() || classes < 2 || ys.iter().any(|&y| y >= classes) || xs.iter().any(|x| x.len() != k) {
            return Err(GnnError::InvalidInput(
                "logistic regression needs samples of equal, nonzero channel counts and labels < classes >= 2".into(),
            ));
        }
        let flat: Vec<Vec<f64>> = xs.iter().map(|x| x.iter().flat_map(Multivector::coeffs).collect()).collect();
        if flat.iter().flatten().any(|v| !v.is_finite()) {
            return Err(GnnError::InvalidInput("non-finite feature".into()));
        }
        let (d, n) = (8 * k, xs.len() as f64);
        let mean: Vec<f64> = (0..d).map(|j| flat.iter().map(|f| f[j]).sum::<f64>() / n).collect();
        let std: Vec<f64> = (0..d)
            .map(|j| {
                let s = (flat.iter().map(|f| (f[j] - mean[j]).powi(2)).sum::<f64>() / n).sqrt();
                if s > 1e-12 * (1.0 + mean[j].abs()) {
                    s
                } else {
                    1.0
                }
            })
            .collect();
        let zs: Vec<Vec<f64>> = flat.iter().map(|f| (0..d).map(|j| (f[j] - mean[j]) / std[j]).collect()).collect();
        let cw = class_weights(ys, classes, class_weighting);
        let p = fit_softmax_regression(&zs, d, ys, classes, l2, &cw, iterations);
        Ok(Self {
            mean,
            std,
            weights: (0..classes).map(|c| p[(d + 1) * c..(d + 1) * c + d].to_vec()).collect(),
            biases: (0..classes).map(|c| p[(d + 1) * c + d]).collect(),
        })
    }

    /// Class scores of one sample (empty for the wrong channel count).
    #[must_use]
    pub fn scores(&self, x: &[Multivector]) -> Vec<f64> {
        if 8 * x.len() != self.mean.len() {
            return Vec::new();
        }
        let z: Vec<f64> = x
            .iter()
            .flat_map(Multivector::coeffs)
            .zip(self.mean.iter().zip(&self.std))
            .map(|(v, (m, s))| (v - m) / s)
            .collect();
        self.weights
            .iter()
            .zip(&self.biases)
            .map(|(w, b)| w.iter().zip(&z).map(|(a, v)| a * v).sum::<f64>() + b)
            .collect()
    }
}

/// Mean class-weighted cross-entropy of softmax regression on `d` standardised features plus
/// (l2/2)|w|^2 (not on the biases), minimised by full-batch Adam for `iterations` steps (the
/// problem is convex). Parameters class-major: `d` weights, then the bias.
fn fit_softmax_regression(zs: &[Vec<f64>], d: usize, ys: &[usize], classes: usize, l2: f64, cw: &[f64], iterations: usize) -> Vec<f64> {
    let stride = d + 1;
    let np = stride * classes;
    let mut p = vec![0.0; np];
    let (mut m1, mut m2) = (vec![0.0; np], vec![0.0; np]);
    let (lr, b1, b2, eps) = (0.05, 0.9f64, 0.999f64, 1e-8);
    let n = zs.len() as f64;
    for t in 1..=iterations {
        let mut g = vec![0.0; np];
        for (z, &y) in zs.iter().zip(ys) {
            let s: Vec<f64> = (0..classes)
                .map(|c| (0..d).map(|k| p[stride * c + k] * z[k]).sum::<f64>() + p[stride * c + d])
                .collect();
            let pr = softmax(&s);
            for c in 0..classes {
                let dl = cw[y] * (pr[c] - if c == y { 1.0 } else { 0.0 }) / n;
                for k in 0..d {
                    g[stride * c + k] += dl * z[k];
                }
                g[stride * c + d] += dl;
            }
        }
        let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
        for i in 0..np {
            if i % stride != d {
                g[i] += l2 * p[i];
            }
            m1[i] = b1 * m1[i] + (1.0 - b1) * g[i];
            m2[i] = b2 * m2[i] + (1.0 - b2) * g[i] * g[i];
            p[i] -= lr * (m1[i] / c1) / ((m2[i] / c2).sqrt() + eps);
        }
    }
    p
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Two channels per sample; the class is the sign of channel 1's e2 coefficient (plus noise
    /// elsewhere): a linear model on the coefficients separates it, and reads the right one.
    #[test]
    fn channel_regression_learns_a_linear_rule_and_refuses_bad_input() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for i in 0..200 {
            let y = i % 2;
            let a = Multivector::new(core::array::from_fn(|_| next()));
            let mut b: [f64; 8] = core::array::from_fn(|_| next());
            b[2] = if y == 1 { 0.2 + b[2].abs() } else { -0.2 - b[2].abs() };
            xs.push(vec![a, Multivector::new(b)]);
            ys.push(y);
        }
        let lr = ChannelLogisticRegression::train(&xs[..150], &ys[..150], 2, 1e-3, true, 500).unwrap();
        let right = xs[150..]
            .iter()
            .zip(&ys[150..])
            .filter(|(x, &y)| {
                let s = lr.scores(x);
                usize::from(s[1] > s[0]) == y
            })
            .count();
        assert_eq!(right, 50);
        // The weight on the deciding coefficient (channel 1, e2) dominates.
        let w = &lr.weights[1];
        let largest = (0..16).max_by(|&i, &j| w[i].abs().total_cmp(&w[j].abs())).unwrap();
        assert_eq!(largest, 8 + 2, "{w:?}");
        assert!(lr.scores(&xs[0][..1]).is_empty());
        assert!(ChannelLogisticRegression::train(&xs, &ys[..199], 2, 1e-3, true, 10).is_err());
        assert!(ChannelLogisticRegression::train(&xs, &ys, 1, 1e-3, true, 10).is_err());
        let mut ragged = xs.clone();
        ragged[5].pop();
        assert!(ChannelLogisticRegression::train(&ragged, &ys, 2, 1e-3, true, 10).is_err());
        let mut nan = xs.clone();
        nan[7][0] = Multivector::new([f64::NAN; 8]);
        assert!(ChannelLogisticRegression::train(&nan, &ys, 2, 1e-3, true, 10).is_err());
    }
}
