//! The worker loop, shared by the embedded server's in-process workers and `host-eval worker`.
//!
//! Delivery is at least once (a crash before the ack, an ack lost with a server restart), so
//! every step is idempotent: a job in a final state is acked and dropped; a result is written
//! under its own digest and published by a compare-and-set on the job record from `running`
//! to `done`, which only one delivery can win; the loser deletes its own blob. Failures that
//! another delivery cannot fix (a malformed batch, another model's profile) fail the job with
//! the typed error; storage hiccups hand the delivery back with a delay; a job delivered more
//! than `max_deliver` times fails with `max_deliver_exhausted`.

use super::evaluate::{evaluate, KeyCache};
use super::jobs::{now_ms, Job, JobState, ResultRef};
use super::queue::Delivery;
use super::store::{Backend, StoreError};
use crate::cli::CliError;
use clifhe_std::protocol::model::PreparedModel;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What a worker needs.
#[derive(Clone)]
pub struct WorkerConfig {
    pub name: String,
    pub model: PathBuf,
    /// Scratch and key cache directory.
    pub cache: PathBuf,
    pub max_deliver: u64,
    /// How often to tell the queue the job is still being worked on.
    pub heartbeat: Duration,
    pub statistical_security: u32,
}

/// One service log line on standard error, through `tracing` (text or JSON per
/// `--log-format`; `component` names the API, a worker or the NATS connection).
pub fn log(who: &str, msg: impl std::fmt::Display) {
    tracing::info!(component = who, "{msg}");
}

