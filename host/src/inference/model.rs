//! One loaded ONNX model: its session, what its inputs and outputs look
//! like, and its version (the sha256 of the file).

use std::path::PathBuf;
use std::sync::Mutex;

use ort::session::Session;
use ort::value::{DynValue, TensorElementType, ValueType};
use sha2::{Digest, Sha256};

use super::config::ModelConfig;
use super::{InferError, LoadError, Tensor, TensorData};

/// Element types the contract carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    F32,
    I64,
}

impl ElemType {
    pub fn name(self) -> &'static str {
        match self {
            ElemType::F32 => "float32",
            ElemType::I64 => "int64",
        }
    }

    fn of(data: &TensorData) -> Self {
        match data {
            TensorData::F32(_) => ElemType::F32,
            TensorData::I64(_) => ElemType::I64,
        }
    }
}

/// An input or output of the model: name, element type, dims (-1: dynamic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub elem: ElemType,
    pub dims: Vec<i64>,
}

impl TensorSpec {
    /// Elements per row for a request shape (the product of the non-row dims).
    fn describe(&self) -> String {
        format!("`{}` {} {:?}", self.name, self.elem.name(), self.dims)
    }
}

/// A loaded model. `run` is serialized by a lock (ONNX Runtime sessions are
/// not safe to run concurrently); the batcher is its one caller.
pub struct Model {
    pub name: String,
    pub path: PathBuf,
    /// sha256 of the file, hex.
    pub version: String,
    /// The inputs callers provide, in the order `run` takes them.
    pub inputs: Vec<TensorSpec>,
    /// The outputs returned to callers, in order.
    pub outputs: Vec<TensorSpec>,
    session: Mutex<Session>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("version", &self.version)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

fn spec_of(name: &str, dtype: &ValueType) -> Result<TensorSpec, String> {
    let ValueType::Tensor { ty, shape, .. } = dtype else {
        return Err(format!("`{name}` is not a tensor ({dtype:?})"));
    };
    let elem = match ty {
        TensorElementType::Float32 => ElemType::F32,
        TensorElementType::Int64 => ElemType::I64,
        other => {
            return Err(format!(
                "`{name}` has element type {other:?}; only float32 and int64 are supported"
            ));
        }
    };
    Ok(TensorSpec {
        name: name.to_owned(),
        elem,
        dims: shape.iter().map(|&d| if d < 0 { -1 } else { d }).collect(),
    })
}

/// Picks the declared names (or all) from the model's list, checking types.
fn select(
    all: &[(String, ValueType)],
    declared: Option<&Vec<String>>,
    what: &'static str,
) -> Result<Vec<TensorSpec>, (&'static str, String)> {
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    let chosen: Vec<&(String, ValueType)> = match declared {
        None => all.iter().collect(),
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for want in list {
                match all.iter().find(|(n, _)| n == want) {
                    Some(found) => out.push(found),
                    None => {
                        return Err((
                            what,
                            format!(
                                "the model has no {} named `{want}` (its {what}: {})",
                                what.trim_end_matches('s'),
                                names.join(", ")
                            ),
                        ));
                    }
                }
            }
            out
        }
    };
    chosen
        .into_iter()
        .map(|(n, t)| spec_of(n, t).map_err(|m| (what, m)))
        .collect()
}

