//! Calling the host's models: `weir_sdk::infer::infer("fraud", &[Tensor::f32(..)])`.
//!
//! The host runs ONNX models declared in the pipeline file (`[models.NAME]`)
//! natively and batches concurrent calls to the same model. Put all the rows
//! of a batch into one call (use `#[weir_sdk::batch]`): one call with 512 rows
//! costs about what one call with 1 row does.
//!
//! ```ignore
//! use weir_sdk::infer::{infer, Tensor};
//!
//! let rows = features.len() / 16;
//! let out = infer("fraud", &[Tensor::f32("features", [rows, 16], features)])?;
//! let scores = out[0].as_f32().ok_or_else(|| weir_sdk::Error::msg("scores are not f32"))?;
//! ```
//!
//! Errors come back as [`InferError`] values (never traps); `?` turns one into
//! a [`crate::Error`], so a failed call sends the events to the dead-letter output.
//!
//! Outside WebAssembly (native unit tests) there is no host: install a stand-in
//! model with [`set_native_handler`].

use std::fmt;

use crate::__private::bindings::weir::plugin::inference as wit;

/// Tensor elements, row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// 32-bit floats (ONNX `float`).
    F32(Vec<f32>),
    /// 64-bit integers (ONNX `int64`: token ids, category codes...).
    I64(Vec<i64>),
}

/// A named tensor. `shape[0]` is the row (batch) dimension; the product of the
/// shape is the number of elements.
#[derive(Clone, Debug)]
#[repr(transparent)]
pub struct Tensor(wit::Tensor);

impl PartialEq for Tensor {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
            && self.0.shape == other.0.shape
            && match (&self.0.data, &other.0.data) {
                (wit::TensorData::F32(a), wit::TensorData::F32(b)) => a == b,
                (wit::TensorData::S64(a), wit::TensorData::S64(b)) => a == b,
                _ => false,
            }
    }
}

impl Tensor {
    /// An `f32` tensor.
    pub fn f32(name: impl Into<String>, shape: impl AsRef<[usize]>, data: Vec<f32>) -> Self {
        Self::new(name.into(), shape.as_ref(), wit::TensorData::F32(data))
    }

    /// An `i64` tensor.
    pub fn i64(name: impl Into<String>, shape: impl AsRef<[usize]>, data: Vec<i64>) -> Self {
        Self::new(name.into(), shape.as_ref(), wit::TensorData::S64(data))
    }

    fn new(name: String, shape: &[usize], data: wit::TensorData) -> Self {
        Self(wit::Tensor {
            name,
            shape: shape.iter().map(|&d| d as u32).collect(),
            data,
        })
    }

    /// The tensor's name (the model's input or output name).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The shape.
    pub fn shape(&self) -> Vec<usize> {
        self.0.shape.iter().map(|&d| d as usize).collect()
    }

    /// The number of rows (the first dimension).
    pub fn rows(&self) -> usize {
        self.0.shape.first().map_or(0, |&d| d as usize)
    }

    /// The elements, if they are `f32`.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.0.data {
            wit::TensorData::F32(v) => Some(v),
            wit::TensorData::S64(_) => None,
        }
    }

    /// The elements, if they are `i64`.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.0.data {
            wit::TensorData::S64(v) => Some(v),
            wit::TensorData::F32(_) => None,
        }
    }

    /// The elements, by value.
    pub fn into_data(self) -> TensorData {
        match self.0.data {
            wit::TensorData::F32(v) => TensorData::F32(v),
            wit::TensorData::S64(v) => TensorData::I64(v),
        }
    }
}

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InferError {
    /// No model of that name is declared in the pipeline.
    UnknownModel(String),
    /// Wrong input names, element type or shape for the model.
    InvalidInput(String),
    /// The runtime failed while running the model.
    Runtime(String),
    /// The host could not take the call (shutting down, or overloaded).
    Unavailable(String),
}

impl fmt::Display for InferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InferError::UnknownModel(m) => write!(f, "no model named `{m}` in the pipeline"),
            InferError::InvalidInput(m) => write!(f, "invalid model input: {m}"),
            InferError::Runtime(m) => write!(f, "model run failed: {m}"),
            InferError::Unavailable(m) => write!(f, "inference unavailable: {m}"),
        }
    }
}

impl std::error::Error for InferError {}

impl From<wit::InferError> for InferError {
    fn from(e: wit::InferError) -> Self {
        match e {
            wit::InferError::UnknownModel(m) => InferError::UnknownModel(m),
            wit::InferError::InvalidInput(m) => InferError::InvalidInput(m),
            wit::InferError::Runtime(m) => InferError::Runtime(m),
            wit::InferError::Unavailable(m) => InferError::Unavailable(m),
        }
    }
}

/// Runs the model `model` on `inputs` (one tensor per model input); returns
/// the model's declared outputs, each with as many rows as the inputs.
pub fn infer(model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, InferError> {
    imp::infer(model, inputs)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{InferError, Tensor, wit};

    pub(super) fn infer(model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, InferError> {
        // SAFETY: `Tensor` is `#[repr(transparent)]` over `wit::Tensor`, so a
        // slice of one is a slice of the other.
        let raw: &[wit::Tensor] =
            unsafe { std::slice::from_raw_parts(inputs.as_ptr().cast(), inputs.len()) };
        wit::infer(model, raw)
            .map(|out| out.into_iter().map(Tensor).collect())
            .map_err(InferError::from)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::cell::RefCell;

    use super::{InferError, Tensor};

    type Handler = Box<dyn Fn(&str, &[Tensor]) -> Result<Vec<Tensor>, InferError>>;

    thread_local! {
        static HANDLER: RefCell<Option<Handler>> = const { RefCell::new(None) };
    }

    pub(super) fn set(handler: Handler) {
        HANDLER.with(|h| *h.borrow_mut() = Some(handler));
    }

    pub(super) fn infer(model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, InferError> {
        HANDLER.with(|h| match &*h.borrow() {
            Some(handler) => handler(model, inputs),
            None => Err(InferError::Unavailable(
                "no host outside WebAssembly: install a stand-in with \
                 weir_sdk::infer::set_native_handler in your test"
                    .into(),
            )),
        })
    }
}

/// Native unit tests only: answers this thread's `infer` calls with `handler`
/// (a stand-in for the host's model).
#[cfg(not(target_arch = "wasm32"))]
pub fn set_native_handler(
    handler: impl Fn(&str, &[Tensor]) -> Result<Vec<Tensor>, InferError> + 'static,
) {
    imp::set(Box::new(handler));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_handler_answers_and_errors_convert() {
        assert!(matches!(infer("m", &[]), Err(InferError::Unavailable(_))));
        set_native_handler(|model, inputs| {
            if model != "double" {
                return Err(InferError::UnknownModel(model.into()));
            }
            let x = inputs[0]
                .as_f32()
                .ok_or(InferError::InvalidInput("f32".into()))?;
            Ok(vec![Tensor::f32(
                "y",
                inputs[0].shape(),
                x.iter().map(|v| v * 2.0).collect(),
            )])
        });
        let out = infer("double", &[Tensor::f32("x", [2, 1], vec![1.0, 3.0])]).unwrap();
        assert_eq!(out[0].as_f32(), Some(&[2.0, 6.0][..]));
        assert_eq!(out[0].rows(), 2);
        let err = infer("nope", &[]).unwrap_err();
        let as_sdk: crate::Error = err.into();
        assert_eq!(as_sdk.message(), "no model named `nope` in the pipeline");
    }
}
