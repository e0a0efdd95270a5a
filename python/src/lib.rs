//! `clifhe._clifhe`: the Python extension behind the `clifhe` package. Every function is a thin
//! wrapper over the library calls the `host-eval` command line makes (`host_eval::cli`,
//! `host_eval::data`, `host_eval::service::client`): no step of the protocol is re-implemented
//! here. Reports cross the boundary as JSON text (the command line's own `--json` shapes), which
//! the pure-Python layer (`clifhe/__init__.py`) parses. Work runs without the GIL and under a
//! panic guard ([`errors::run`]).

mod equivariant;
mod errors;
mod model;
mod protocol;
mod service;

use clifhe_std::preprocess::{Intensity, Pipeline};
use errors::{data_to_py, run, to_py, InputError};
use host_eval::data::Volume;
use numpy::ndarray::{Array3, ShapeBuilder};
use numpy::{IntoPyArray, PyArray1, PyArray3, PyReadonlyArray3};
use pyo3::prelude::*;

/// A 3D volume indexed `volume[x, y, z]` as the Rust `Volume` holds it (x fastest): the
/// Fortran-order flattening of the array.
fn volume_of(data: Vec<f32>, dims: [usize; 3], spacing_mm: [f64; 3]) -> Volume {
    Volume { dims, spacing_mm, data }
}

fn flatten_f<T: Copy>(a: &numpy::ndarray::ArrayView3<'_, T>, cast: impl Fn(T) -> f32) -> Vec<f32> {
    // Iterating the reversed-axes view in logical order visits x fastest, then y, then z.
    a.t().iter().map(|&v| cast(v)).collect()
}

/// Features of a volume (`dims` x-fastest voxels) after `pipeline`, else `intensity_scale` alone.
fn features_of_volume<'py>(
    py: Python<'py>,
    v: Volume,
    intensity_scale: f64,
    pipeline: Option<String>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let f = run(py, || {
        let p = pipeline_of(pipeline.as_deref())?.unwrap_or_else(|| Pipeline::scale(intensity_scale));
        host_eval::cli::scan::volume_features(&v, &p, "array").map_err(to_py)
    })?;
    Ok(PyArray1::from_slice(py, &f))
}

/// Features of a volume with float32 voxels (`volume[x, y, z]`).
#[pyfunction]
#[pyo3(signature = (volume, spacing_mm, intensity_scale, pipeline=None))]
fn features_f32<'py>(
    py: Python<'py>,
    volume: PyReadonlyArray3<'py, f32>,
    spacing_mm: [f64; 3],
    intensity_scale: f64,
    pipeline: Option<String>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let a = volume.as_array();
    let v = volume_of(flatten_f(&a, |x| x), [a.shape()[0], a.shape()[1], a.shape()[2]], spacing_mm);
    features_of_volume(py, v, intensity_scale, pipeline)
}

/// Features of a volume with float64 voxels, converted to float32 as every scan loader does.
#[pyfunction]
#[pyo3(signature = (volume, spacing_mm, intensity_scale, pipeline=None))]
fn features_f64<'py>(
    py: Python<'py>,
    volume: PyReadonlyArray3<'py, f64>,
    spacing_mm: [f64; 3],
    intensity_scale: f64,
    pipeline: Option<String>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let a = volume.as_array();
    let v = volume_of(flatten_f(&a, |x| x as f32), [a.shape()[0], a.shape()[1], a.shape()[2]], spacing_mm);
    features_of_volume(py, v, intensity_scale, pipeline)
}

/// A pipeline given from Python: a preset name (`medmnist`, `raw`, `ct`, `mr`), a JSON file's
/// path, or the JSON text itself (what `Model.preprocessing` returns), read exactly as the
/// command line's `--pipeline` (JSON text is validated the same way).
fn pipeline_of(arg: Option<&str>) -> PyResult<Option<Pipeline>> {
    let Some(arg) = arg else { return Ok(None) };
    if arg.trim_start().starts_with('{') {
        let p: Pipeline = serde_json::from_str(arg).map_err(|e| InputError::new_err(format!("pipeline: {e}")))?;
        p.validate().map_err(|e| InputError::new_err(e.to_string()))?;
        return Ok(Some(p));
    }
    host_eval::cli::labelled::read_pipeline(arg).map(Some).map_err(to_py)
}

/// The canonical JSON of a pipeline argument (preset name, JSON file path or JSON text), as a
/// model file records it.
#[pyfunction]
fn pipeline_json(arg: &str) -> PyResult<String> {
    let p = pipeline_of(Some(arg))?.ok_or_else(|| InputError::new_err("no pipeline"))?;
    serde_json::to_string(&p).map_err(|e| InputError::new_err(e.to_string()))
}

