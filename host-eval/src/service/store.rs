//! Where the service keeps bytes and job records, behind two traits with one implementation
//! per deployment:
//! - [`BlobStore`]: key sets, batches and results by name. [`DiskStore`] (embedded `serve`)
//!   writes files atomically under a directory; [`NatsStore`] puts them in a JetStream object
//!   store bucket (chunked, SHA-256 checked by the server's object digest).
//! - [`JobTable`]: job records with compare-and-set by revision, so that two workers holding
//!   the same redelivered job cannot both publish a result. [`DiskJobs`] keeps one JSON file
//!   per job and serialises updates with a mutex (one process); [`NatsJobs`] is a JetStream
//!   key-value bucket whose `update(key, value, revision)` is the compare-and-set.
//!
//! Callers also check every blob against the digest they recorded when it was put (the job's
//! `batch_sha256`, a key set's id, a result's digest), so a damaged file on disk is caught the
//! same way as on NATS.

use super::jobs::Job;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::Mutex;

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The backend failed or is unreachable (the request may be retried).
#[derive(Clone, Debug)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage unavailable: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

fn se(e: impl fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// Bytes by name (`keysets/<tenant>/<digest>`, `batches/<job>`, `results/<job>/<digest>`).
pub trait BlobStore: Send + Sync {
    fn put<'a>(&'a self, name: &'a str, bytes: Bytes) -> BoxFut<'a, Result<(), StoreError>>;
    fn get<'a>(&'a self, name: &'a str) -> BoxFut<'a, Result<Option<Bytes>, StoreError>>;
    fn exists<'a>(&'a self, name: &'a str) -> BoxFut<'a, Result<bool, StoreError>>;
    fn delete<'a>(&'a self, name: &'a str) -> BoxFut<'a, Result<(), StoreError>>;
}

/// Job records with compare-and-set.
pub trait JobTable: Send + Sync {
    /// Creates a record; fails if the id exists.
    fn create<'a>(&'a self, job: &'a Job) -> BoxFut<'a, Result<u64, StoreError>>;
    /// The record and its revision.
    fn get<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<Option<(Job, u64)>, StoreError>>;
    /// Writes `job` if the stored revision is still `rev`; `Ok(None)` when someone else wrote
    /// in between (re-read and decide again).
    fn update<'a>(&'a self, job: &'a Job, rev: u64) -> BoxFut<'a, Result<Option<u64>, StoreError>>;
    /// Every record (for recovery at start-up and for the metrics).
    fn list(&self) -> BoxFut<'_, Result<Vec<Job>, StoreError>>;
}

/// Blob names are '/'-separated segments of `[A-Za-z0-9._-]`, none starting with '.'.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .split('/')
            .all(|s| !s.is_empty() && !s.starts_with('.') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
}

fn checked(name: &str) -> Result<&str, StoreError> {
    if valid_name(name) {
        Ok(name)
    } else {
        Err(StoreError(format!("invalid blob name {name:?}")))
    }
}

/// Files under `root/blobs`, written atomically.
pub struct DiskStore {
    root: PathBuf,
}

impl DiskStore {
    pub fn new(root: &Path) -> Self {
        Self { root: root.join("blobs") }
    }
    fn path(&self, name: &str) -> Result<PathBuf, StoreError> {
        Ok(self.root.join(checked(name)?))
    }
}

impl BlobStore for DiskStore {
    fn put<'a>(&'a self, name: &'a str, bytes: Bytes) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let path = self.path(name)?;
            tokio::task::spawn_blocking(move || {
                if let Some(p) = path.parent() {
                    std::fs::create_dir_all(p).map_err(se)?;
                }
                crate::cli::fsio::write_atomic(&path, &bytes).map_err(se)
            })
            .await
            .map_err(se)?
        })
    }
    fn get<'a>(&'a self, name: &'a str) -> BoxFut<'a, Result<Option<Bytes>, StoreError>> {
        Box::pin(async move {
            match tokio::fs::read(self.path(name)?).await {
                Ok(b) => Ok(Some(Bytes::from(b))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(se(e)),
            }
        })
    }
    fn exists<'a>(&'a self, name: &'a str) -> BoxFut<'a, Result<bool, StoreError>> {
        Box::pin(async move { tokio::fs::try_exists(self.path(name)?).await.map_err(se) })
    }
    fn delete<'a>(&'a self, name: &'a str) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(name)?).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(se(e)),
                _ => Ok(()),
            }
        })
    }
}

