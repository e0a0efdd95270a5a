//! The model a vendor serves: either kind of model file, behind one type, so that the profile
//! ([`super::profile`]), the evaluation ([`super::vendor::infer`]) and the manifest treat both
//! alike and every caller (the command line, the service, a library user) dispatches once.

use crate::gnn::equivariant_model::{EquivariantModel, EQUIVARIANT_KIND};
use crate::gnn::{GnnError, GnnModel};
use crate::preprocess::Pipeline;

/// A model the vendor evaluates on encrypted batches.
// One per process (loaded once, shared behind an `Arc` by the service): the size difference
// between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum VendorModel {
    /// The 8-feature geometric-product network (box-encoded features, 8 ciphertexts a batch).
    Gnn(GnnModel),
    /// The rotation-invariant network on channel multivectors (`gnn::equivariant`): one
    /// ciphertext per present blade of each channel.
    Equivariant(EquivariantModel),
}

impl VendorModel {
    /// Parses and validates a model file of either kind (by its `kind` field: an equivariant
    /// file says so, a GNN file has none).
    ///
    /// # Errors
    ///
    /// As [`GnnModel::from_json`] or [`EquivariantModel::from_json`].
    pub fn from_json(text: &str) -> Result<Self, GnnError> {
        if is_equivariant(text) {
            Ok(Self::Equivariant(EquivariantModel::from_json(text)?))
        } else {
            Ok(Self::Gnn(GnnModel::from_json(text)?))
        }
    }

    /// Classes the model scores.
    #[must_use]
    pub fn classes(&self) -> usize {
        self.label_names().len()
    }

    /// Class labels, index = class.
    #[must_use]
    pub fn label_names(&self) -> &[String] {
        match self {
            Self::Gnn(m) => m.label_names(),
            Self::Equivariant(m) => &m.class_names,
        }
    }

    /// The scan preprocessing the model records, if any.
    #[must_use]
    pub fn preprocessing(&self) -> Option<&Pipeline> {
        match self {
            Self::Gnn(m) => m.preprocessing(),
            Self::Equivariant(m) => m.preprocessing.as_ref(),
        }
    }

    /// `"gnn"` or `"equivariant"`, as in messages and the service's model description.
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Gnn(_) => "gnn",
            Self::Equivariant(_) => EQUIVARIANT_KIND,
        }
    }
}

impl From<GnnModel> for VendorModel {
    fn from(m: GnnModel) -> Self {
        Self::Gnn(m)
    }
}

impl From<EquivariantModel> for VendorModel {
    fn from(m: EquivariantModel) -> Self {
        Self::Equivariant(m)
    }
}

/// Whether a model file's text declares the equivariant kind (a GNN file has no `kind`).
#[must_use]
pub fn is_equivariant(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("kind").and_then(serde_json::Value::as_str).map(str::to_string))
        .as_deref()
        == Some(EQUIVARIANT_KIND)
}
