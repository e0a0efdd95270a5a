//! The HTTP API (axum). Every route but the probes, the metrics and the OpenAPI document needs
//! `Authorization: Bearer <token>`; a tenant sees only its own key sets and jobs (anything else
//! answers 404, as if it did not exist). Errors are JSON `{"error": code, "message": text}`.
//! The routes are documented in `host-eval/openapi.json`, served at `/openapi.json`.

use super::auth::Tenants;
use super::jobs::{new_id, now_ms, Job, JobState};
use super::metrics::{self, Metrics};
use super::store::{count_by_state, Backend, StoreError};
use crate::cli::keyset::{sha256_hex, KeysetMeta};
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use clifhe_core::Params;
use clifhe_std::protocol::batch;
use clifhe_std::protocol::bundle::{self, BundleError, Kind};
use clifhe_std::protocol::model::PreparedModel;
use clifhe_std::protocol::profile::InputProfile;
use clifhe_std::protocol::BatchLayout;
use clifhe_std::protocol::ProtocolError;
use serde::Deserialize;
use std::sync::Arc;

pub const OPENAPI: &str = include_str!("../../openapi.json");

/// Per-request limits and back-pressure.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_batch_bytes: u64,
    pub max_keyset_bytes: u64,
    /// Submissions beyond this many queued or running jobs get 429.
    pub max_queue: u64,
    pub retry_after_secs: u64,
}

pub struct AppState {
    pub backend: Backend,
    pub tenants: Tenants,
    pub model: Arc<PreparedModel>,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
}

type St = State<Arc<AppState>>;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no such {what}"))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.code, "message": self.message }));
        let mut r = (self.status, body).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The authenticated tenant of a request.
pub struct Tenant(pub String);

impl FromRequestParts<Arc<AppState>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing bearer token"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("expected 'Authorization: Bearer <token>'"))?;
        st.tenants
            .authenticate(token)
            .map(|t| Tenant(t.to_string()))
            .ok_or_else(|| unauthorized("unknown token"))
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let backstop = state
        .limits
        .max_batch_bytes
        .max(state.limits.max_keyset_bytes)
        .saturating_add(1 << 20);
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/v1/profile", get(profile))
        .route("/v1/keysets/{digest}", get(keyset_status).put(put_keyset))
        .route("/v1/jobs", axum::routing::post(submit))
        .route("/v1/jobs/{id}", get(job_status).delete(delete_job))
        .route("/v1/jobs/{id}/result", get(job_result))
        // Handlers enforce their own limits (with JSON errors); this is the outer backstop.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            usize::try_from(backstop).unwrap_or(usize::MAX),
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_errors))
        .with_state(state)
}

async fn count_errors(State(st): St, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let r = next.run(req).await;
    if r.status().is_client_error() {
        Metrics::add(&st.metrics.responses_4xx, 1);
    } else if r.status().is_server_error() {
        Metrics::add(&st.metrics.responses_5xx, 1);
    }
    r
}

async fn readyz(State(st): St) -> ApiResult<&'static str> {
    st.backend.queue.depth().await?;
    Ok("ready\n")
}

async fn metrics_text(State(st): St) -> Response {
    let depth = st.backend.queue.depth().await.ok();
    let jobs = st.backend.jobs.list().await.unwrap_or_default();
    let done: Vec<f64> = jobs.iter().filter_map(|j| j.evaluation_seconds).collect();
    let text = metrics::render(&st.metrics, depth, &count_by_state(&jobs), (done.iter().sum(), done.len() as u64));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Reads a body of at most `limit` bytes: 413 from the declared length before reading a byte,
/// or as soon as a chunked body passes the limit.
async fn read_body(st: &AppState, headers: &HeaderMap, body: Body, limit: u64) -> ApiResult<Bytes> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("body larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let b = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|_| too_large())?;
    Metrics::add(&st.metrics.bytes_in, b.len() as u64);
    Ok(b)
}

#[derive(Deserialize)]
struct ProfileQuery {
    preset: String,
    /// `blade-major` (the default) or `blocks` (an equivariant model's low-latency layout).
    #[serde(default)]
    layout: Option<BatchLayout>,
}

async fn profile(State(st): St, _t: Tenant, Query(q): Query<ProfileQuery>) -> ApiResult<Json<InputProfile>> {
    let params =
        Params::from_name(&q.preset).ok_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_preset", q.preset.clone()))?;
    let model = st.model.clone();
    let layout = q.layout.unwrap_or(BatchLayout::BladeMajor);
    let p = tokio::task::spawn_blocking(move || model.profile(&params, true, layout))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unsupported_preset", e.to_string()))?;
    Ok(Json(p))
}

fn keyset_blob(tenant: &str, digest: &str) -> String {
    format!("keysets/{tenant}/{digest}")
}

fn meta_blob(tenant: &str, digest: &str) -> String {
    format!("keysets/{tenant}/{digest}.meta")
}

fn check_digest(d: &str) -> ApiResult<()> {
    if bundle::is_digest(d) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_digest",
            "expected a lowercase hex SHA-256",
        ))
    }
}

