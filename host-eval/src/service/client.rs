//! The hospital's side of the service: `submit`, `fetch` and `fetch-profile`.
//!
//! Only public material leaves: the key set bundle is built from `keyset.json`, `public.key`
//! and `eval/*`, and the bundle encoder refuses any name that mentions a secret (the server
//! refuses it too). Uploads are content-addressed, so a retry or a second batch under the same
//! key set uploads nothing twice. Transient failures (connection refused or reset, 429, 502,
//! 503, 504) are retried with exponential backoff, honouring `Retry-After`, a bounded number of
//! times. A server that goes `STALL` without sending a byte is an error; a `POST` (submit) is
//! then not retried, because the job may have been created.

use crate::cli::keyset::sha256_hex;
use crate::cli::CliError;
use bytes::Bytes;
use clifhe_std::protocol::bundle::{self, Entry, Kind};
use reqwest::{Method, StatusCode};
use std::path::Path;
use std::time::{Duration, Instant};

const ATTEMPTS: u32 = 8;
/// Longest the server may go without sending a byte (while it receives an upload, checks it
/// and stores it, or evaluates nothing: the API never holds a request for an evaluation).
const STALL: Duration = Duration::from_secs(300);

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

fn unreachable(server: &str, e: impl std::fmt::Display) -> CliError {
    CliError::io(server, "reach", std::io::Error::other(e.to_string()))
}

/// The key set's public material as a bundle (`keyset.json`, `public.key`, `eval/*`): the
/// same bytes as the `public.bundle` that `keygen` and `evalkeys` write.
pub fn keyset_bundle(keys: &Path) -> Result<Vec<u8>, CliError> {
    crate::cli::public::PublicKeySet::open(keys)?.to_bundle()
}

