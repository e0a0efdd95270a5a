//! A job's record and its state machine.
//!
//! ```text
//! queued --(worker takes it)--> running --(result published)--> done
//!    ^                            |  \--(typed evaluation error, or deliveries exhausted)--> failed
//!    \----(redelivery after a crash or a drain: running again, attempts + 1)
//! any --(DELETE)--> deleted (batch and result removed)
//! ```
//! `done`, `failed` and `deleted` are final: a redelivered message for such a job is acked and
//! dropped, which is what makes at-least-once delivery safe (a job publishes one result).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Deleted,
}

impl JobState {
    pub const ALL: [JobState; 5] = [Self::Queued, Self::Running, Self::Done, Self::Failed, Self::Deleted];

    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Deleted => "deleted",
        }
    }

    /// Whether no worker may touch the job any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Deleted)
    }
}

/// Where a job's result lives and what it must hash to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRef {
    /// Blob name (`results/<job>/<sha256>`).
    pub blob: String,
    /// SHA-256 of the scores bundle.
    pub sha256: String,
    pub bytes: u64,
}

/// One submitted batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub tenant: String,
    /// The key set's id (SHA-256 of its bundle).
    pub keyset: String,
    pub state: JobState,
    pub patients: usize,
    pub batch_sha256: String,
    pub batch_bytes: u64,
    pub submitted_unix_ms: u64,
    pub updated_unix_ms: u64,
    /// Deliveries so far (1 on the first run).
    pub attempts: u64,
    /// Machine-readable reason of a failure (`max_deliver_exhausted`, `evaluation_failed`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultRef>,
    /// Seconds the evaluation itself took (the metrics' evaluation seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_seconds: Option<f64>,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Job {
    pub fn batch_blob(&self) -> String {
        format!("batches/{}", self.id)
    }

    /// The public view: what `GET /v1/jobs/{id}` answers (no blob names).
    pub fn status_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "state": self.state.name(),
            "keyset": self.keyset,
            "patients": self.patients,
            "attempts": self.attempts,
            "submitted_unix_ms": self.submitted_unix_ms,
            "updated_unix_ms": self.updated_unix_ms,
            "error": self.error,
            "message": self.message,
            "result_sha256": self.result.as_ref().map(|r| r.sha256.clone()),
            "result_bytes": self.result.as_ref().map(|r| r.bytes),
            "evaluation_seconds": self.evaluation_seconds,
        })
    }

    pub fn fail(&mut self, code: &str, message: impl Into<String>) {
        self.state = JobState::Failed;
        self.error = Some(code.into());
        self.message = Some(message.into());
        self.updated_unix_ms = now_ms();
    }
}

/// A random 128-bit id, hex (from the OS generator: ids are unguessable, though tenant checks,
/// not secrecy of ids, are what isolate tenants).
pub fn new_id() -> Result<String, rand_core::Error> {
    use rand_core::RngCore;
    let mut b = [0u8; 16];
    rand_core::OsRng.try_fill_bytes(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}
