//! The model a vendor serves: either kind of model file, behind one type, so that the profile
//! ([`super::profile`]), the evaluation ([`super::vendor::infer`]) and the manifest treat both
//! alike and every caller (the command line, the service, a library user) dispatches once; and
//! the model bound to what the vendor derives from it once ([`PreparedModel`]).

use super::profile::InputProfile;
use super::{BatchLayout, ProtocolError};
use crate::gnn::equivariant_blocks::BlockConstants;
use crate::gnn::equivariant_model::{EquivariantModel, EQUIVARIANT_KIND};
use crate::gnn::{GnnError, GnnModel};
use crate::preprocess::Pipeline;
use crate::privacy::MaskMemo;
use crate::Evaluator;
use clifhe_core::Params;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// What the vendor derives from its model for one preset, privacy mode and layout: the
/// profile (for an equivariant model, the outcome of a policy search) and, for the block
/// layout, the encoded weight vectors (`BlockConstants`, about 0.2 s at N = 2^15).
#[derive(Debug)]
pub struct Preparation {
    /// The model's profile.
    pub profile: InputProfile,
    /// The block layout's encoded weights (`None` for blade-major).
    pub constants: Option<BlockConstants>,
}

type PreparationKey = (u16, bool, BatchLayout);

/// A model bound to what the vendor derives from it once and reuses across batches (Lattigo's
/// rule: evaluators bound to their parameters once): its [`Preparation`] per preset, privacy
/// mode and layout, made on first use. A service worker holds one for its model; a command-line
/// call makes one per process.
#[derive(Debug)]
pub struct PreparedModel {
    model: VendorModel,
    prepared: Mutex<HashMap<PreparationKey, Arc<Preparation>>>,
    /// The sanitisation masks of the batch shapes it answered lately.
    masks: MaskMemo,
}

impl PreparedModel {
    /// Binds `model` (nothing is derived until a batch or a profile asks).
    #[must_use]
    pub fn new(model: VendorModel) -> Self {
        Self {
            model,
            prepared: Mutex::new(HashMap::new()),
            masks: MaskMemo::new(),
        }
    }

    /// The sanitisation masks encoded for its recent batch shapes (a cache: the scores are the
    /// same words without it).
    #[must_use]
    pub fn masks(&self) -> &MaskMemo {
        &self.masks
    }

    /// The model.
    #[must_use]
    pub fn model(&self) -> &VendorModel {
        &self.model
    }

    /// The model's profile on `params` in `layout` (made once per preset, mode and layout).
    ///
    /// # Errors
    ///
    /// As [`InputProfile::of_model_in`].
    pub fn profile(&self, params: &Params, circuit_private: bool, layout: BatchLayout) -> Result<InputProfile, ProtocolError> {
        Ok(self.preparation(params, circuit_private, layout, None)?.profile.clone())
    }

    /// The preparation for `ev`'s preset; the block layout's weight vectors are encoded with
    /// `ev` on first use.
    ///
    /// # Errors
    ///
    /// As [`InputProfile::of_model_in`] and `BlockConstants::new`.
    pub fn prepare(&self, ev: &Evaluator<'_>, circuit_private: bool, layout: BatchLayout) -> Result<Arc<Preparation>, ProtocolError> {
        let params = *ev.context().params();
        self.preparation(&params, circuit_private, layout, Some(ev))
    }

    fn preparation(
        &self,
        params: &Params,
        circuit_private: bool,
        layout: BatchLayout,
        ev: Option<&Evaluator<'_>>,
    ) -> Result<Arc<Preparation>, ProtocolError> {
        let key = (params.id(), circuit_private, layout);
        let cached = self.prepared.lock().ok().and_then(|m| m.get(&key).cloned());
        // A cached profile serves a profile request; a batch also needs the constants, which a
        // profile request (without an evaluator) does not make.
        if let Some(p) = cached.filter(|p| ev.is_none() || layout != BatchLayout::Blocks || p.constants.is_some()) {
            return Ok(p);
        }
        let profile = InputProfile::of_model_in(&self.model, params, circuit_private, layout)?;
        let constants = match (&self.model, layout, ev) {
            (VendorModel::Equivariant(m), BatchLayout::Blocks, Some(ev)) => {
                let domain = &profile.channels()?.domain;
                let policy = profile.channel_policy()?;
                Some(BlockConstants::new(ev, &m.net, domain, &policy).map_err(|e| ProtocolError::refused("model", e))?)
            }
            _ => None,
        };
        let p = Arc::new(Preparation { profile, constants });
        if let Ok(mut m) = self.prepared.lock() {
            m.insert(key, p.clone());
        }
        Ok(p)
    }
}

impl From<VendorModel> for PreparedModel {
    fn from(m: VendorModel) -> Self {
        Self::new(m)
    }
}
