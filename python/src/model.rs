//! `Model`: the GNN model file (`clifhe_std::gnn::GnnModel`), its plaintext forward pass (the
//! reference the encrypted scores are checked against, as `host-eval predict` runs it) and its
//! versioned JSON.

use crate::errors::{run, to_py, InputError};
use clifhe_core::multivector::Multivector;
use clifhe_std::gnn::{GnnError, GnnModel, InputBox};
use host_eval::cli::CliError;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;
use std::path::{Path, PathBuf};

/// Rows of 8 finite features (shape (n, 8)) as multivectors.
pub fn rows(features: &PyReadonlyArray2<'_, f64>) -> PyResult<Vec<[f64; 8]>> {
    let a = features.as_array();
    if a.shape()[1] != 8 {
        return Err(InputError::new_err(format!(
            "features must have 8 columns (scalar, e1, e2, e3, e12, e13, e23, e123); got shape {:?}",
            a.shape()
        )));
    }
    let mut out = Vec::with_capacity(a.shape()[0]);
    for (i, r) in a.rows().into_iter().enumerate() {
        let mut f = [0.0; 8];
        for (o, v) in f.iter_mut().zip(r.iter()) {
            *o = *v;
        }
        if let Some(k) = f.iter().position(|v| !v.is_finite()) {
            return Err(InputError::new_err(format!(
                "features row {i}: component {} is not a finite number",
                host_eval::cli::inputs::COMPONENTS[k]
            )));
        }
        out.push(f);
    }
    Ok(out)
}

fn mvs(features: &PyReadonlyArray2<'_, f64>) -> PyResult<Vec<Multivector>> {
    Ok(rows(features)?.into_iter().map(Multivector::new).collect())
}

/// The model-file operations of both model classes (`Model`, `EquivariantModel`): one
/// implementation of load, parse, render and save over the two file kinds.
pub trait ModelFile: Sized + Send + Sync {
    /// Reads and validates a model file.
    fn read(path: &Path) -> Result<Self, CliError>;
    /// Parses and validates a model document.
    fn parse(text: &str) -> Result<Self, GnnError>;
    /// The model document.
    fn render(&self) -> Result<String, GnnError>;
}

impl ModelFile for GnnModel {
    fn read(path: &Path) -> Result<Self, CliError> {
        host_eval::cli::profile::read_model(path)
    }
    fn parse(text: &str) -> Result<Self, GnnError> {
        Self::from_json(text)
    }
    fn render(&self) -> Result<String, GnnError> {
        self.to_json()
    }
}

/// [`ModelFile::read`] without the GIL, errors as Python exceptions.
pub fn load<T: ModelFile>(py: Python<'_>, path: &Path) -> PyResult<T> {
    run(py, || T::read(path).map_err(to_py))
}

/// [`ModelFile::parse`] without the GIL.
pub fn parse<T: ModelFile>(py: Python<'_>, text: &str) -> PyResult<T> {
    run(py, || T::parse(text).map_err(|e| to_py(CliError::Model(e))))
}

/// [`ModelFile::render`].
pub fn render<T: ModelFile>(m: &T) -> PyResult<String> {
    m.render().map_err(|e| to_py(CliError::Model(e)))
}

/// The document written atomically to `path`.
pub fn save<T: ModelFile>(py: Python<'_>, m: &T, path: &Path) -> PyResult<()> {
    let text = render(m)?;
    run(py, || host_eval::cli::fsio::write_atomic(path, text.as_bytes()).map_err(to_py))
}

/// A trained GNN model (the model file of `host-eval train`).
#[pyclass(frozen, module = "clifhe._clifhe")]
pub struct Model {
    pub inner: GnnModel,
}

#[pymethods]
impl Model {
    /// Reads and validates a model file.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        Ok(Self { inner: load(py, &path)? })
    }

    /// Parses and validates a model document.
    #[staticmethod]
    fn from_json(py: Python<'_>, text: String) -> PyResult<Self> {
        Ok(Self { inner: parse(py, &text)? })
    }

    /// The model document (JSON text, the file format `train` writes).
    fn to_json(&self) -> PyResult<String> {
        render(&self.inner)
    }

    /// Writes the model file atomically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        save(py, &self.inner, &path)
    }

    /// Class scores, shape (n, classes), of feature rows of shape (n, 8).
    fn scores<'py>(&self, py: Python<'py>, features: PyReadonlyArray2<'py, f64>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let xs = mvs(&features)?;
        let c = self.inner.classes();
        let flat: Vec<f64> = run(py, || Ok(xs.iter().flat_map(|x| self.inner.forward(x)).collect()))?;
        let a = Array2::from_shape_vec((xs.len(), c), flat).map_err(|e| InputError::new_err(e.to_string()))?;
        Ok(a.into_pyarray(py))
    }

    /// The predicted class (argmax of the scores) of each row.
    fn classify(&self, py: Python<'_>, features: PyReadonlyArray2<'_, f64>) -> PyResult<Vec<usize>> {
        let xs = mvs(&features)?;
        run(py, || Ok(xs.iter().map(|x| self.inner.predict(x)).collect()))
    }

    /// Whether each row lies inside the model's public input box (outside: scores are extrapolated).
    fn in_box(&self, features: PyReadonlyArray2<'_, f64>) -> PyResult<Vec<bool>> {
        let b = self.inner.input_box();
        Ok(mvs(&features)?.iter().map(|x| b.contains(x)).collect())
    }

    /// Largest |value| the encrypted evaluation materialises on these rows.
    fn max_abs_intermediate(&self, features: PyReadonlyArray2<'_, f64>) -> PyResult<f64> {
        Ok(self.inner.max_abs_intermediate(&mvs(&features)?))
    }

    #[getter]
    fn classes(&self) -> usize {
        self.inner.classes()
    }

    #[getter]
    fn labels(&self) -> Vec<String> {
        self.inner.label_names().to_vec()
    }

    /// [1, m_1, ..., m_L, classes].
    #[getter]
    fn topology(&self) -> Vec<usize> {
        self.inner.topology().to_vec()
    }

    /// Multiplicative depth of the encrypted evaluation.
    #[getter]
    fn depth(&self) -> usize {
        self.inner.depth()
    }

    /// (center, half_width) of the public input box.
    #[getter]
    fn input_box(&self) -> ([f64; 8], [f64; 8]) {
        let b = self.inner.input_box();
        (b.center, b.half_width)
    }

    /// The preprocessing pipeline the model records (JSON text), or None (model format 1, 2).
    #[getter]
    fn preprocessing(&self) -> Option<String> {
        self.inner.preprocessing().and_then(|p| serde_json::to_string(p).ok())
    }

    fn __repr__(&self) -> String {
        format!("Model(topology={:?}, labels={:?})", self.inner.topology(), self.inner.label_names())
    }
}

/// The input box training records for these feature rows (`InputBox::from_samples`).
#[pyfunction]
pub fn input_box_from_samples(features: PyReadonlyArray2<'_, f64>, margin: f64) -> PyResult<([f64; 8], [f64; 8])> {
    let b = InputBox::from_samples(&mvs(&features)?, margin).map_err(|e| to_py(CliError::Model(e)))?;
    Ok((b.center, b.half_width))
}