impl Model {
    /// Loads `config.path` (already resolved) as model `name`.
    pub fn load(
        name: &str,
        config: &ModelConfig,
        env: &ort::environment::Environment,
    ) -> Result<Model, LoadError> {
        let path = &config.path;
        let err = |field: &'static str, reason: String| LoadError::Model {
            model: name.to_owned(),
            field,
            path: path.clone(),
            reason,
        };
        let bytes = std::fs::read(path)
            .map_err(|e| err("path", format!("cannot read the model file: {e}")))?;
        let version = hex::encode(Sha256::digest(&bytes));
        let session = Session::builder(env)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                b.with_intra_threads(config.intra_threads)
                    .map_err(|e| e.to_string())
            })
            .and_then(|b| {
                b.with_inter_threads(config.inter_threads)
                    .map_err(|e| e.to_string())
            })
            .and_then(|mut b| b.commit_from_memory(&bytes).map_err(|e| e.to_string()))
            .map_err(|e| err("path", format!("not a loadable ONNX model: {e}")))?;
        let all_inputs: Vec<(String, ValueType)> = session
            .inputs()
            .iter()
            .map(|o| (o.name().to_owned(), o.dtype().clone()))
            .collect();
        let all_outputs: Vec<(String, ValueType)> = session
            .outputs()
            .iter()
            .map(|o| (o.name().to_owned(), o.dtype().clone()))
            .collect();
        let inputs =
            select(&all_inputs, config.inputs.as_ref(), "inputs").map_err(|(f, m)| err(f, m))?;
        let outputs =
            select(&all_outputs, config.outputs.as_ref(), "outputs").map_err(|(f, m)| err(f, m))?;
        if inputs.is_empty() || outputs.is_empty() {
            return Err(err("path", "the model has no inputs or no outputs".into()));
        }
        if let Some(scalar) = inputs.iter().chain(&outputs).find(|s| s.dims.is_empty()) {
            return Err(err(
                "path",
                format!(
                    "`{}` is a scalar; inputs and outputs need a row (first) dimension",
                    scalar.name
                ),
            ));
        }
        Ok(Model {
            name: name.to_owned(),
            path: path.clone(),
            version,
            inputs,
            outputs,
            session: Mutex::new(session),
        })
    }

    /// The first 12 hex digits of the version.
    pub fn short_version(&self) -> &str {
        self.version.get(..12).unwrap_or(&self.version)
    }

    /// True when every input's row dimension is dynamic: calls can be
    /// concatenated and chunked. A fixed one runs each call alone.
    pub fn batchable(&self) -> bool {
        self.inputs.iter().all(|s| s.dims.first() == Some(&-1))
    }

    /// Checks one call alone and returns its tensors in input order, with
    /// the row count. Every problem is `InvalidInput`.
    pub fn check(&self, given: Vec<Tensor>) -> Result<(Vec<Tensor>, usize), InferError> {
        check_inputs(&self.name, &self.inputs, given)
    }

    /// Runs the model on tensors in input order (as [`Model::check`] returns
    /// them); returns the selected outputs in order.
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, InferError> {
        let runtime = |e: ort::Error| InferError::Runtime(format!("model `{}`: {e}", self.name));
        let mut values: Vec<(String, DynValue)> = Vec::with_capacity(inputs.len());
        for t in inputs {
            let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
            let value = match t.data {
                TensorData::F32(v) => ort::value::Tensor::from_array((shape, v))
                    .map_err(runtime)?
                    .into_dyn(),
                TensorData::I64(v) => ort::value::Tensor::from_array((shape, v))
                    .map_err(runtime)?
                    .into_dyn(),
            };
            values.push((t.name, value));
        }
        let mut session = self.session.lock().map_err(|_| {
            InferError::Runtime(format!("model `{}`: session lock poisoned", self.name))
        })?;
        let outputs = session.run(values).map_err(runtime)?;
        let mut result = Vec::with_capacity(self.outputs.len());
        for spec in &self.outputs {
            let value = outputs.get(&spec.name).ok_or_else(|| {
                InferError::Runtime(format!("model `{}`: no output `{}`", self.name, spec.name))
            })?;
            let tensor = match spec.elem {
                ElemType::F32 => {
                    let (shape, data) = value.try_extract_tensor::<f32>().map_err(runtime)?;
                    Tensor::f32(&spec.name, dims(shape), data.to_vec())
                }
                ElemType::I64 => {
                    let (shape, data) = value.try_extract_tensor::<i64>().map_err(runtime)?;
                    Tensor::i64(&spec.name, dims(shape), data.to_vec())
                }
            };
            result.push(tensor);
        }
        Ok(result)
    }

    /// One row of zeros shaped from the input metadata (dynamic dims: 1),
    /// run once: a new version must at least do this before it serves.
    pub fn dry_run(&self) -> Result<(), InferError> {
        let inputs = self
            .inputs
            .iter()
            .map(|s| {
                let shape: Vec<usize> = s
                    .dims
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| {
                        if d < 0 || i == 0 && d == 0 {
                            1
                        } else {
                            d as usize
                        }
                    })
                    .collect();
                let n = shape.iter().product();
                match s.elem {
                    ElemType::F32 => Tensor::f32(&s.name, shape, vec![0.0; n]),
                    ElemType::I64 => Tensor::i64(&s.name, shape, vec![0; n]),
                }
            })
            .collect();
        let out = self.run(inputs)?;
        if let Some(empty) = out.iter().find(|t| t.shape.is_empty()) {
            return Err(InferError::Runtime(format!(
                "output `{}` is a scalar: outputs need a row dimension",
                empty.name
            )));
        }
        Ok(())
    }
}

