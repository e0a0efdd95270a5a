//! The geometric-product neural network (GNN): the one plaintext reference of the model that
//! clifhe evaluates under encryption (docs/architecture.md §7), its training, its model file, metrics
//! and a logistic-regression baseline.
//!
//! # The model
//!
//! Input: the 8 scan features of a volume as a Cl(3,0) multivector x (basis
//! [1, e1, e2, e3, e12, e13, e23, e123]), standardised per component with the training set's mean
//! and standard deviation: z = (x - mu) / sigma.
//!
//! Topology 1 -> 16 -> 8 -> C (C = `classes`; 3 for the phantom demo, 2 for binary tasks).
//! A hidden layer l with m_l weights maps one multivector to one multivector:
//!
//! ```text
//! y_j = W_j z + b_j                        (geometric product, j = 1..m_l)
//! act(y)_k = y_k + a_{l,k} y_k^2           (component-wise, a_l learned per layer and blade)
//! h = (1/m_l) sum_j act(y_j)               (mean aggregation)
//! ```
//!
//! The output layer has C weights; the score of class c is the scalar part <W_c h + b_c>_0.
//! Softmax over the scores gives probabilities (plaintext only; the encrypted path returns scores).
//!
//! ## Why a nonlinearity
//!
//! The geometric product is bilinear, so with a plaintext weight `W z` is a *linear* map of z
//! (an 8x8 matrix, [`clifhe_core::multivector::left_mul_matrix`]). A stack of such layers with
//! mean aggregation is one affine map of the input: 16 + 8 + 3 products would collapse to a
//! logistic regression on the 8 features. The quadratic activation makes each hidden layer a
//! degree-2 polynomial, the network a degree-4 polynomial of the features, and it is exactly
//! computable under CKKS (additions and products only).
//!
//! ## Cost under encryption (see [`InferencePlan`])
//!
//! `act(y_j) / m = y_j o v_j` with `v_j = (1 + a o y_j) / m` (o: component-wise product), and
//! v_j is itself an affine map of z (`diag(a/m) M(W_j) z + (1 + a o b_j)/m`). So a hidden layer is
//!
//! * level 1: 2 m_l plaintext 8x8 maps in parallel (y_j and v_j; each is 64 scalar multiply-adds
//!   in the blade-major layout, one rescale),
//! * level 2: h_k = sum_j y_{j,k} v_{j,k}: 8 m_l ciphertext tensor products summed per blade,
//!   then **8 relinearizations** (lazy: one per output blade, not per product) and one rescale.
//!
//! The output layer needs only the scalar row of each W_c, which is linear in the last hidden
//! layer's output, so it folds into that layer's quadratic form ([`InferencePlan::forms`]).
//! With the normalisation folded into the first layer's maps (the maps are 8x8 matrices anyway),
//! the depth is 2 + 2 = **4 levels** ([`GnnModel::depth`]). If an evaluator only offers products
//! with multivector weights (not general 8x8 maps), the normalisation costs one extra level as a
//! per-blade constant multiply, and v_j is a geometric product only when the 8 activation
//! coefficients of the layer are equal ([`AffineMap::as_geometric_product`] says which).
//!
//! Ciphertext-ciphertext products as the plan states them: layer 1: 16 x 8 = 128, layer 2:
//! 8 x 8 = 64. The evaluator ([`encrypted`]) expands each layer into one quadratic form per
//! output: 36 tensor products shared by all outputs, 8 relinearizations for layer 1 and C for
//! the last (blade-major), or one relinearization per layer in the block layout (the latency
//! path for at most N/16 / C patients, [`blocks`]).
//!
//! ## Bounded values and circuit privacy
//!
//! CKKS needs values in a known range. Training penalises pre-activations, hidden outputs and
//! scores beyond [`TrainConfig::range_bound`] and the model file records the largest magnitude
//! seen on the training set ([`GnnModel::max_abs_intermediate`]) and a public input box
//! ([`InputBox`]). Over that box, [`noise`] proves bounds on every intermediate and on the
//! evaluation noise of the scores, which size the output flood of [`crate::privacy`];
//! [`encrypted::Schedule::circuit_private`] picks levels and scales so that the flood stays far
//! below the scores' gaps.

#![allow(clippy::needless_range_loop)] // fixed 8-blade index arithmetic reads clearer than zipped iterators

mod baseline;
pub mod blocks;
pub mod encrypted;
pub mod equivariant;
pub mod equivariant_blocks;
pub mod equivariant_encrypted;
pub mod equivariant_model;
pub mod equivariant_policy;
pub mod equivariant_train;
mod error;
mod lbfgs;
mod metrics;
mod model;
pub mod noise;
mod plan;
mod train;

pub use baseline::{ChannelLogisticRegression, LogisticRegression};
pub use error::GnnError;
pub use metrics::{accuracy, balanced_accuracy, confusion_matrix, roc_auc, roc_curve, roc_inputs, Metrics};
pub use model::{
    GnnModel, HiddenLayer, InputBox, Normalisation, OutputLayer, DEFAULT_BOX_STDS, FORMAT_VERSION, OLDEST_READABLE_FORMAT_VERSION,
};
pub use plan::{AffineMap, InferencePlan, InputEncoding, QuadraticForm, QuadraticLayerPlan};
pub use train::{loss_and_gradient, train, TrainConfig, TrainReport};
