//! Native model inference: ONNX models declared in the pipeline file, run by
//! ONNX Runtime in the host, with Triton-style dynamic batching across callers.
//!
//! Plugins reach it through the WIT `inference` interface
//! ([`crate::host_api::infer`]); this module knows nothing of WebAssembly.

mod batcher;
mod config;
mod metrics;
pub(crate) mod model;
mod registry;
mod reload;
mod runtime;

use std::fmt;
use std::path::PathBuf;

pub use config::{ModelConfig, OnnxRuntimeConfig, valid_model_name};
pub use metrics::ModelMetrics;
pub use registry::ModelRegistry;
pub use reload::start_model_watch;

/// Why the models could not be loaded at start-up.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// ONNX Runtime's library is missing or unloadable (the message says
    /// what to install).
    #[error("{0}")]
    Library(String),
    /// A model file is missing, not ONNX, or does not fit its declaration.
    #[error("models.{model}.{field}: model `{model}` ({}): {reason}", path.display())]
    Model {
        model: String,
        /// The field of `[models.NAME]` at fault (`path`, `inputs`, `outputs`).
        field: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// Tensor elements, row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::I64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type's name, as ONNX spells it.
    pub fn type_name(&self) -> &'static str {
        match self {
            TensorData::F32(_) => "float32",
            TensorData::I64(_) => "int64",
        }
    }
}

/// A named tensor. `shape[0]` is the row (batch) dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl Tensor {
    pub fn f32(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Self {
        Self {
            name: name.into(),
            shape,
            data: TensorData::F32(data),
        }
    }

    pub fn i64(name: impl Into<String>, shape: Vec<usize>, data: Vec<i64>) -> Self {
        Self {
            name: name.into(),
            shape,
            data: TensorData::I64(data),
        }
    }

    /// Rows: the first dimension (0 for a scalar).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Checks that the shape's product is the data's length. The product is
    /// computed without overflow: a plugin chooses the shape, and one whose
    /// product wraps around to the length given must not pass.
    pub fn check(&self) -> Result<(), InferError> {
        let want = self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if want != Some(self.data.len()) {
            let holds = match want {
                Some(n) => format!("holds {n} elements"),
                None => "holds more elements than a usize counts".to_owned(),
            };
            return Err(InferError::InvalidInput(format!(
                "tensor `{}`: shape {:?} {holds} but {} were given",
                self.name,
                self.shape,
                self.data.len()
            )));
        }
        Ok(())
    }
}

/// Why an inference call failed. Returned to the plugin as a value.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum InferError {
    #[error("no model named `{0}` is declared in the pipeline")]
    UnknownModel(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("model run failed: {0}")]
    Runtime(String),
    #[error("inference unavailable: {0}")]
    Unavailable(String),
}

/// What a plugin's `infer` import calls. Implemented by the model registry;
/// blocking (plugins run on their own threads, never in the async runtime).
pub trait Infer: Send + Sync + fmt::Debug {
    fn infer(&self, model: &str, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, InferError>;
}

#[cfg(test)]
mod tests;