type VolumeArray<'py> = (Bound<'py, PyArray3<f32>>, (f64, f64, f64));

/// A `Volume` as `(array[x, y, z], spacing_mm)`: Fortran order, no copy of the voxels.
fn to_array<'py>(py: Python<'py>, v: Volume, what: &str) -> PyResult<VolumeArray<'py>> {
    let [nx, ny, nz] = v.dims;
    let s = v.spacing_mm;
    let a = Array3::from_shape_vec((nx, ny, nz).f(), v.data)
        .map_err(|e| InputError::new_err(format!("{what}: volume of {nx}x{ny}x{nz} voxels: {e}")))?;
    Ok((a.into_pyarray(py), (s[0], s[1], s[2])))
}

/// Loads a scan with the command line's loaders: `(volume[x, y, z] float32, spacing_mm)`.
#[pyfunction]
fn load_scan(py: Python<'_>, spec: String) -> PyResult<VolumeArray<'_>> {
    let v = run(py, || host_eval::data::load_volume(&spec).map_err(data_to_py))?;
    to_array(py, v, &spec)
}

/// Patient `index` of class `label` (0 healthy, 1 benign, 2 malignant) of the built-in phantom
/// dataset with `seed` (`host-eval train`/`demo` without `--dataset`).
/// `max_tilt_deg`: the patient turned about a random axis by up to that angle (0: upright).
#[pyfunction]
#[pyo3(signature = (label, index, seed, max_tilt_deg=0.0))]
fn phantom(py: Python<'_>, label: u32, index: u64, seed: u64, max_tilt_deg: f64) -> PyResult<VolumeArray<'_>> {
    use host_eval::phantom::{generate, PhantomClass, PhantomConfig};
    let class = PhantomClass::from_label(label)
        .ok_or_else(|| InputError::new_err(format!("phantom class {label}: 0 healthy, 1 benign or 2 malignant")))?;
    if !(0.0..=180.0).contains(&max_tilt_deg) {
        return Err(InputError::new_err("max_tilt_deg is an angle in degrees from 0 to 180"));
    }
    let cfg = PhantomConfig {
        seed,
        max_tilt_deg,
        ..PhantomConfig::default()
    };
    let v = run(py, || Ok(generate(&cfg, class, index)))?;
    to_array(py, v, "phantom")
}

/// Features of one scan file or dataset sample exactly as `encrypt --input` / `predict --input`
/// / `features --input` compute them (loader, pipeline, checks); without a pipeline, the rule
/// of models that record none.
#[pyfunction]
#[pyo3(signature = (spec, pipeline=None))]
fn scan_features<'py>(py: Python<'py>, spec: String, pipeline: Option<String>) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let f = run(py, || {
        let p = pipeline_of(pipeline.as_deref())?;
        host_eval::cli::scan::features_of(&spec, p.as_ref()).map_err(to_py)
    })?;
    Ok(PyArray1::from_slice(py, &f))
}

/// The intensity divisor of the rule for models that record no pipeline (255 for MedMNIST
/// `.npz`, else 1: `scan::legacy_pipeline`).
#[pyfunction]
fn default_intensity_scale(spec: &str) -> f64 {
    match host_eval::cli::scan::legacy_pipeline(spec).intensity {
        Intensity::Scale { divisor } => divisor,
        _ => 1.0,
    }
}

/// Names of the 8 feature components, in order.
#[pyfunction]
fn components() -> Vec<&'static str> {
    host_eval::cli::inputs::COMPONENTS.to_vec()
}

#[pymodule]
fn _clifhe(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(features_f32, m)?)?;
    m.add_function(wrap_pyfunction!(features_f64, m)?)?;
    m.add_function(wrap_pyfunction!(load_scan, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline_json, m)?)?;
    m.add_function(wrap_pyfunction!(phantom, m)?)?;
    m.add_function(wrap_pyfunction!(scan_features, m)?)?;
    m.add_function(wrap_pyfunction!(default_intensity_scale, m)?)?;
    m.add_function(wrap_pyfunction!(components, m)?)?;
    m.add_class::<model::Model>()?;
    m.add_class::<equivariant::EquivariantModel>()?;
    protocol::register(m)?;
    service::register(m)?;
    m.add("MODEL_FORMAT_VERSION", clifhe_std::gnn::FORMAT_VERSION)?;
    m.add(
        "OLDEST_READABLE_MODEL_FORMAT_VERSION",
        clifhe_std::gnn::OLDEST_READABLE_FORMAT_VERSION,
    )?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
