//! `Client`: the hospital's side of the inference service, a wrapper over
//! `host_eval::service::client::Client` (the code `host-eval submit`, `fetch` and
//! `fetch-profile` run), its async calls driven by a tokio runtime owned by the object.

use crate::errors::{run, service_to_py, to_py, FileError};
use host_eval::service::client::Client as Inner;
use pyo3::prelude::*;
use std::path::PathBuf;
use std::time::Duration;

/// A connection to a `host-eval serve` service with a tenant's token.
#[pyclass(frozen, module = "clifhe._clifhe")]
pub struct Client {
    inner: Inner,
    rt: tokio::runtime::Runtime,
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (server, token_file, ca_cert=None))]
    fn new(server: &str, token_file: PathBuf, ca_cert: Option<PathBuf>) -> PyResult<Self> {
        let inner = Inner::new(server, &token_file, ca_cert.as_deref()).map_err(to_py)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| FileError::new_err(format!("cannot start the async runtime: {e}")))?;
        Ok(Self { inner, rt })
    }

    /// `host-eval submit`: uploads the key set's public material if the service lacks it,
    /// submits the batch, returns the job id.
    fn submit(&self, py: Python<'_>, keys_dir: PathBuf, batch: PathBuf) -> PyResult<String> {
        run(py, || {
            let bytes = host_eval::cli::fsio::read(&batch).map_err(to_py)?;
            self.rt
                .block_on(async {
                    let digest = self.inner.ensure_keyset(&keys_dir).await?;
                    self.inner.submit(&digest, bytes).await
                })
                .map_err(service_to_py)
        })
    }

    /// The job's state (JSON text of the service's answer).
    fn status(&self, py: Python<'_>, job: String) -> PyResult<String> {
        let v = run(py, || self.rt.block_on(self.inner.status(&job)).map_err(service_to_py))?;
        Ok(v.to_string())
    }

    /// `host-eval fetch`: waits for the job (at most `timeout` seconds), downloads and verifies
    /// its encrypted scores into `out_dir` (for `release`); returns the patient count.
    fn fetch(&self, py: Python<'_>, job: String, out_dir: PathBuf, timeout: f64) -> PyResult<usize> {
        let timeout = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::MAX);
        run(py, || {
            self.rt
                .block_on(self.inner.fetch(&job, &out_dir, timeout, false))
                .map_err(service_to_py)
        })
    }

    /// `host-eval fetch-profile`: the service model's input profile for the key set's preset
    /// in `layout` ("blade-major" or "blocks"), written to `out`.
    #[pyo3(signature = (keys_dir, out, layout = "blade-major"))]
    fn fetch_profile(&self, py: Python<'_>, keys_dir: PathBuf, out: PathBuf, layout: &str) -> PyResult<()> {
        let layout = crate::protocol::batch_layout(layout)?;
        run(py, || {
            let preset = host_eval::cli::keyset::KeySet::open(&keys_dir)
                .map_err(to_py)?
                .params
                .name()
                .to_string();
            let bytes = self.rt.block_on(self.inner.profile(&preset, layout)).map_err(service_to_py)?;
            host_eval::cli::fsio::write_atomic(&out, &bytes).map_err(to_py)
        })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Client>()
}