/// The key set's description, if this tenant uploaded it.
async fn keyset_meta(st: &AppState, tenant: &str, digest: &str) -> ApiResult<Option<KeysetMeta>> {
    match st.backend.blobs.get(&meta_blob(tenant, digest)).await? {
        Some(b) => Ok(Some(serde_json::from_slice(&b).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("stored key set description: {e}"),
            )
        })?)),
        None => Ok(None),
    }
}

async fn keyset_status(State(st): St, Tenant(t): Tenant, Path(digest): Path<String>) -> ApiResult<Json<serde_json::Value>> {
    check_digest(&digest)?;
    let meta = keyset_meta(&st, &t, &digest).await?.ok_or_else(|| ApiError::not_found("key set"))?;
    Ok(Json(serde_json::json!({ "digest": digest, "preset": meta.preset })))
}

/// Validates an uploaded key set bundle: its digest, its names (no secret key), and that
/// `public.key` is the one `keyset.json` fingerprints. Returns the description.
fn validate_keyset(digest: &str, bytes: &[u8]) -> ApiResult<KeysetMeta> {
    let bad = |code: &'static str, m: String| ApiError::new(StatusCode::BAD_REQUEST, code, m);
    if bundle::digest(bytes) != digest {
        return Err(bad("digest_mismatch", "the body's SHA-256 is not the digest in the URL".into()));
    }
    let entries = bundle::decode(Kind::KeySet, bytes).map_err(|e| match e {
        BundleError::BadName { secret: true, .. } => bad("secret_key_refused", e.to_string()),
        _ => bad("corrupt_bundle", e.to_string()),
    })?;
    let file = |n: &str| entries.iter().find(|(e, _)| e.name == n).map(|(_, b)| *b);
    let (Some(meta), Some(pk), Some(_)) = (file("keyset.json"), file("public.key"), file("eval/relin.key")) else {
        return Err(bad(
            "incomplete_keyset",
            "a key set needs keyset.json, public.key and eval/relin.key".into(),
        ));
    };
    let meta: KeysetMeta = serde_json::from_slice(meta).map_err(|e| bad("corrupt_bundle", format!("keyset.json: {e}")))?;
    let params = Params::from_id(meta.preset_id).map_err(|e| bad("corrupt_bundle", format!("keyset.json: {e}")))?;
    if meta.format != crate::cli::keyset::FORMAT || params.name() != meta.preset || sha256_hex(pk) != meta.fingerprint_sha256 {
        return Err(bad("corrupt_bundle", "keyset.json does not describe public.key".into()));
    }
    Ok(meta)
}

async fn put_keyset(State(st): St, Tenant(t): Tenant, Path(digest): Path<String>, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    check_digest(&digest)?;
    if keyset_meta(&st, &t, &digest).await?.is_some() {
        // Content-addressed: the same digest is the same bytes; nothing to do.
        return Ok((StatusCode::OK, Json(serde_json::json!({ "digest": digest, "created": false }))).into_response());
    }
    let bytes = read_body(&st, &headers, body, st.limits.max_keyset_bytes).await?;
    let d = digest.clone();
    let b = bytes.clone();
    let meta = tokio::task::spawn_blocking(move || validate_keyset(&d, &b))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    st.backend.blobs.put(&keyset_blob(&t, &digest), bytes).await?;
    let meta_json = serde_json::to_vec(&meta).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    // The description last: its presence is what marks the key set as uploaded.
    st.backend.blobs.put(&meta_blob(&t, &digest), Bytes::from(meta_json)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "digest": digest, "created": true }))).into_response())
}

#[derive(Deserialize)]
struct SubmitQuery {
    keyset: String,
}

/// Checks a batch against the key set's preset and the model's profile: the same typed errors
/// `host-eval infer` gives, before anything is queued.
fn check_batch(model: &PreparedModel, params: &Params, bytes: &[u8]) -> ApiResult<usize> {
    let (header, _) = batch::parse(params, bytes).map_err(|e| match e {
        ProtocolError::PresetMismatch { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "wrong_preset", e.to_string()),
        _ => ApiError::new(StatusCode::BAD_REQUEST, "corrupt_batch", e.to_string()),
    })?;
    let want = model
        .profile(params, true, header.layout)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unsupported_preset", e.to_string()))?;
    if !header.circuit_private || header.profile_fingerprint != want.fingerprint {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_profile",
            "the batch was encrypted for another model's input profile (or a --no-flooding one); fetch /v1/profile and re-encrypt",
        ));
    }
    Ok(header.patients)
}