impl Client {
    pub fn new(server: &str, token_file: &Path, ca_cert: Option<&Path>) -> Result<Self, CliError> {
        let token = std::fs::read_to_string(token_file)
            .map_err(|e| CliError::io(token_file, "read", e))?
            .trim()
            .to_string();
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(STALL);
        if let Some(ca) = ca_cert {
            let pem = crate::cli::fsio::read(ca)?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| CliError::corrupt(ca, "CA certificate", e))?;
            b = b.add_root_certificate(cert);
        }
        let http = b.build().map_err(|e| unreachable(server, e))?;
        Ok(Self {
            http,
            base: server.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// Sends a request, retrying transient failures; returns the final response (any status).
    async fn send(&self, method: Method, path: &str, body: Option<Bytes>) -> Result<reqwest::Response, CliError> {
        let url = format!("{}{path}", self.base);
        let mut delay = Duration::from_millis(250);
        for attempt in 1..=ATTEMPTS {
            let mut req = self.http.request(method.clone(), &url).bearer_auth(&self.token);
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let last = attempt == ATTEMPTS;
            match req.send().await {
                Ok(r) if !last && matches!(r.status().as_u16(), 429 | 502..=504) => {
                    let wait = r
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .map_or(delay, |s| Duration::from_secs(s.min(30)));
                    tokio::time::sleep(wait).await;
                }
                Ok(r) => return Ok(r),
                // Not sent at all, or (for the idempotent methods) lost on the way.
                Err(e) if !last && (e.is_connect() || (method != Method::POST && (e.is_timeout() || e.is_request()))) => {
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(unreachable(&url, e)),
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        Err(unreachable(&url, "retries exhausted"))
    }

    /// A non-success answer as an error carrying the server's code and message.
    async fn refused(r: reqwest::Response) -> CliError {
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        CliError::bad_input(
            format!("server answered {status}"),
            format!(
                "{}: {}",
                v["error"].as_str().unwrap_or("error"),
                v["message"].as_str().unwrap_or("")
            ),
        )
    }

    async fn json(&self, method: Method, path: &str, body: Option<Bytes>) -> Result<serde_json::Value, CliError> {
        let r = self.send(method, path, body).await?;
        if !r.status().is_success() {
            return Err(Self::refused(r).await);
        }
        r.json().await.map_err(|e| unreachable(&self.base, e))
    }

    /// Uploads the key set's public material unless the server has it; returns its digest.
    pub async fn ensure_keyset(&self, keys: &Path) -> Result<String, CliError> {
        let k = keys.to_path_buf();
        let bytes = tokio::task::spawn_blocking(move || keyset_bundle(&k))
            .await
            .map_err(|e| CliError::bad_input("key set", e))??;
        let digest = bundle::digest(&bytes);
        let path = format!("/v1/keysets/{digest}");
        let r = self.send(Method::GET, &path, None).await?;
        match r.status() {
            StatusCode::OK => return Ok(digest),
            StatusCode::NOT_FOUND => {}
            _ => return Err(Self::refused(r).await),
        }
        self.json(Method::PUT, &path, Some(Bytes::from(bytes))).await?;
        Ok(digest)
    }

    /// Submits a batch under a key set; returns the job id.
    pub async fn submit(&self, keyset: &str, batch: Vec<u8>) -> Result<String, CliError> {
        let v = self
            .json(Method::POST, &format!("/v1/jobs?keyset={keyset}"), Some(Bytes::from(batch)))
            .await?;
        v["job"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CliError::bad_input("server", "no job id in the answer"))
    }

    pub async fn status(&self, job: &str) -> Result<serde_json::Value, CliError> {
        self.json(Method::GET, &format!("/v1/jobs/{job}"), None).await
    }

    /// Waits for the job (a spinner on a terminal), downloads its result, checks it against
    /// the digest the status reported and each file against the bundle's index, and writes
    /// the scores directory that `host-eval release` reads.
    pub async fn fetch(&self, job: &str, out: &Path, timeout: Duration, progress: bool) -> Result<usize, CliError> {
        let bar = if progress {
            indicatif::ProgressBar::new_spinner()
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.enable_steady_tick(Duration::from_millis(120));
        let deadline = Instant::now() + timeout;
        let status = loop {
            let s = self.status(job).await?;
            let state = s["state"].as_str().unwrap_or("?").to_string();
            bar.set_message(format!("job {job}: {state} (attempt {})", s["attempts"]));
            match state.as_str() {
                "done" => break s,
                "failed" => {
                    bar.finish_and_clear();
                    return Err(CliError::bad_input(
                        format!("job {job}"),
                        format!(
                            "failed: {}: {}",
                            s["error"].as_str().unwrap_or(""),
                            s["message"].as_str().unwrap_or("")
                        ),
                    ));
                }
                _ if Instant::now() >= deadline => {
                    bar.finish_and_clear();
                    return Err(CliError::bad_input(
                        format!("job {job}"),
                        format!("still {state} after {timeout:?}"),
                    ));
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        bar.set_message(format!("job {job}: downloading"));
        let r = self.send(Method::GET, &format!("/v1/jobs/{job}/result"), None).await?;
        if !r.status().is_success() {
            bar.finish_and_clear();
            return Err(Self::refused(r).await);
        }
        let bytes = r.bytes().await.map_err(|e| unreachable(&self.base, e))?;
        bar.finish_and_clear();
        let want = status["result_sha256"].as_str().unwrap_or_default();
        if sha256_hex(&bytes) != want {
            return Err(CliError::corrupt(
                out,
                "result download",
                "does not match the digest the server reported",
            ));
        }
        let entries = bundle::decode(Kind::Scores, &bytes).map_err(|e| CliError::corrupt(out, "result download", e))?;
        if !entries.iter().any(|(e, _)| e.name == "scores.json") {
            return Err(CliError::corrupt(out, "result download", "no scores.json"));
        }
        std::fs::create_dir_all(out).map_err(|e| CliError::io(out, "create directory", e))?;
        write_dir(&entries, out)?;
        Ok(usize::try_from(status["patients"].as_u64().unwrap_or(0)).unwrap_or(0))
    }

    /// The model's input profile for a preset (what `encrypt --profile` needs).
    pub async fn profile(&self, preset: &str, layout: clifhe_std::protocol::BatchLayout) -> Result<Vec<u8>, CliError> {
        let v = self
            .json(Method::GET, &format!("/v1/profile?preset={preset}&layout={}", layout.name()), None)
            .await?;
        let mut b = serde_json::to_vec_pretty(&v).map_err(|e| CliError::bad_input("profile", e))?;
        b.push(b'\n');
        Ok(b)
    }
}

/// Writes a decoded bundle under `dir` (created), each file atomically.
fn write_dir(entries: &[(Entry, &[u8])], dir: &Path) -> Result<(), crate::cli::CliError> {
    for (e, body) in entries {
        let path = dir.join(&e.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| crate::cli::CliError::io(parent, "create directory", err))?;
        }
        crate::cli::fsio::write_atomic(&path, body)?;
    }
    Ok(())
}
