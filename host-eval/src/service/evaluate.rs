//! The one place a job is evaluated, and the key-set cache it evaluates with.
//!
//! [`evaluate`] is the seam between the service and the protocol: it calls the same library
//! step as `host-eval infer` ([`vendor::infer`]), in memory, so the service and the
//! command line cannot diverge. A worker loads its model once and each key set's public
//! material once per digest ([`KeyCache`]): the evaluation context (NTT tables), the public key
//! and the relinearization key (and, from its first block-layout job on, the rotation keys)
//! stay in memory across that key set's jobs.

use crate::cli::public::PublicKeySet;
use crate::cli::CliError;
use clifhe_core::keys::PublicKeyOwned;
use clifhe_std::protocol::batch;
use clifhe_std::protocol::bundle::{self, Kind};
use clifhe_std::protocol::model::PreparedModel;
use clifhe_std::protocol::vendor::{self, InferOptions, VendorKeys};
use clifhe_std::protocol::BatchLayout;
use clifhe_std::protocol::VendorModel;
use clifhe_std::{EvalContext, Evaluator, GaloisKeys, RelinearizationKey};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Key sets one worker keeps loaded (a private-n15 relinearization key is tens of MB).
const MAX_LOADED: usize = 16;

/// One key set's public material, loaded and checked.
#[derive(Debug)]
pub struct LoadedKeys {
    ectx: EvalContext,
    pk: PublicKeyOwned,
    rlk: RelinearizationKey,
    /// The bundle's files, for the Galois keys a block-layout batch needs.
    set: PublicKeySet,
    /// Those Galois keys once a job needed them (the worker's model is fixed, so one set).
    rotations: Mutex<Option<Arc<GaloisKeys>>>,
}

impl LoadedKeys {
    /// The Galois keys `header`'s batch needs with `model` (none for blade-major batches),
    /// decoded from the bundle on the first block-layout job and kept.
    fn rotation_keys(&self, model: &VendorModel, header: &batch::BatchHeader) -> Result<Option<Arc<GaloisKeys>>, CliError> {
        if header.layout == BatchLayout::Blocks {
            if let Some(k) = self.rotations.lock().ok().and_then(|g| g.clone()) {
                return Ok(Some(k));
            }
        }
        let Some(k) = self.set.keys_for_batch(&self.ectx, model, header)? else {
            return Ok(None);
        };
        let k = Arc::new(k);
        if let Ok(mut g) = self.rotations.lock() {
            *g = Some(k.clone());
        }
        Ok(Some(k))
    }
}

impl LoadedKeys {
    /// Decodes a key-set bundle (checked against `digest`): `keyset.json`, whose fingerprint
    /// must be the SHA-256 of `public.key`, the public key and the relinearization key.
    pub fn from_bundle(digest: &str, bytes: &[u8]) -> Result<Self, CliError> {
        if bundle::digest(bytes) != digest {
            return Err(CliError::corrupt(
                "key set bundle",
                "key set bundle",
                "content does not match its digest",
            ));
        }
        // Named by its digest in messages ("key set <sha256> has no ...").
        let set = PublicKeySet::from_bundle(Path::new(digest), bytes)?;
        let pk = set.public_key()?;
        let ectx = EvalContext::new(set.params)?;
        let rlk = set.relin_key(&ectx)?;
        Ok(Self {
            ectx,
            pk,
            rlk,
            set,
            rotations: Mutex::new(None),
        })
    }
}

/// Evaluates a box-encoded batch with `model` under `keys` (the circuit-private path, flooded
/// at `statistical_security`) and returns the scores as a bundle: `scores.json` and one
/// `class-<c>.ct` per class, what the hospital downloads and `release` reads.
pub fn evaluate(model: &PreparedModel, keys: &LoadedKeys, batch_bytes: &[u8], statistical_security: u32) -> Result<Vec<u8>, CliError> {
    let params = *keys.ectx.params();
    let name = Path::new("batch");
    let (header, cts) = batch::parse(&params, batch_bytes).map_err(|e| CliError::protocol(name, e))?;
    let ev = Evaluator::new(&keys.ectx);
    let opts = InferOptions {
        statistical_security,
        no_flooding: false,
        patients: None,
    };
    let mut rng = crate::cli::keyset::os_rng()?;
    let gks = keys.rotation_keys(model.model(), &header)?;
    let vk = VendorKeys {
        pk: &keys.pk,
        rlk: &keys.rlk,
        gks: gks.as_deref(),
    };
    let scored = vendor::infer(&ev, &vk, model, &header, &cts, &opts, &mut rng).map_err(|e| CliError::protocol(name, e))?;
    let files = scored.files(&params)?;
    bundle::encode(Kind::Scores, &files).map_err(|e| CliError::bad_input("scores bundle", e))
}

/// Key sets by digest, and their digests in loading order.
type Loaded = (HashMap<String, Arc<LoadedKeys>>, VecDeque<String>);

/// Loaded key sets by digest, at most [`MAX_LOADED`] (the oldest loaded is dropped first).
#[derive(Debug, Clone, Default)]
pub struct KeyCache {
    inner: Arc<Mutex<Loaded>>,
}

impl KeyCache {
    /// The loaded key set of `digest`, if this worker has it.
    pub fn lookup(&self, digest: &str) -> Option<Arc<LoadedKeys>> {
        self.inner.lock().ok()?.0.get(digest).cloned()
    }

    /// Loads `bytes` (checked against `digest`) and keeps it.
    pub fn load(&self, digest: &str, bytes: &[u8]) -> Result<Arc<LoadedKeys>, CliError> {
        if let Some(k) = self.lookup(digest) {
            return Ok(k);
        }
        let keys = Arc::new(LoadedKeys::from_bundle(digest, bytes)?);
        if let Ok(mut g) = self.inner.lock() {
            let (map, order) = &mut *g;
            if map.insert(digest.to_string(), keys.clone()).is_none() {
                order.push_back(digest.to_string());
            }
            while order.len() > MAX_LOADED {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
        Ok(keys)
    }
}
