//! Errors of the GNN: model files, training inputs, metrics.

use std::fmt;

#[derive(Debug)]
#[non_exhaustive]
pub enum GnnError {
    /// Reading or writing a model file failed.
    Io(std::io::Error),
    /// The file is not valid JSON for the model schema.
    Json(serde_json::Error),
    /// The file's `format_version` is not one this build reads.
    UnsupportedVersion { found: u32, supported: u32 },
    /// The file parsed but is inconsistent (shapes, non-finite values, ...); the message says what.
    InvalidModel(String),
    /// Training or evaluation input is unusable (empty, label out of range, non-finite feature).
    InvalidInput(String),
}

impl fmt::Display for GnnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "model file i/o: {e}"),
            Self::Json(e) => write!(f, "model file is not valid JSON for the GNN schema: {e}"),
            Self::UnsupportedVersion { found, supported } => {
                write!(
                    f,
                    "model file format_version {found} is not supported (this build reads {supported})"
                )
            }
            Self::InvalidModel(m) => write!(f, "invalid model: {m}"),
            Self::InvalidInput(m) => write!(f, "invalid input: {m}"),
        }
    }
}

impl std::error::Error for GnnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Json(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for GnnError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<serde_json::Error> for GnnError {
    fn from(e: serde_json::Error) -> Self {
        Self::Json(e)
    }
}
