//! `EquivariantModel`: the rotation-invariant model file (`train --arch equivariant`,
//! `clifhe_std::gnn::equivariant_model`), the channels it reads from a volume (the function
//! `host-eval predict` uses) and its plaintext scores.

use crate::errors::{run, to_py, InputError};
use crate::model;
use clifhe_core::multivector::Multivector;
use clifhe_std::gnn::equivariant_model::EquivariantModel as Inner;
use host_eval::cli::CliError;
use numpy::ndarray::{Array2, ArrayView3};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray3};
use pyo3::prelude::*;
use std::path::{Path, PathBuf};

/// Channel arrays of shape (n, K, 8) as multivectors, checked against the model's K and for
/// finite values.
fn channel_rows(model: &Inner, a: ArrayView3<'_, f64>) -> PyResult<Vec<Vec<Multivector>>> {
    let k = model.channels.count();
    if a.shape()[1] != k {
        return Err(InputError::new_err(format!(
            "channels must have shape (n, {k}, 8) for this model ({k} channels of 8 blades); got {:?}",
            a.shape()
        )));
    }
    channel_arrays(a)
}

/// Channel arrays of shape (n, K, 8) as multivectors, checked for the 8 blades and finite
/// values (the channel count is the caller's to check).
pub(crate) fn channel_arrays(a: ArrayView3<'_, f64>) -> PyResult<Vec<Vec<Multivector>>> {
    if a.shape()[2] != 8 {
        return Err(InputError::new_err(format!(
            "channels must have shape (n, K, 8); got {:?}",
            a.shape()
        )));
    }
    a.outer_iter()
        .enumerate()
        .map(|(p, patient)| {
            patient
                .outer_iter()
                .enumerate()
                .map(|(c, row)| {
                    let mut v = [0.0; 8];
                    for (o, x) in v.iter_mut().zip(row.iter()) {
                        if !x.is_finite() {
                            return Err(InputError::new_err(format!(
                                "patient {p}, channel {c}: a value is not a finite number"
                            )));
                        }
                        *o = *x;
                    }
                    Ok(Multivector::new(v))
                })
                .collect()
        })
        .collect()
}

impl model::ModelFile for Inner {
    fn read(path: &Path) -> Result<Self, CliError> {
        host_eval::cli::equivariant::read_model(path)
    }
    fn parse(text: &str) -> Result<Self, clifhe_std::gnn::GnnError> {
        Self::from_json(text)
    }
    fn render(&self) -> Result<String, clifhe_std::gnn::GnnError> {
        self.to_json()
    }
}

/// A trained equivariant model (the model file of `host-eval train --arch equivariant`).
#[pyclass(frozen, module = "clifhe._clifhe")]
pub struct EquivariantModel {
    inner: Inner,
}