/// One JSON file per job under `root/jobs`: `{"rev": n, "job": {...}}`.
pub struct DiskJobs {
    dir: PathBuf,
    /// Serialises read-modify-write: the embedded server is the only writer.
    lock: Mutex<()>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Versioned {
    rev: u64,
    job: Job,
}

impl DiskJobs {
    pub fn new(root: &Path) -> Result<Self, StoreError> {
        let dir = root.join("jobs");
        std::fs::create_dir_all(&dir).map_err(se)?;
        Ok(Self { dir, lock: Mutex::new(()) })
    }
    fn path(&self, id: &str) -> Result<PathBuf, StoreError> {
        Ok(self.dir.join(format!("{}.json", checked(id)?)))
    }
    async fn read(&self, id: &str) -> Result<Option<Versioned>, StoreError> {
        match tokio::fs::read(self.path(id)?).await {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(se),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(se(e)),
        }
    }
    async fn write(&self, v: &Versioned) -> Result<(), StoreError> {
        let path = self.path(&v.job.id)?;
        let json = serde_json::to_vec(v).map_err(se)?;
        tokio::task::spawn_blocking(move || crate::cli::fsio::write_atomic(&path, &json).map_err(se))
            .await
            .map_err(se)?
    }
}

impl JobTable for DiskJobs {
    fn create<'a>(&'a self, job: &'a Job) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let _g = self.lock.lock().await;
            if self.read(&job.id).await?.is_some() {
                return Err(StoreError(format!("job {} exists", job.id)));
            }
            self.write(&Versioned { rev: 1, job: job.clone() }).await?;
            Ok(1)
        })
    }
    fn get<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<Option<(Job, u64)>, StoreError>> {
        Box::pin(async move { Ok(self.read(id).await?.map(|v| (v.job, v.rev))) })
    }
    fn update<'a>(&'a self, job: &'a Job, rev: u64) -> BoxFut<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            let _g = self.lock.lock().await;
            match self.read(&job.id).await? {
                Some(v) if v.rev == rev => {
                    self.write(&Versioned {
                        rev: rev + 1,
                        job: job.clone(),
                    })
                    .await?;
                    Ok(Some(rev + 1))
                }
                _ => Ok(None),
            }
        })
    }
    fn list(&self) -> BoxFut<'_, Result<Vec<Job>, StoreError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut rd = tokio::fs::read_dir(&self.dir).await.map_err(se)?;
            while let Some(e) = rd.next_entry().await.map_err(se)? {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(id) = name.strip_suffix(".json") {
                    if let Some(v) = self.read(id).await? {
                        out.push(v.job);
                    }
                }
            }
            Ok(out)
        })
    }
}

/// Object store bucket of the scale-out deployment.
///
/// Two properties of JetStream object stores shape this type:
/// - A put under an existing name writes the chunks under a fresh id, rolls the description
///   up to it and purges the old chunks. A reader that had already resolved the old
///   description then waits for chunks that no longer exist, forever (seen in the full test
///   run: four `submit`s of one hospital raced to upload the same key set, and a request that
///   was reading the key set's description while another re-put it never answered). Every name
///   here is content-addressed or unique per job, so a put whose name already holds the same
///   bytes (same SHA-256) is skipped, which removes the re-put in the common case.
/// - Racing puts from two API replicas can still replace an object under a reader, so a read
///   that makes no progress for `STALL` is abandoned and started again from the description
///   (`GET_ATTEMPTS` times), and a put is bounded by `PUT_TIMEOUT`: a stall becomes an error
///   the client sees (503, retried) instead of a request that never answers.
pub struct NatsStore {
    bucket: async_nats::jetstream::object_store::ObjectStore,
}

/// Longest a single object put may take before it is reported as failed.
const PUT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// Longest an object read may go without receiving a byte.
const STALL: std::time::Duration = std::time::Duration::from_secs(10);
/// Reads of one name before the store is reported unavailable.
const GET_ATTEMPTS: u32 = 3;

impl NatsStore {
    pub fn new(bucket: async_nats::jetstream::object_store::ObjectStore) -> Self {
        Self { bucket }
    }

    /// The object's bytes, or `Ok(None)` if it does not exist; `Err` on a stalled read.
    async fn read_once(&self, name: &str) -> Result<Option<Bytes>, StoreError> {
        use async_nats::jetstream::object_store::GetErrorKind;
        use tokio::io::AsyncReadExt;
        let get = tokio::time::timeout(STALL, self.bucket.get(name))
            .await
            .map_err(|_| se(format!("object store get of {name} stalled")))?;
        let mut o = match get {
            Ok(o) => o,
            Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(se(e)),
        };
        let size = o.info().size;
        let mut v = Vec::with_capacity(size);
        // The object reader checks the SHA-256 digest recorded at put time at the end.
        loop {
            let n = tokio::time::timeout(STALL, o.read_buf(&mut v))
                .await
                .map_err(|_| se(format!("object store read of {name} stalled at {} of {size} bytes", v.len())))?
                .map_err(se)?;
            if n == 0 {
                return Ok(Some(Bytes::from(v)));
            }
        }
    }
}

/// The `SHA-256=<base64url>` form of the object store's digest field.
fn object_digest(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    format!(
        "SHA-256={}",
        base64::engine::general_purpose::URL_SAFE.encode(sha2::Sha256::digest(bytes))
    )
}

