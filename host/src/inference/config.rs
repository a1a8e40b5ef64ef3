//! `[onnxruntime]` and `[models.NAME]`: the models a pipeline's plugins may
//! call through the `inference` import.
//!
//! ```toml
//! [onnxruntime]                  # optional
//! library = "/opt/ort/libonnxruntime.so.1.31.1"
//!
//! [models.fraud]
//! path = "models/fraud.onnx"     # relative to the pipeline file's folder
//! inputs = ["features"]          # optional: default all of the model's
//! outputs = ["score"]            # optional: default all of the model's
//! max_batch = 256                # rows per model run
//! max_delay_ms = 2               # wait for more callers after the first
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::validate::{self, FieldError};

/// The largest `max_batch`.
pub const MAX_BATCH_ROWS: usize = 1 << 20;

/// `[onnxruntime]`: where the ONNX Runtime shared library is.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OnnxRuntimeConfig {
    /// Path of `libonnxruntime.so` (1.31.x; give the full versioned file
    /// name), relative to the pipeline file's folder. Absent: the
    /// `ORT_DYLIB_PATH` environment variable, else the library of the Python
    /// venv made by `scripts/setup.sh` (`$WEIR_VENV`, default
    /// `~/.cache/weir/venv`).
    #[serde(default)]
    pub library: Option<PathBuf>,
}

impl OnnxRuntimeConfig {
    /// Resolves `library` against the pipeline file's folder.
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        if let Some(library) = &mut self.library {
            *library = crate::paths::resolve(base_dir, library);
        }
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        match &self.library {
            Some(library) => validate::not_empty("library", library),
            None => Ok(()),
        }
    }
}

/// `[models.NAME]`: one ONNX model, served to plugins as `NAME`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The `.onnx` file, relative to the pipeline file's folder. Watched
    /// while the pipeline runs (with `[reload]`): a new version is loaded,
    /// dry-run and swapped in; a bad one is refused.
    pub path: PathBuf,
    /// The input names callers provide. Each must exist in the model, with
    /// element type float32 or int64. Default: all of the model's inputs.
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
    /// The outputs returned to callers. Each must exist in the model, with
    /// element type float32 or int64. Default: all of the model's outputs.
    #[serde(default)]
    pub outputs: Option<Vec<String>>,
    /// ONNX Runtime threads within one operator. Default 1.
    #[serde(default = "one")]
    pub intra_threads: usize,
    /// ONNX Runtime threads across operators. Default 1.
    #[serde(default = "one")]
    pub inter_threads: usize,
    /// Most rows per model run: concurrent callers are batched together up
    /// to this; a bigger call runs in chunks. Default 256.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// How long the first call of a batch waits for others, in
    /// milliseconds (0: no waiting, only calls already queued join).
    /// Default 2, at most 1000.
    #[serde(default = "default_max_delay_ms")]
    pub max_delay_ms: u64,
}

fn one() -> usize {
    1
}

fn default_max_batch() -> usize {
    256
}

fn default_max_delay_ms() -> u64 {
    2
}

impl ModelConfig {
    /// A model at `path` with every default.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            inputs: None,
            outputs: None,
            intra_threads: 1,
            inter_threads: 1,
            max_batch: default_max_batch(),
            max_delay_ms: default_max_delay_ms(),
        }
    }

    /// Resolves `path` against the pipeline file's folder.
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        self.path = crate::paths::resolve(base_dir, &self.path);
    }

    pub fn max_delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.max_delay_ms)
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        validate::not_empty("path", &self.path)?;
        for (field, names) in [("inputs", &self.inputs), ("outputs", &self.outputs)] {
            let Some(names) = names else { continue };
            if names.is_empty() {
                return Err(FieldError::new(
                    field,
                    "must name at least one tensor (leave it out for all of the model's)",
                ));
            }
            for (i, n) in names.iter().enumerate() {
                if n.is_empty() {
                    return Err(FieldError::new(field, format!("[{i}] must not be empty")));
                }
                if names[..i].contains(n) {
                    return Err(FieldError::new(field, format!("{n:?} is listed twice")));
                }
            }
        }
        validate::in_range("intra_threads", self.intra_threads, 1..=256)?;
        validate::in_range("inter_threads", self.inter_threads, 1..=256)?;
        validate::in_range("max_batch", self.max_batch, 1..=MAX_BATCH_ROWS)?;
        validate::at_most("max_delay_ms", self.max_delay_ms, 1000)
    }
}

/// Model names: what plugins pass to `infer`.
pub fn valid_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let c: ModelConfig = toml::from_str("path = \"m.onnx\"").expect("parse");
        assert_eq!(c, ModelConfig::new("m.onnx"));
        assert!(c.validate().is_ok());
        let bad = ModelConfig {
            max_batch: 0,
            ..c.clone()
        };
        assert_eq!(bad.validate().expect_err("bad").field(), "max_batch");
        let bad = ModelConfig {
            inputs: Some(vec!["a".into(), "a".into()]),
            ..c.clone()
        };
        assert_eq!(bad.validate().expect_err("bad").field(), "inputs");
        let bad = ModelConfig {
            max_delay_ms: 5000,
            ..c.clone()
        };
        assert_eq!(bad.validate().expect_err("bad").field(), "max_delay_ms");
        assert!(toml::from_str::<ModelConfig>("path = \"m\"\nbatch = 3").is_err());
        assert!(valid_model_name("fraud-v2.1"));
        assert!(!valid_model_name("a b"));
    }
}
