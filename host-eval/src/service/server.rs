//! `host-eval serve` and `host-eval worker`: wiring the backend, the API and the workers
//! together, and draining on SIGTERM (the API stops accepting connections and finishes open
//! requests; workers finish the job in hand, or leave it to be redelivered if the drain time
//! runs out).

use super::api::{router, AppState, Limits};
use super::auth::Tenants;
use super::jobs::JobState;
use super::metrics::Metrics;
use super::queue::LocalQueue;
use super::store::{Backend, DiskJobs, DiskStore, StoreError};
use super::worker::{self, log, WorkerConfig};
use crate::cli::CliError;
use clifhe_std::protocol::model::PreparedModel;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

fn unavailable(what: &str) -> impl Fn(StoreError) -> CliError + '_ {
    move |e| CliError::io(what, "open", std::io::Error::other(e.to_string()))
}

/// Options of `serve`.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub model: PathBuf,
    pub tenants: PathBuf,
    pub store: Option<PathBuf>,
    pub nats: Option<String>,
    pub listen: SocketAddr,
    pub workers: usize,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub limits: Limits,
    pub ack_wait: Duration,
    pub max_deliver: u64,
    pub drain: Duration,
    pub statistical_security: u32,
}

/// Options of `worker`.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    pub nats: String,
    pub model: PathBuf,
    pub cache: PathBuf,
    pub concurrency: usize,
    pub ack_wait: Duration,
    pub max_deliver: u64,
    pub drain: Duration,
    pub statistical_security: u32,
}

fn load_model(path: &std::path::Path) -> Result<PreparedModel, CliError> {
    Ok(PreparedModel::new(crate::cli::profile::read_vendor_model(path)?))
}

/// Resolves on SIGTERM or Ctrl-C.
async fn terminated() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn spawn_workers(n: usize, cfg: &WorkerConfig, backend: &Backend, stop: &watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n.max(1))
        .map(|i| {
            let cfg = Arc::new(WorkerConfig {
                name: format!("{}-{i}", cfg.name),
                ..cfg.clone()
            });
            tokio::spawn(worker::run(cfg, backend.clone(), stop.clone()))
        })
        .collect()
}

async fn drain(workers: Vec<tokio::task::JoinHandle<()>>, within: Duration) {
    let all = futures_util::future::join_all(workers);
    if tokio::time::timeout(within, all).await.is_err() {
        log("drain", "time is up: jobs still in progress are left to be redelivered");
    }
}

pub async fn serve(o: ServeOptions) -> Result<(), CliError> {
    let model = Arc::new(load_model(&o.model)?);
    let tenants = Tenants::load(&o.tenants)?;
    if tenants.is_empty() {
        log("serve", "warning: the tenants file has no tenants; every request will be refused");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let (backend, workers) = match (&o.nats, &o.store) {
        (Some(url), _) => {
            let b = super::nats::open(url, o.ack_wait, o.max_deliver, Duration::from_secs(30))
                .await
                .map_err(unavailable(url))?;
            (b, Vec::new())
        }
        (None, Some(dir)) => {
            let jobs = DiskJobs::new(dir).map_err(unavailable("store"))?;
            let b = Backend {
                blobs: Arc::new(DiskStore::new(dir)),
                jobs: Arc::new(jobs),
                queue: Arc::new(LocalQueue::default()),
            };
            // Jobs accepted before a restart (queued, or running when it stopped) run again.
            let mut recovered = 0;
            for j in b.jobs.list().await.map_err(unavailable("store"))? {
                if matches!(j.state, JobState::Queued | JobState::Running) {
                    b.queue.push(&j.id).await.map_err(unavailable("queue"))?;
                    recovered += 1;
                }
            }
            if recovered > 0 {
                log("serve", format!("re-queued {recovered} unfinished jobs"));
            }
            let cfg = WorkerConfig {
                name: "worker".into(),
                model: o.model.clone(),
                cache: dir.join("cache"),
                max_deliver: o.max_deliver,
                heartbeat: o.ack_wait / 3,
                statistical_security: o.statistical_security,
            };
            let w = spawn_workers(o.workers, &cfg, &b, &stop_rx);
            (b, w)
        }
        (None, None) => {
            return Err(CliError::bad_input(
                "serve",
                "give --store DIR (embedded) or --nats URL (scale-out)",
            ))
        }
    };
    let state = Arc::new(AppState {
        backend,
        tenants,
        model,
        limits: o.limits.clone(),
        metrics: Arc::new(Metrics::default()),
    });
    let app = router(state).into_make_service();
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    let drain_for = o.drain;
    tokio::spawn(async move {
        terminated().await;
        log("serve", "SIGTERM: draining");
        let _ = stop_tx.send(true);
        h.graceful_shutdown(Some(drain_for));
    });
    let h = handle.clone();
    let mode = if o.nats.is_some() { "API only (NATS)" } else { "embedded" };
    tokio::spawn(async move {
        if let Some(addr) = h.listening().await {
            log("serve", format!("listening on {addr} ({mode})"));
        }
    });
    let served = match &o.tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| CliError::io(cert, "load TLS certificate/key from", e))?;
            axum_server::bind_rustls(o.listen, tls).handle(handle).serve(app).await
        }
        None => axum_server::bind(o.listen).handle(handle).serve(app).await,
    };
    served.map_err(|e| CliError::io(o.listen.to_string(), "listen on", e))?;
    drain(workers, o.drain).await;
    log("serve", "stopped");
    Ok(())
}

pub async fn worker(o: WorkerOptions) -> Result<(), CliError> {
    // Fail fast on a bad model instead of failing every job.
    load_model(&o.model)?;
    std::fs::create_dir_all(&o.cache).map_err(|e| CliError::io(&o.cache, "create directory", e))?;
    let backend = super::nats::open(&o.nats, o.ack_wait, o.max_deliver, Duration::from_secs(30))
        .await
        .map_err(unavailable(&o.nats))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let cfg = WorkerConfig {
        name: format!("worker-{}", std::process::id()),
        model: o.model.clone(),
        cache: o.cache.clone(),
        max_deliver: o.max_deliver,
        heartbeat: o.ack_wait / 3,
        statistical_security: o.statistical_security,
    };
    let workers = spawn_workers(o.concurrency, &cfg, &backend, &stop_rx);
    log(&cfg.name, format!("ready ({} concurrent jobs)", o.concurrency.max(1)));
    terminated().await;
    log(&cfg.name, "SIGTERM: finishing the job in hand");
    let _ = stop_tx.send(true);
    drain(workers, o.drain).await;
    Ok(())
}
