//! `weir:plugin/inference`: converts between the WIT tensors and the host's
//! [`crate::inference`] types. Every failure is a value (`infer-error`) for the
//! plugin, never a trap: a bad call fails that plugin's events, not the host.

use crate::inference::{InferError, Tensor, TensorData};
use crate::plugin::StoreState;

/// The `inference` host of one contract version (`$wit`: its generated
/// module; both versions have the same types under the same names).
macro_rules! inference_host {
    ($module:ident, $wit:ident) => {
        mod $module {
            use super::*;
            use crate::plugin::$wit as wit;

impl wit::Host for StoreState {
    fn infer(
        &mut self,
        model: String,
        inputs: Vec<wit::Tensor>,
    ) -> Result<Vec<wit::Tensor>, wit::InferError> {
        let Some(models) = &self.models else {
            return Err(to_wit_error(InferError::UnknownModel(model)));
        };
        let inputs = inputs.into_iter().map(from_wit).collect();
        match models.infer(&model, inputs) {
            Ok(outputs) => outputs.into_iter().map(to_wit).collect(),
            Err(err) => {
                tracing::debug!(stage = %self.stage, plugin = %self.plugin, %model, error = %err, "inference call failed");
                Err(to_wit_error(err))
            }
        }
    }
}

fn from_wit(t: wit::Tensor) -> Tensor {
    Tensor {
        name: t.name,
        shape: t.shape.into_iter().map(|d| d as usize).collect(),
        data: match t.data {
            wit::TensorData::F32(v) => TensorData::F32(v),
            wit::TensorData::S64(v) => TensorData::I64(v),
        },
    }
}

fn to_wit(t: Tensor) -> Result<wit::Tensor, wit::InferError> {
    let mut shape = Vec::with_capacity(t.shape.len());
    for d in &t.shape {
        let d = u32::try_from(*d).map_err(|_| {
            wit::InferError::Runtime(format!(
                "output `{}` has a dimension too large for the contract: {d}",
                t.name
            ))
        })?;
        shape.push(d);
    }
    Ok(wit::Tensor {
        name: t.name,
        shape,
        data: match t.data {
            TensorData::F32(v) => wit::TensorData::F32(v),
            TensorData::I64(v) => wit::TensorData::S64(v),
        },
    })
}

fn to_wit_error(err: InferError) -> wit::InferError {
    match err {
        InferError::UnknownModel(m) => wit::InferError::UnknownModel(m),
        InferError::InvalidInput(m) => wit::InferError::InvalidInput(m),
        InferError::Runtime(m) => wit::InferError::Runtime(m),
        InferError::Unavailable(m) => wit::InferError::Unavailable(m),
    }
}
        }
    };
}

inference_host!(v1, wit_inference);
inference_host!(v2, wit2_inference);