/// Takes deliveries until `stop` turns true (checked between jobs: a job in progress finishes).
pub async fn run(cfg: Arc<WorkerConfig>, backend: Backend, mut stop: watch::Receiver<bool>) {
    // The model is loaded once per worker; a model that does not load stops the worker (the
    // server checks it at start, so this is a file changed underneath).
    let model = match crate::cli::profile::read_vendor_model(&cfg.model) {
        Ok(m) => Arc::new(PreparedModel::new(m)),
        Err(e) => {
            log(&cfg.name, format!("cannot load the model: {e}"));
            return;
        }
    };
    let keys = KeyCache::default();
    loop {
        if *stop.borrow() {
            break;
        }
        let next = tokio::select! {
            n = backend.queue.next(Duration::from_secs(1)) => n,
            _ = stop.changed() => continue,
        };
        match next {
            Ok(Some(d)) => process(&cfg, &backend, &model, &keys, d.as_ref()).await,
            Ok(None) => {}
            Err(e) => {
                // The queue is unreachable (e.g. NATS restarting): retry after a pause.
                log(&cfg.name, format!("queue: {e}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    log(&cfg.name, "stopped");
}

enum Outcome {
    /// Published (or found final): ack.
    Finished,
    /// Transient trouble: hand the delivery back.
    Retry(String),
}

async fn process(cfg: &WorkerConfig, backend: &Backend, model: &Arc<PreparedModel>, keys: &KeyCache, d: &dyn Delivery) {
    let outcome = match attempt(cfg, backend, model, keys, d).await {
        Ok(o) => o,
        Err(e) => Outcome::Retry(e.to_string()),
    };
    let r = match outcome {
        Outcome::Finished => d.ack().await,
        Outcome::Retry(why) => {
            log(&cfg.name, format!("job {} attempt {}: handing back ({why})", d.job(), d.attempt()));
            d.nak(Duration::from_millis(500)).await
        }
    };
    if let Err(e) = r {
        log(
            &cfg.name,
            format!("job {}: ack/nak failed ({e}); the queue will redeliver", d.job()),
        );
    }
}

/// Applies `change` to the job's current record with compare-and-set, re-reading on conflict.
/// `change` returns false to leave the record as it is. Returns the record written (or found).
async fn modify(backend: &Backend, id: &str, mut change: impl FnMut(&mut Job) -> bool) -> Result<Option<Job>, StoreError> {
    for _ in 0..16 {
        let Some((mut job, rev)) = backend.jobs.get(id).await? else {
            return Ok(None);
        };
        if !change(&mut job) {
            return Ok(Some(job));
        }
        job.updated_unix_ms = now_ms();
        if backend.jobs.update(&job, rev).await?.is_some() {
            return Ok(Some(job));
        }
    }
    Err(StoreError(format!("job {id}: too many concurrent updates")))
}

async fn attempt(
    cfg: &WorkerConfig,
    backend: &Backend,
    model: &Arc<PreparedModel>,
    keys: &KeyCache,
    d: &dyn Delivery,
) -> Result<Outcome, StoreError> {
    let id = d.job().to_string();
    let n = d.attempt();
    let Some((job, _)) = backend.jobs.get(&id).await? else {
        log(&cfg.name, format!("job {id}: no record (deleted); dropping"));
        return Ok(Outcome::Finished);
    };
    if job.state.is_final() {
        log(
            &cfg.name,
            format!("job {id}: already {} (redelivery {n}); dropping", job.state.name()),
        );
        return Ok(Outcome::Finished);
    }
    if n > cfg.max_deliver {
        let max = cfg.max_deliver;
        modify(backend, &id, |j| {
            if j.state.is_final() {
                return false;
            }
            j.fail(
                "max_deliver_exhausted",
                format!("delivered {max} times without finishing (workers crashed or timed out during evaluation)"),
            );
            true
        })
        .await?;
        log(&cfg.name, format!("job {id}: failed, deliveries exhausted"));
        return Ok(Outcome::Finished);
    }
    modify(backend, &id, |j| {
        if j.state.is_final() {
            return false;
        }
        j.state = JobState::Running;
        j.attempts = n;
        true
    })
    .await?;

    // Key set: from the cache, else from the store (checked against its digest).
    let loaded = match keys.lookup(&job.keyset) {
        Some(k) => k,
        None => {
            let blob = format!("keysets/{}/{}", job.tenant, job.keyset);
            let Some(bytes) = backend.blobs.get(&blob).await? else {
                return fail(backend, &id, "unknown_keyset", "the key set was removed before the job ran").await;
            };
            let (k, digest) = (keys.clone(), job.keyset.clone());
            match tokio::task::spawn_blocking(move || k.load(&digest, &bytes)).await {
                Ok(Ok(k)) => k,
                Ok(Err(e)) => return fail(backend, &id, "corrupt_keyset", e.to_string()).await,
                Err(e) => return Ok(Outcome::Retry(e.to_string())),
            }
        }
    };
    let Some(batch) = backend.blobs.get(&job.batch_blob()).await? else {
        return fail(backend, &id, "batch_missing", "the batch was deleted before the job ran").await;
    };
    if crate::cli::keyset::sha256_hex(&batch) != job.batch_sha256 {
        return Ok(Outcome::Retry("batch does not match its digest (storage damage?)".into()));
    }
    let heartbeat = async {
        loop {
            tokio::time::sleep(cfg.heartbeat).await;
            let _ = d.progress().await;
        }
    };
    let (model, stat) = (model.clone(), cfg.statistical_security);
    let work = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, f64), CliError> {
        let t = Instant::now();
        let bundle = evaluate(&model, &loaded, &batch, stat)?;
        Ok((bundle, t.elapsed().as_secs_f64()))
    });
    let result = tokio::select! {
        r = work => r,
        _ = heartbeat => unreachable_heartbeat(),
    };
    let (bundle, secs) = match result {
        Ok(Ok(x)) => x,
        Ok(Err(CliError::Io { path, action, source })) => {
            return Ok(Outcome::Retry(format!("cannot {action} {}: {source}", path.display())));
        }
        // Typed, deterministic: another delivery would fail the same way.
        Ok(Err(e)) => return fail(backend, &id, "evaluation_failed", e.to_string()).await,
        Err(e) => return Ok(Outcome::Retry(e.to_string())),
    };
    let sha = clifhe_std::protocol::bundle::digest(&bundle);
    let blob = format!("results/{id}/{sha}");
    let bytes = bundle.len() as u64;
    backend.blobs.put(&blob, bytes::Bytes::from(bundle)).await?;
    let mut won = false;
    let written = modify(backend, &id, |j| {
        if j.state.is_final() {
            return false;
        }
        j.state = JobState::Done;
        j.result = Some(ResultRef {
            blob: blob.clone(),
            sha256: sha.clone(),
            bytes,
        });
        j.evaluation_seconds = Some(secs);
        won = true;
        true
    })
    .await?;
    if !won {
        // Another delivery published first (or the job was deleted): keep its result only.
        backend.blobs.delete(&blob).await?;
        let state = written.map_or("gone", |j| j.state.name());
        log(
            &cfg.name,
            format!("job {id}: lost the race to a concurrent delivery ({state}); result discarded"),
        );
    } else {
        log(&cfg.name, format!("job {id}: done in {secs:.2} s (attempt {n})"));
    }
    Ok(Outcome::Finished)
}

/// The heartbeat loop never ends; this arm exists only so that `select!` drops it with the work.
fn unreachable_heartbeat() -> Result<Result<(Vec<u8>, f64), CliError>, tokio::task::JoinError> {
    Ok(Err(CliError::bad_input("worker", "heartbeat loop ended")))
}

async fn fail(backend: &Backend, id: &str, code: &str, message: impl Into<String>) -> Result<Outcome, StoreError> {
    let message = message.into();
    modify(backend, id, |j| {
        if j.state.is_final() {
            return false;
        }
        j.fail(code, message.clone());
        true
    })
    .await?;
    Ok(Outcome::Finished)
}