#[pymethods]
impl EquivariantModel {
    /// Reads and validates a model file.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        Ok(Self {
            inner: model::load(py, &path)?,
        })
    }

    /// Parses and validates a model document.
    #[staticmethod]
    fn from_json(py: Python<'_>, text: String) -> PyResult<Self> {
        Ok(Self {
            inner: model::parse(py, &text)?,
        })
    }

    /// The model document (JSON text, the file format `train --arch equivariant` writes).
    fn to_json(&self) -> PyResult<String> {
        model::render(&self.inner)
    }

    /// Writes the model file atomically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        model::save(py, &self.inner, &path)
    }

    /// The channels, shape (K, 8), of a float32 volume `volume[x, y, z]`, through the model's
    /// preprocessing.
    fn channels_f32<'py>(
        &self,
        py: Python<'py>,
        volume: PyReadonlyArray3<'py, f32>,
        spacing_mm: [f64; 3],
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let a = volume.as_array();
        let dims = [a.shape()[0], a.shape()[1], a.shape()[2]];
        let v = crate::volume_of(crate::flatten_f(&a, |x| x), dims, spacing_mm);
        self.channels_of(py, &v, "array")
    }

    /// The channels, shape (K, 8), of one scan (`host-eval predict --input SPEC`'s loaders).
    fn scan_channels<'py>(&self, py: Python<'py>, spec: String) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let v = run(py, || host_eval::cli::scan::volume_of(&spec).map_err(to_py))?;
        self.channels_of(py, &v, &spec)
    }

    /// Class scores, shape (n, classes), of channel arrays of shape (n, K, 8).
    fn scores<'py>(&self, py: Python<'py>, channels: PyReadonlyArray3<'py, f64>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let xs = channel_rows(&self.inner, channels.as_array())?;
        let classes = self.inner.class_names.len();
        let mut out = Array2::<f64>::zeros((xs.len(), classes));
        for (row, x) in out.rows_mut().into_iter().zip(&xs) {
            let s = self.inner.scores(x).map_err(|e| to_py(CliError::Model(e)))?;
            for (o, v) in row.into_iter().zip(s) {
                *o = v;
            }
        }
        Ok(out.into_pyarray(py))
    }

    /// The predicted class of each patient's channels (n, K, 8).
    fn classify(&self, channels: PyReadonlyArray3<'_, f64>) -> PyResult<Vec<usize>> {
        channel_rows(&self.inner, channels.as_array())?
            .iter()
            .map(|x| self.inner.predict(x).map_err(|e| to_py(CliError::Model(e))))
            .collect()
    }

    #[getter]
    fn classes(&self) -> usize {
        self.inner.class_names.len()
    }

    #[getter]
    fn labels(&self) -> Vec<String> {
        self.inner.class_names.clone()
    }

    /// Channels per scan: the intensity shells, then the three principal axes and the interior
    /// depth channel if present.
    #[getter]
    fn channel_count(&self) -> usize {
        self.inner.channels.count()
    }

    /// Hidden channels per layer.
    #[getter]
    fn hidden(&self) -> Vec<usize> {
        self.inner.net.layers.iter().map(|l| l.linear.outputs).collect()
    }

    /// Whether each patient's channels (n, K, 8) lie in the recorded public input domain (all
    /// true for a model that records none).
    fn in_domain(&self, channels: PyReadonlyArray3<'_, f64>) -> PyResult<Vec<bool>> {
        Ok(channel_rows(&self.inner, channels.as_array())?
            .iter()
            .map(|x| self.inner.in_domain(x))
            .collect())
    }

    #[getter]
    fn shells(&self) -> usize {
        self.inner.channels.shells
    }

    #[getter]
    fn principal_axes(&self) -> bool {
        self.inner.channels.principal_axes
    }

    #[getter]
    fn depth(&self) -> bool {
        self.inner.channels.depth
    }

    /// "hard" or "tent": how the intensity shells weight a voxel.
    #[getter]
    fn shell_weighting(&self) -> &'static str {
        match self.inner.channels.shell_weighting {
            clifhe_core::multivector::channels::ShellWeighting::Hard => "hard",
            clifhe_core::multivector::channels::ShellWeighting::Tent => "tent",
        }
    }

    /// The recorded preprocessing pipeline as JSON text (`None` if the model records none).
    #[getter]
    fn preprocessing(&self) -> PyResult<Option<String>> {
        self.inner
            .preprocessing
            .as_ref()
            .map(|p| serde_json::to_string(p).map_err(|e| InputError::new_err(e.to_string())))
            .transpose()
    }

    fn __repr__(&self) -> String {
        format!(
            "EquivariantModel(classes={:?}, shells={}, principal_axes={}, depth={}, layers={})",
            self.inner.class_names,
            self.inner.channels.shells,
            self.inner.channels.principal_axes,
            self.inner.channels.depth,
            self.inner.net.layers.len()
        )
    }
}

impl EquivariantModel {
    fn channels_of<'py>(&self, py: Python<'py>, v: &host_eval::data::Volume, source: &str) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let channels = run(py, || {
            host_eval::cli::equivariant::model_channels(&self.inner, v, source).map_err(to_py)
        })?;
        let mut out = Array2::<f64>::zeros((channels.len(), 8));
        for (row, c) in out.rows_mut().into_iter().zip(&channels) {
            for (o, v) in row.into_iter().zip(c.coeffs()) {
                *o = v;
            }
        }
        Ok(out.into_pyarray(py))
    }
}