/// The checks of one call's inputs against a model's (`model` names it in
/// the errors): every input given once, by a name the model has, with the
/// element type it wants, a shape that fits its dims and holds exactly the
/// elements given, the same row count in all, at least one row. Returns the
/// tensors in `inputs` order with the row count; every problem is
/// `InvalidInput`.
pub fn check_inputs(
    model: &str,
    inputs: &[TensorSpec],
    mut given: Vec<Tensor>,
) -> Result<(Vec<Tensor>, usize), InferError> {
    let bad = |m: String| Err(InferError::InvalidInput(format!("model `{model}`: {m}")));
    for (i, t) in given.iter().enumerate() {
        if given[..i].iter().any(|o| o.name == t.name) {
            return bad(format!("input `{}` is given twice", t.name));
        }
        if !inputs.iter().any(|s| s.name == t.name) {
            return bad(format!(
                "no input named `{}` (inputs: {})",
                t.name,
                describe_inputs(inputs)
            ));
        }
    }
    let mut ordered = Vec::with_capacity(inputs.len());
    let mut rows = None;
    for spec in inputs {
        let Some(at) = given.iter().position(|t| t.name == spec.name) else {
            return bad(format!(
                "input `{}` is missing (inputs: {})",
                spec.name,
                describe_inputs(inputs)
            ));
        };
        let t = given.swap_remove(at);
        t.check()?;
        if ElemType::of(&t.data) != spec.elem {
            return bad(format!(
                "input `{}` is {}, the model wants {}",
                t.name,
                t.data.type_name(),
                spec.elem.name()
            ));
        }
        let fits = t.shape.len() == spec.dims.len()
            && t.shape
                .iter()
                .zip(&spec.dims)
                .all(|(&got, &want)| want < 0 || got as i64 == want);
        if !fits {
            return bad(format!(
                "input `{}` has shape {:?}, the model wants {:?} (-1: any)",
                t.name, t.shape, spec.dims
            ));
        }
        match rows {
            None => rows = Some(t.rows()),
            Some(r) if r != t.rows() => {
                return bad(format!(
                    "inputs disagree on the row count ({r} vs {} in `{}`)",
                    t.rows(),
                    t.name
                ));
            }
            Some(_) => {}
        }
        ordered.push(t);
    }
    let rows = rows.unwrap_or(0);
    if rows == 0 {
        return bad("a call needs at least one row".into());
    }
    Ok((ordered, rows))
}

fn describe_inputs(inputs: &[TensorSpec]) -> String {
    inputs
        .iter()
        .map(TensorSpec::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

fn dims(shape: &ort::value::Shape) -> Vec<usize> {
    shape.iter().map(|&d| d.max(0) as usize).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, dims: &[i64]) -> TensorSpec {
        TensorSpec {
            name: name.to_owned(),
            elem: ElemType::F32,
            dims: dims.to_vec(),
        }
    }

    /// fuzz/corpus/model_inputs/overflowing-shape: a shape whose product
    /// overflows (2^64 wraps to 0, the length given) was a panic with
    /// overflow checks and passed the check without them.
    #[test]
    fn a_shape_whose_product_overflows_is_refused() {
        let specs = [spec("x", &[-1, -1, -1, -1])];
        let big = 1usize << (usize::BITS / 4);
        let given = vec![Tensor::f32("x", vec![big; 4], Vec::new())];
        let Err(InferError::InvalidInput(why)) = check_inputs("m", &specs, given) else {
            panic!("an overflowing shape must be refused");
        };
        assert!(why.contains("more elements than a usize counts"), "{why}");
        // The same shape with its real element count is fine.
        let given = vec![Tensor::f32("x", vec![2, 3, 1, 1], vec![0.0; 6])];
        let (ordered, rows) = check_inputs("m", &specs, given).expect("valid");
        assert_eq!((ordered.len(), rows), (1, 2));
    }
}
