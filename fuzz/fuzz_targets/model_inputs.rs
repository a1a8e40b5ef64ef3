//! The checks of a plugin's inputs to a model (`inference/model.rs`,
//! `check_inputs`: what `Model::check` runs on every `infer` call before the
//! batcher takes it), on the names, element types, shapes (any `u32` dims,
//! as the WIT contract carries them) and element counts a hostile plugin
//! chooses, against models with any inputs (fixed and dynamic dims).
//!
//! Checked against a plain statement of the rules: accepted exactly when
//! every input is given once, by a name the model has, with its element
//! type, a shape that fits its dims and whose product (computed without
//! overflow) is the number of elements given, all with the same row count,
//! at least one row; then the tensors come back unchanged in the model's
//! order with that row count. Refusals are `InvalidInput` with a message
//! naming the model or the tensor. Never a panic, and nothing allocated from
//! a claimed shape.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use weir::fuzzing::{ElemType, TensorSpec, check_inputs};
use weir::inference::{InferError, Tensor, TensorData};

const NAMES: [&str; 4] = ["x", "y", "input.1", ""];
/// Elements a case may really allocate, all tensors together.
const MAX_ELEMENTS: usize = 1 << 18;

#[derive(Arbitrary, Debug)]
enum Name {
    Pool(u8),
    Own(String),
}

impl Name {
    fn get(&self) -> String {
        match self {
            Name::Pool(i) => NAMES[usize::from(*i) % NAMES.len()].to_owned(),
            Name::Own(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Spec {
    name: Name,
    int64: bool,
    /// Negative: dynamic (-1), as the loader records it.
    dims: Vec<i64>,
}

#[derive(Arbitrary, Debug)]
struct Given {
    name: Name,
    int64: bool,
    shape: Vec<u32>,
    /// Give as many elements as the shape holds (when it is small), else `len`.
    exact: bool,
    len: u16,
}

#[derive(Arbitrary, Debug)]
struct Case {
    specs: Vec<Spec>,
    given: Vec<Given>,
}

fn product(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// The rules, stated plainly.
fn acceptable(specs: &[TensorSpec], given: &[Tensor]) -> bool {
    for (i, t) in given.iter().enumerate() {
        if given[..i].iter().any(|o| o.name == t.name) {
            return false;
        }
        if !specs.iter().any(|s| s.name == t.name) {
            return false;
        }
    }
    let mut rows = None;
    for s in specs {
        let Some(t) = given.iter().find(|t| t.name == s.name) else {
            return false;
        };
        if product(&t.shape) != Some(t.data.len()) {
            return false;
        }
        let elem = match t.data {
            TensorData::F32(_) => ElemType::F32,
            TensorData::I64(_) => ElemType::I64,
        };
        if elem != s.elem || t.shape.len() != s.dims.len() {
            return false;
        }
        if !t
            .shape
            .iter()
            .zip(&s.dims)
            .all(|(&got, &want)| want < 0 || i64::try_from(got) == Ok(want))
        {
            return false;
        }
        let r = t.shape.first().copied().unwrap_or(0);
        if rows.is_some_and(|rows| rows != r) {
            return false;
        }
        rows = Some(r);
    }
    rows.unwrap_or(0) > 0
}

fuzz_target!(|case: Case| {
    let mut specs: Vec<TensorSpec> = Vec::new();
    for s in &case.specs {
        let name = s.name.get();
        // A model's inputs have distinct names (ONNX requires it).
        if specs.iter().any(|o| o.name == name) {
            continue;
        }
        specs.push(TensorSpec {
            name,
            elem: if s.int64 {
                ElemType::I64
            } else {
                ElemType::F32
            },
            dims: s.dims.iter().map(|&d| d.max(-1)).collect(),
        });
    }
    let mut budget = MAX_ELEMENTS;
    let given: Vec<Tensor> = case
        .given
        .iter()
        .map(|g| {
            let shape: Vec<usize> = g.shape.iter().map(|&d| d as usize).collect();
            let want = match product(&shape) {
                Some(n) if g.exact && n <= 1 << 16 => n,
                _ => usize::from(g.len),
            };
            let len = if want <= budget { want } else { 0 };
            budget -= len;
            let name = g.name.get();
            if g.int64 {
                Tensor::i64(name, shape, vec![7; len])
            } else {
                Tensor::f32(name, shape, vec![0.5; len])
            }
        })
        .collect();

    let ok = acceptable(&specs, &given);
    match check_inputs("m", &specs, given.clone()) {
        Ok((ordered, rows)) => {
            assert!(ok, "accepted what the rules refuse");
            assert!(rows > 0);
            assert_eq!(ordered.len(), specs.len());
            for (t, s) in ordered.iter().zip(&specs) {
                assert_eq!(t.name, s.name);
                let same = given.iter().find(|g| g.name == t.name);
                assert_eq!(Some(t), same, "a tensor changed");
                assert_eq!(t.rows(), rows);
                // What the batcher derives: elements per row times rows.
                let per_row = product(t.shape.get(1..).unwrap_or_default());
                assert_eq!(
                    per_row.and_then(|p| p.checked_mul(rows)),
                    Some(t.data.len())
                );
            }
        }
        Err(InferError::InvalidInput(why)) => {
            assert!(!ok, "refused what the rules accept: {why}");
            assert!(
                why.starts_with("model `m`: ") || why.starts_with("tensor `"),
                "{why}"
            );
        }
        Err(other) => panic!("not an InvalidInput: {other:?}"),
    }
});
