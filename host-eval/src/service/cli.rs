//! The service's subcommands (`serve`, `worker`, `tenant add`, `submit`, `fetch`,
//! `fetch-profile`): their arguments and thin synchronous entry points that start a tokio
//! runtime, so `cli::run` stays synchronous.

use super::api::Limits;
use super::client::Client;
use super::server::{self, ServeOptions, WorkerOptions};
use crate::cli::CliError;
use clap::{Args, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Model file from `train`
    #[arg(long)]
    pub model: PathBuf,
    /// Tenants file (`host-eval tenant add`)
    #[arg(long)]
    pub tenants: PathBuf,
    /// Embedded mode: on-disk store (and in-process workers) under this directory
    #[arg(long, required_unless_present = "nats", conflicts_with = "nats")]
    pub store: Option<PathBuf>,
    /// Scale-out mode: the stateless API only, on this NATS JetStream server (workers run as `host-eval worker`)
    #[arg(long)]
    pub nats: Option<String>,
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// In-process workers (embedded mode; each uses every core for its evaluation)
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS (rustls)
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Submissions beyond this many queued or running jobs answer 429 with Retry-After
    #[arg(long, default_value_t = 64)]
    pub max_queue: u64,
    #[arg(long, default_value_t = 256 << 20)]
    pub max_batch_bytes: u64,
    #[arg(long, default_value_t = 512 << 20)]
    pub max_keyset_bytes: u64,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    /// Log lines on standard error as text or as one JSON object per line
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How the service writes its log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `TIME LEVEL component=NAME message`, for a terminal.
    Text,
    /// One JSON object per line (timestamp, level, fields), for a log collector.
    Json,
}

/// Installs the process's log subscriber (once; a second call keeps the first).
fn init_logging(format: LogFormat) {
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Delivery settings; API replicas and workers must agree (the first to start creates the queue).
#[derive(Debug, Args)]
pub struct DeliveryArgs {
    /// Seconds without a heartbeat after which a job is redelivered to another worker
    #[arg(long, default_value_t = 30)]
    pub ack_wait_secs: u64,
    /// Deliveries before a job fails with max_deliver_exhausted
    #[arg(long, default_value_t = 3)]
    pub max_deliver: u64,
    /// Seconds SIGTERM waits for jobs in progress before leaving them to redelivery
    #[arg(long, default_value_t = 60)]
    pub drain_secs: u64,
    #[arg(long, default_value_t = clifhe_std::privacy::DEFAULT_STATISTICAL_SECURITY)]
    pub statistical_security: u32,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[arg(long)]
    pub nats: String,
    #[arg(long)]
    pub model: PathBuf,
    /// Scratch directory and key cache (evaluation keys by digest)
    #[arg(long)]
    pub cache: PathBuf,
    /// Jobs evaluated at once by this process
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    /// Log lines on standard error as text or as one JSON object per line
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Add a tenant and print its bearer token (shown once; only its SHA-256 is stored)
    Add {
        name: String,
        #[arg(long)]
        tenants: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ConnArgs {
    /// Service URL, e.g. http://127.0.0.1:8080
    #[arg(long)]
    pub server: String,
    /// File holding the tenant's bearer token
    #[arg(long)]
    pub token_file: PathBuf,
    /// CA certificate (PEM) to trust for an HTTPS server with a private CA
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Key set directory (its public material is uploaded if the server lacks it; secret.key never is)
    #[arg(long)]
    pub keys: PathBuf,
    /// Batch from `encrypt --profile`
    #[arg(long)]
    pub batch: PathBuf,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long)]
    pub job: String,
    /// Scores directory to write (what `release --scores` reads)
    #[arg(long)]
    pub out: PathBuf,
    /// Give up after this many seconds
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct FetchProfileArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Key set directory (keyset.json names the preset)
    #[arg(long)]
    pub keys: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    /// Batch layout: blade-major, or blocks (an equivariant model, a few patients at low
    /// latency; then `evalkeys --profile` and submit with the new key set bundle)
    #[arg(long, value_enum, default_value_t = crate::cli::profile::ProfileLayout::BladeMajor)]
    pub layout: crate::cli::profile::ProfileLayout,
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io("the async runtime", "start", e))
}

fn stdout_err(e: std::io::Error) -> CliError {
    CliError::io("standard output", "write", e)
}

pub fn serve(a: ServeArgs) -> Result<(), CliError> {
    init_logging(a.log_format);
    let o = ServeOptions {
        model: a.model,
        tenants: a.tenants,
        store: a.store,
        nats: a.nats,
        listen: a.listen,
        workers: a.workers,
        tls: a.tls_cert.zip(a.tls_key),
        limits: Limits {
            max_batch_bytes: a.max_batch_bytes,
            max_keyset_bytes: a.max_keyset_bytes,
            max_queue: a.max_queue,
            retry_after_secs: 2,
        },
        ack_wait: Duration::from_secs(a.delivery.ack_wait_secs.max(1)),
        max_deliver: a.delivery.max_deliver.max(1),
        drain: Duration::from_secs(a.delivery.drain_secs),
        statistical_security: a.delivery.statistical_security,
    };
    runtime()?.block_on(server::serve(o))
}

pub fn worker(a: WorkerArgs) -> Result<(), CliError> {
    init_logging(a.log_format);
    let o = WorkerOptions {
        nats: a.nats,
        model: a.model,
        cache: a.cache,
        concurrency: a.concurrency,
        ack_wait: Duration::from_secs(a.delivery.ack_wait_secs.max(1)),
        max_deliver: a.delivery.max_deliver.max(1),
        drain: Duration::from_secs(a.delivery.drain_secs),
        statistical_security: a.delivery.statistical_security,
    };
    runtime()?.block_on(server::worker(o))
}

pub fn tenant(c: TenantCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match c {
        TenantCommand::Add { name, tenants } => {
            let token = super::auth::add_tenant(&tenants, &name)?;
            writeln!(out, "{token}").map_err(stdout_err)
        }
    }
}

fn client(c: &ConnArgs) -> Result<Client, CliError> {
    Client::new(&c.server, &c.token_file, c.ca_cert.as_deref())
}

pub fn submit(a: SubmitArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let c = client(&a.conn)?;
    let batch = crate::cli::fsio::read(&a.batch)?;
    let job = runtime()?.block_on(async {
        let digest = c.ensure_keyset(&a.keys).await?;
        c.submit(&digest, batch).await
    })?;
    writeln!(out, "{job}").map_err(stdout_err)
}

pub fn fetch(a: FetchArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let c = client(&a.conn)?;
    let timeout = Duration::from_secs(a.timeout_secs);
    let patients = runtime()?.block_on(c.fetch(&a.job, &a.out, timeout, !a.no_progress))?;
    writeln!(
        out,
        "encrypted scores of job {} ({patients} patients) written to {}; run `host-eval release --keys DIR --scores {}`",
        a.job,
        a.out.display(),
        a.out.display()
    )
    .map_err(stdout_err)
}

pub fn fetch_profile(a: FetchProfileArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let preset = crate::cli::keyset::KeySet::open(&a.keys)?.params.name().to_string();
    let c = client(&a.conn)?;
    let bytes = runtime()?.block_on(c.profile(&preset, a.layout.into()))?;
    crate::cli::fsio::write_atomic(&a.out, &bytes)?;
    writeln!(out, "input profile for {preset} written to {}", a.out.display()).map_err(stdout_err)
}