impl BlobStore for NatsStore {
    fn put<'a>(&'a self, name: &'a str, bytes: Bytes) -> BoxFut<'a, Result<(), StoreError>> {
        use async_nats::jetstream::object_store::InfoErrorKind;
        Box::pin(async move {
            let name = checked(name)?;
            match self.bucket.info(name).await {
                Ok(i) if !i.deleted && i.size == bytes.len() && i.digest.as_deref() == Some(object_digest(&bytes).as_str()) => {
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) if e.kind() == InfoErrorKind::NotFound => {}
                Err(e) => return Err(se(e)),
            }
            let mut r: &[u8] = &bytes;
            tokio::time::timeout(PUT_TIMEOUT, self.bucket.put(name, &mut r))
                .await
                .map_err(|_| se(format!("object store put of {name} timed out")))?
                .map_err(se)?;
            Ok(())
        })
    }
    fn get<'a>(&'a self, name: &'a str) -> BoxFut<'a, Result<Option<Bytes>, StoreError>> {
        Box::pin(async move {
            let name = checked(name)?;
            let mut last = None;
            for _ in 0..GET_ATTEMPTS {
                match self.read_once(name).await {
                    Ok(v) => return Ok(v),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| se("no attempt")))
        })
    }
    fn exists<'a>(&'a self, name: &'a str) -> BoxFut<'a, Result<bool, StoreError>> {
        use async_nats::jetstream::object_store::InfoErrorKind;
        Box::pin(async move {
            match self.bucket.info(checked(name)?).await {
                Ok(i) => Ok(!i.deleted),
                Err(e) if e.kind() == InfoErrorKind::NotFound => Ok(false),
                Err(e) => Err(se(e)),
            }
        })
    }
    fn delete<'a>(&'a self, name: &'a str) -> BoxFut<'a, Result<(), StoreError>> {
        use async_nats::jetstream::object_store::DeleteErrorKind;
        Box::pin(async move {
            match self.bucket.delete(checked(name)?).await {
                Err(e) if e.kind() != DeleteErrorKind::NotFound => Err(se(e)),
                _ => Ok(()),
            }
        })
    }
}

/// Job records in a JetStream key-value bucket.
pub struct NatsJobs {
    kv: async_nats::jetstream::kv::Store,
}

impl NatsJobs {
    pub fn new(kv: async_nats::jetstream::kv::Store) -> Self {
        Self { kv }
    }
}

impl JobTable for NatsJobs {
    fn create<'a>(&'a self, job: &'a Job) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let v = serde_json::to_vec(job).map_err(se)?;
            self.kv.create(checked(&job.id)?, Bytes::from(v)).await.map_err(se)
        })
    }
    fn get<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<Option<(Job, u64)>, StoreError>> {
        use async_nats::jetstream::kv::Operation;
        Box::pin(async move {
            match self.kv.entry(checked(id)?).await.map_err(se)? {
                Some(e) if e.operation == Operation::Put => {
                    let job: Job = serde_json::from_slice(&e.value).map_err(se)?;
                    Ok(Some((job, e.revision)))
                }
                _ => Ok(None),
            }
        })
    }
    fn update<'a>(&'a self, job: &'a Job, rev: u64) -> BoxFut<'a, Result<Option<u64>, StoreError>> {
        use async_nats::jetstream::kv::UpdateErrorKind;
        Box::pin(async move {
            let v = serde_json::to_vec(job).map_err(se)?;
            match self.kv.update(checked(&job.id)?, Bytes::from(v), rev).await {
                Ok(r) => Ok(Some(r)),
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(None),
                Err(e) => Err(se(e)),
            }
        })
    }
    fn list(&self) -> BoxFut<'_, Result<Vec<Job>, StoreError>> {
        use futures_util::StreamExt;
        Box::pin(async move {
            let mut keys = self.kv.keys().await.map_err(se)?;
            let mut ids = Vec::new();
            while let Some(k) = keys.next().await {
                ids.push(k.map_err(se)?);
            }
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some((j, _)) = self.get(&id).await? {
                    out.push(j);
                }
            }
            Ok(out)
        })
    }
}

/// Counts of records by state name (the metrics' "jobs by state").
pub fn count_by_state(jobs: &[Job]) -> BTreeMap<&'static str, u64> {
    let mut m = BTreeMap::new();
    for s in super::jobs::JobState::ALL {
        m.insert(s.name(), 0);
    }
    for j in jobs {
        *m.entry(j.state.name()).or_insert(0) += 1;
    }
    m
}

/// A shared handle to both.
#[derive(Clone)]
pub struct Backend {
    pub blobs: Arc<dyn BlobStore>,
    pub jobs: Arc<dyn JobTable>,
    pub queue: Arc<dyn super::queue::Queue>,
}
