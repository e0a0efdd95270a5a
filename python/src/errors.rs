//! The exception hierarchy and the one mapping from the library's errors to it, plus the guard
//! every binding runs its work under (GIL released, panics caught: a Rust panic becomes an
//! `InternalError`, never an abort of the interpreter).

use host_eval::cli::CliError;
use host_eval::data::DataError;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(_clifhe, ClifheError, PyException, "Base class of every clifhe error.");
create_exception!(
    _clifhe,
    InputError,
    ClifheError,
    "Unusable input: a scan, features, a model file, an array of the wrong shape, a non-finite value, \
     an argument out of range (preset, level, patient count)."
);
create_exception!(_clifhe, FileError, ClifheError, "A file or directory could not be read or written.");
create_exception!(
    _clifhe,
    ProtocolError,
    ClifheError,
    "A key, ciphertext, profile, record or score file that does not parse or does not fit the others."
);
create_exception!(
    _clifhe,
    KeyMismatch,
    ProtocolError,
    "Objects made for another key set or preset, or a key set lacking the evaluation keys a step needs."
);
create_exception!(
    _clifhe,
    KeyExists,
    ClifheError,
    "keygen refused to overwrite an existing secret key (pass force=True or rotate=True)."
);
create_exception!(
    _clifhe,
    BudgetExhausted,
    ClifheError,
    "release refused: the key set's leakage budget cannot pay for it; rotate the keys."
);
create_exception!(
    _clifhe,
    ServiceError,
    ClifheError,
    "The inference service could not be reached, refused a request, or a job failed."
);
create_exception!(
    _clifhe,
    InternalError,
    ClifheError,
    "The encryption core or the evaluator refused an operation, or the library panicked (a bug)."
);

/// The exception of a library error, with the command line's own message.
pub fn to_py(e: CliError) -> PyErr {
    let msg = e.to_string();
    match e {
        CliError::Io { .. } => FileError::new_err(msg),
        CliError::Corrupt { .. } | CliError::InconsistentKeys { .. } => ProtocolError::new_err(msg),
        CliError::PresetMismatch { .. } | CliError::WrongSecretKey { .. } | CliError::MissingEvalKeys { .. } => KeyMismatch::new_err(msg),
        CliError::KeyExists { .. } => KeyExists::new_err(msg),
        CliError::BudgetSpent { .. } => BudgetExhausted::new_err(msg),
        CliError::Crypto(_) | CliError::Eval(_) => InternalError::new_err(msg),
        _ => InputError::new_err(msg),
    }
}

/// A loader's error: a file that cannot be read is a `FileError`, anything about its contents an
/// `InputError`.
pub fn data_to_py(e: DataError) -> PyErr {
    match e {
        DataError::Io { .. } => FileError::new_err(e.to_string()),
        other => InputError::new_err(other.to_string()),
    }
}

/// A service call's error: the server unreachable or refusing is a `ServiceError`; local
/// problems (a key set, a file) keep their own type.
pub fn service_to_py(e: CliError) -> PyErr {
    match &e {
        CliError::Io { action: "reach", .. } | CliError::BadInput { .. } => ServiceError::new_err(e.to_string()),
        _ => to_py(e),
    }
}

/// The text of a caught panic's payload.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs `f` without the GIL, catching panics: `f` only touches Rust data, so other Python
/// threads run meanwhile.
pub fn run<T: Send>(py: Python<'_>, f: impl FnOnce() -> PyResult<T> + Send) -> PyResult<T> {
    match py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))) {
        Ok(r) => r,
        Err(p) => Err(InternalError::new_err(format!(
            "internal error (a bug in clifhe, please report it): {}",
            panic_message(p.as_ref())
        ))),
    }
}

/// Registers the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ClifheError", py.get_type::<ClifheError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("FileError", py.get_type::<FileError>())?;
    m.add("ProtocolError", py.get_type::<ProtocolError>())?;
    m.add("KeyMismatch", py.get_type::<KeyMismatch>())?;
    m.add("KeyExists", py.get_type::<KeyExists>())?;
    m.add("BudgetExhausted", py.get_type::<BudgetExhausted>())?;
    m.add("ServiceError", py.get_type::<ServiceError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}