async fn submit(State(st): St, Tenant(t): Tenant, Query(q): Query<SubmitQuery>, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    check_digest(&q.keyset)?;
    let depth = st.backend.queue.depth().await?;
    if depth >= st.limits.max_queue {
        Metrics::add(&st.metrics.rejected_busy, 1);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "queue_full",
            format!("{depth} jobs queued; retry later"),
        );
        e.retry_after = Some(st.limits.retry_after_secs);
        return Err(e);
    }
    let bytes = read_body(&st, &headers, body, st.limits.max_batch_bytes).await?;
    let meta = keyset_meta(&st, &t, &q.keyset).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "unknown_keyset",
            "upload the key set's public material first (PUT /v1/keysets/{digest})",
        )
    })?;
    let params =
        Params::from_id(meta.preset_id).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let (model, b) = (st.model.clone(), bytes.clone());
    let patients = tokio::task::spawn_blocking(move || check_batch(&model, &params, &b))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    let id = new_id().map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let now = now_ms();
    let job = Job {
        id: id.clone(),
        tenant: t,
        keyset: q.keyset,
        state: JobState::Queued,
        patients,
        batch_sha256: sha256_hex(&bytes),
        batch_bytes: bytes.len() as u64,
        submitted_unix_ms: now,
        updated_unix_ms: now,
        attempts: 0,
        error: None,
        message: None,
        result: None,
        evaluation_seconds: None,
    };
    // Batch, then record, then queue: a worker never sees a job whose inputs are missing.
    st.backend.blobs.put(&job.batch_blob(), bytes).await?;
    st.backend.jobs.create(&job).await?;
    if let Err(e) = st.backend.queue.push(&id).await {
        let _ = st.backend.blobs.delete(&job.batch_blob()).await;
        if let Ok(Some((mut j, rev))) = st.backend.jobs.get(&id).await {
            j.fail("not_queued", e.to_string());
            let _ = st.backend.jobs.update(&j, rev).await;
        }
        return Err(e.into());
    }
    Metrics::add(&st.metrics.submitted, 1);
    let mut r = (StatusCode::ACCEPTED, Json(serde_json::json!({ "job": id, "state": "queued" }))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/jobs/{id}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// The job if it exists and belongs to the tenant (404 otherwise, either way).
async fn own_job(st: &AppState, tenant: &str, id: &str) -> ApiResult<(Job, u64)> {
    if !super::store::valid_name(id) || id.len() > 64 {
        return Err(ApiError::not_found("job"));
    }
    match st.backend.jobs.get(id).await? {
        Some((j, rev)) if j.tenant == tenant && j.state != JobState::Deleted => Ok((j, rev)),
        _ => Err(ApiError::not_found("job")),
    }
}

async fn job_status(State(st): St, Tenant(t): Tenant, Path(id): Path<String>) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(own_job(&st, &t, &id).await?.0.status_json()))
}

async fn job_result(State(st): St, Tenant(t): Tenant, Path(id): Path<String>) -> ApiResult<Response> {
    let (job, _) = own_job(&st, &t, &id).await?;
    let r = match (&job.state, &job.result) {
        (JobState::Done, Some(r)) => r,
        (JobState::Failed, _) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "job_failed",
                format!("{}: {}", job.error.unwrap_or_default(), job.message.unwrap_or_default()),
            ))
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_ready",
                format!("job is {}", job.state.name()),
            ))
        }
    };
    let bytes = st.backend.blobs.get(&r.blob).await?.ok_or_else(|| ApiError::not_found("result"))?;
    if sha256_hex(&bytes) != r.sha256 {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "corrupt_result",
            "stored result does not match its digest",
        ));
    }
    Metrics::add(&st.metrics.bytes_out, bytes.len() as u64);
    let sha = HeaderValue::from_str(&r.sha256).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (header::ETAG, sha),
        ],
        bytes,
    )
        .into_response())
}

async fn delete_job(State(st): St, Tenant(t): Tenant, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let (mut job, mut rev) = own_job(&st, &t, &id).await?;
    // Compare-and-set: a worker publishing at the same moment either loses (and removes its
    // result) or wins and its result is removed here on the retry.
    for _ in 0..16 {
        let result = job.result.take();
        job.state = JobState::Deleted;
        job.updated_unix_ms = now_ms();
        if st.backend.jobs.update(&job, rev).await?.is_some() {
            st.backend.blobs.delete(&job.batch_blob()).await?;
            if let Some(r) = result {
                st.backend.blobs.delete(&r.blob).await?;
            }
            return Ok(StatusCode::NO_CONTENT);
        }
        (job, rev) = own_job(&st, &t, &id).await?;
    }
    Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "concurrent updates; retry"))
}
