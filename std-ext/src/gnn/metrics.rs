//! Classification metrics. On imbalanced data (AdrenalMNIST3D: 23% positives) plain accuracy
//! rewards always answering the majority class, so AUC and balanced accuracy are the figures
//! that matter.

use super::error::GnnError;
use super::model::{argmax, softmax};

/// Fraction of predictions equal to the label (0 for empty input).
pub fn accuracy(pred: &[usize], labels: &[usize]) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len() as f64
}

/// `m[true][predicted]` counts; labels or predictions >= classes are ignored.
pub fn confusion_matrix(pred: &[usize], labels: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0usize; classes]; classes];
    for (&p, &l) in pred.iter().zip(labels) {
        if p < classes && l < classes {
            m[l][p] += 1;
        }
    }
    m
}

/// Mean per-class recall over the classes present in `labels`.
pub fn balanced_accuracy(pred: &[usize], labels: &[usize], classes: usize) -> f64 {
    let m = confusion_matrix(pred, labels, classes);
    let recalls: Vec<f64> = m
        .iter()
        .enumerate()
        .filter_map(|(c, row)| {
            let n: usize = row.iter().sum();
            (n > 0).then(|| row[c] as f64 / n as f64)
        })
        .collect();
    if recalls.is_empty() {
        0.0
    } else {
        recalls.iter().sum::<f64>() / recalls.len() as f64
    }
}

/// The ROC curve of `scores` against `positive`: (false positive rate, true positive rate) from
/// (0, 0) to (1, 1), one point per distinct score taken as the threshold (from the highest down;
/// tied scores move together, so the trapezoidal area under these points is [`roc_auc`]). None
/// in the same cases as [`roc_auc`].
pub fn roc_curve(scores: &[f64], positive: &[bool]) -> Option<Vec<(f64, f64)>> {
    if scores.len() != positive.len() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let npos = positive.iter().filter(|&&p| p).count();
    let nneg = positive.len() - npos;
    if npos == 0 || nneg == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            if positive[k] {
                tp += 1;
            } else {
                fp += 1;
            }
        }
        points.push((fp as f64 / nneg as f64, tp as f64 / npos as f64));
        i = j + 1;
    }
    Some(points)
}

/// ROC AUC = P(score of a random positive > score of a random negative), ties counting 1/2
/// (Mann-Whitney U with average ranks): the trapezoidal area under [`roc_curve`], whose tied
/// scores move together. None when either class is absent or a score is NaN.
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let curve = roc_curve(scores, positive)?;
    Some(curve.windows(2).map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0).sum())
}

/// What an ROC curve ranks, per curve: (positive class, one score per sample). Two classes: one
/// curve of score_1 - score_0 for class 1; more: one one-vs-rest curve per class of its softmax
/// probability. [`Metrics::auc`] and the demo's report both read these.
pub fn roc_inputs(scores: &[Vec<f64>], classes: usize) -> Vec<(usize, Vec<f64>)> {
    if classes == 2 {
        vec![(
            1,
            scores
                .iter()
                .map(|s| s.get(1).copied().unwrap_or(f64::NAN) - s.first().copied().unwrap_or(f64::NAN))
                .collect(),
        )]
    } else {
        let probs: Vec<Vec<f64>> = scores.iter().map(|s| softmax(s)).collect();
        (0..classes)
            .map(|c| (c, probs.iter().map(|p| p.get(c).copied().unwrap_or(f64::NAN)).collect()))
            .collect()
    }
}

/// The figures reported for a model on a labelled set.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    /// Binary: AUC of score_1 - score_0; more classes: one-vs-rest macro AUC of the softmax.
    pub auc: Option<f64>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

impl Metrics {
    /// From per-sample class scores (logits; the argmax is the prediction).
    pub fn from_scores(scores: &[Vec<f64>], labels: &[usize], classes: usize) -> Result<Self, GnnError> {
        if scores.len() != labels.len() || scores.iter().any(|s| s.len() != classes) {
            return Err(GnnError::InvalidInput("scores and labels disagree in count or class number".into()));
        }
        let pred: Vec<usize> = scores.iter().map(|s| argmax(s)).collect();
        let aucs: Vec<f64> = roc_inputs(scores, classes)
            .iter()
            .filter_map(|(c, s)| roc_auc(s, &labels.iter().map(|l| l == c).collect::<Vec<_>>()))
            .collect();
        let auc = (!aucs.is_empty()).then(|| aucs.iter().sum::<f64>() / aucs.len() as f64);
        Ok(Self {
            accuracy: accuracy(&pred, labels),
            balanced_accuracy: balanced_accuracy(&pred, labels, classes),
            auc,
            confusion: confusion_matrix(&pred, labels, classes),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_auc_is_the_area_under_the_curve_and_the_mann_whitney_statistic() {
        let scores = [0.9, 0.8, 0.8, 0.7, 0.5, 0.5, 0.5, 0.3, 0.2, 0.1];
        let positive = [true, true, false, true, false, true, false, false, true, false];
        let curve = roc_curve(&scores, &positive).unwrap();
        assert_eq!(curve.first(), Some(&(0.0, 0.0)));
        assert_eq!(curve.last(), Some(&(1.0, 1.0)));
        assert_eq!(curve.len(), 8, "one point per distinct score plus the origin");
        assert!(curve.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1));
        // Mann-Whitney U with average ranks, counted pair by pair (ties 1/2).
        let mut u = 0.0;
        let mut pairs = 0.0;
        for (a, &pa) in scores.iter().zip(&positive) {
            for (b, &pb) in scores.iter().zip(&positive) {
                if pa && !pb {
                    pairs += 1.0;
                    u += if a > b {
                        1.0
                    } else if a == b {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        let auc = roc_auc(&scores, &positive).unwrap();
        assert!((u / pairs - auc).abs() < 1e-12, "{} vs {auc}", u / pairs);
        assert!(roc_curve(&scores, &[true; 10]).is_none());
        assert!(roc_curve(&[f64::NAN, 1.0], &[true, false]).is_none());
    }
}
