//! The pipeline file: one TOML document describing a source, a micro-batch
//! policy, a chain of plugin stages, named outputs and a dead-letter output.
//!
//! ```toml
//! name = "quickstart"            # optional, default "pipeline"
//! plugin_dir = "plugins"         # optional, default "plugins"
//! cache_dir = ".weir-cache"      # optional, default ".weir-cache"
//! state_dir = ".weir-state"      # optional: keyed state, in <state_dir>/<name>
//!
//! [source]
//! type = "generate"              # generate | file | stdin | kafka
//! schema = "card-transactions"   # card-transactions | sized
//! rate = 2000                    # events/s; absent = as fast as possible
//! count = 100000                 # absent = unbounded
//!
//! [batch]
//! max_events = 1024
//! max_wait_ms = 50
//!
//! [[stages]]
//! name = "redact"
//! plugin = "pii-redact"          # <plugin_dir>/pii-redact.wasm
//! [stages.params]                # any table: the plugin's init parameters (JSON)
//! fields = ["card_number"]
//!
//! [stages.state]                 # optional: a keyed stage (crate::state)
//! key = "/card_id"               # or "$key"; ttl_secs, max_key_bytes, max_value_bytes
//!
//! [state]                        # optional: durability = "batch" | "interval"
//! [watermark]                    # optional: out_of_order_ms, idle_timeout_ms
//!
//! [outputs.default]              # required
//! type = "stdout"
//!
//! [outputs.alerts]
//! type = "file"
//! path = "out/alerts.jsonl"
//!
//! [dead_letter]                  # optional; absent = JSON lines on stderr
//! type = "file"
//! path = "out/dlq.jsonl"
//!
//! [models.fraud]                 # optional: ONNX models plugins may call
//! path = "models/fraud.onnx"     # see crate::inference::config
//! ```
//!
//! Relative paths (`plugin_dir`, `cache_dir`, a stage's `*.wasm` plugin and
//! granted directories, smoke files, file sources and sinks, model files,
//! `onnxruntime.library`) are relative to the folder of the pipeline file;
//! they are resolved once, when the file is loaded.
//!
//! The central structs here hold the pipeline's shape; each component owns
//! its own table's struct (sources in `crate::source`, sinks in
//! `crate::sink`, limits and grants in `crate::plugin`, the breaker in
//! `crate::pipeline`, models in `crate::inference`, the admin endpoint in
//! `crate::telemetry`), with a `validate()` whose errors name the field.
//! Loading reports errors as `file:line: field.path: message`.

mod error;
mod params;
mod stage;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use error::ConfigError;
use error::Document;
pub use stage::{BatchConfig, MAX_BATCH_EVENTS, StageConfig};

use crate::endpoint::EndpointError;
use crate::paths::resolve;
use crate::sink::{Sink, SinkConfig, StdoutSinkConfig};
use crate::source::{Source, SourceConfig};
use crate::validate::{self, FieldError, PathSegment};

/// A pipeline file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// The pipeline's name, for logs and metrics. Default `"pipeline"`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Where plugins named by `stages[].plugin` are found
    /// (`<plugin_dir>/<plugin>.wasm`). Relative to the pipeline file's
    /// folder. Default `"plugins"`.
    #[serde(default = "default_plugin_dir")]
    pub plugin_dir: PathBuf,
    /// Where compiled plugins are cached between runs. Relative to the
    /// pipeline file's folder. Default `".weir-cache"`.
    #[serde(default = "default_cache_dir")]
    pub cache_dir: PathBuf,
    /// Where keyed stages keep their state: the store is
    /// `<state_dir>/<name>`. Relative to the pipeline file's folder.
    /// Default `".weir-state"`.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// The state store (`[state]`): durability, changelog.
    #[serde(default)]
    pub state: crate::state::StateConfig,
    /// How event time advances (`[watermark]`).
    #[serde(default)]
    pub watermark: crate::state::WatermarkConfig,
    /// Where events come from (`[source]`, with a `type`).
    pub source: SourceConfig,
    /// How events are grouped into micro-batches for the stages (`[batch]`).
    #[serde(default)]
    pub batch: BatchConfig,
    /// The transform stages, applied in order (`[[stages]]`). May be empty.
    #[serde(default)]
    pub stages: Vec<StageConfig>,
    /// The named outputs (`[outputs.<name>]`, each with a `type`). Names use
    /// `a-z`, `0-9`, `_` and `-`; `default` is required and receives every
    /// event a plugin does not route elsewhere.
    #[serde(default)]
    pub outputs: BTreeMap<String, SinkConfig>,
    /// Where events that could not be processed go, with `weir.*` headers
    /// saying why (`[dead_letter]`, with a `type`). Absent: JSON lines on
    /// stderr.
    #[serde(default)]
    pub dead_letter: Option<SinkConfig>,
    /// Hot reload of plugins from `plugin_dir` while the pipeline runs
    /// (`[reload]`): on by default.
    #[serde(default)]
    pub reload: crate::plugin::ReloadConfig,
    /// Where ONNX Runtime's library is (`[onnxruntime]`); only read when
    /// `models` is not empty.
    #[serde(default)]
    pub onnxruntime: Option<crate::inference::OnnxRuntimeConfig>,
    /// ONNX models plugins may call by name (`[models.<name>]`): run
    /// natively, batched across callers, hot-swapped when the file changes.
    /// Names use letters, digits, `_`, `-` and `.`.
    #[serde(default)]
    pub models: BTreeMap<String, crate::inference::ModelConfig>,
    /// The admin HTTP endpoint (`[admin]`: `/metrics`, `/healthz`,
    /// `/readyz`, the status page). Absent: off.
    #[serde(default)]
    pub admin: Option<crate::telemetry::AdminConfig>,
    /// The folder relative paths are resolved against (the pipeline file's).
    #[serde(skip)]
    base_dir: PathBuf,
    /// `plugin_dir` and `cache_dir`, resolved.
    #[serde(skip)]
    plugin_dir_path: PathBuf,
    #[serde(skip)]
    cache_dir_path: PathBuf,
    #[serde(skip)]
    state_dir_path: PathBuf,
}

fn default_name() -> String {
    "pipeline".to_owned()
}

fn default_plugin_dir() -> PathBuf {
    PathBuf::from("plugins")
}

fn default_cache_dir() -> PathBuf {
    PathBuf::from(".weir-cache")
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(".weir-state")
}

fn valid_output_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl PipelineConfig {
    /// Loads and validates a pipeline file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let src = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Self::parse(&src, base_dir, Some(path.to_path_buf()))
    }

    /// Parses and validates a pipeline from text; relative paths will be
    /// resolved against `base_dir`. Errors carry the line but no file name.
    #[allow(
        clippy::should_implement_trait,
        reason = "FromStr cannot take the base folder"
    )]
    pub fn from_str(src: &str, base_dir: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        Self::parse(src, base_dir.into(), None)
    }

    fn parse(src: &str, base_dir: PathBuf, file: Option<PathBuf>) -> Result<Self, ConfigError> {
        let doc = match Document::parse(src) {
            Ok(doc) => doc,
            Err(e) => {
                let (line, column) = match e.span() {
                    Some(span) => {
                        let (l, c) = error::line_col_in(src, span.start);
                        (Some(l), Some(c))
                    }
                    None => (None, None),
                };
                return Err(ConfigError::Invalid {
                    file,
                    line,
                    column,
                    field: String::new(),
                    message: e.message().trim_end().to_owned(),
                });
            }
        };
        let mut config = match Self::deserialize(toml::de::Deserializer::from(doc.root.clone())) {
            Ok(config) => config,
            Err(e) => return Err(deserialize_error(&doc, e, file)),
        };
        config.base_dir = base_dir;
        if let Err(e) = config.validate() {
            return Err(ConfigError::Invalid {
                file,
                line: doc.line_of(&e.path),
                column: None,
                field: e.field(),
                message: e.message,
            });
        }
        config.resolve_paths();
        Ok(config)
    }

    /// Resolves every relative path against `base_dir`, once.
    fn resolve_paths(&mut self) {
        let base = self.base_dir.clone();
        self.plugin_dir_path = resolve(&base, &self.plugin_dir);
        self.cache_dir_path = resolve(&base, &self.cache_dir);
        self.state_dir_path = resolve(&base, &self.state_dir).join(&self.name);
        self.source.resolve_paths(&base);
        for sink in self.outputs.values_mut().chain(self.dead_letter.as_mut()) {
            sink.resolve_paths(&base);
        }
        for stage in &mut self.stages {
            stage.resolve_paths(&base, &self.plugin_dir_path);
        }
        if let Some(ort) = &mut self.onnxruntime {
            ort.resolve_paths(&base);
        }
        for model in self.models.values_mut() {
            model.resolve_paths(&base);
        }
    }

    /// Checks what the types alone do not: names, ranges, references.
    pub fn validate(&self) -> Result<(), FieldError> {
        validate::not_blank("name", &self.name)?;
        if self.name.chars().any(char::is_control) {
            return Err(FieldError::new(
                "name",
                "must not contain control characters",
            ));
        }
        validate::not_empty("plugin_dir", &self.plugin_dir)?;
        validate::not_empty("cache_dir", &self.cache_dir)?;
        validate::not_empty("state_dir", &self.state_dir)?;
        let unsafe_folder = self.name.contains(['/', '\\']) || self.name.starts_with('.');
        if unsafe_folder && self.is_keyed() {
            return Err(FieldError::new(
                "name",
                "a pipeline with keyed stages names its state folder: no '/', '\\' or leading '.'",
            ));
        }
        if let SourceConfig::Kafka(k) = &self.source
            && self.is_keyed()
            && self.state.changelog == crate::state::ChangelogMode::Auto
            && k.topics.iter().any(|t| t.starts_with('^'))
        {
            // The changelog topics get as many partitions as the source's.
            return Err(FieldError::new(
                "topics",
                "keyed stages on a kafka source need named topics (no patterns) to size their changelog topics, or [state] changelog = \"off\"",
            )
            .within("source"));
        }
        self.state.validate().map_err(|e| e.within("state"))?;
        self.watermark
            .validate()
            .map_err(|e| e.within("watermark"))?;
        self.source.validate().map_err(|e| e.within("source"))?;
        self.batch.validate().map_err(|e| e.within("batch"))?;
        if let Some(admin) = &self.admin {
            admin.validate().map_err(|e| e.within("admin"))?;
        }
        self.reload.validate().map_err(|e| e.within("reload"))?;

        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, stage) in self.stages.iter().enumerate() {
            let at = |e: FieldError| e.within_index(i).within("stages");
            stage.validate().map_err(at)?;
            if let Some(first) = seen.insert(stage.name.as_str(), i) {
                return Err(at(FieldError::new(
                    "name",
                    format!(
                        "duplicate stage name {:?} (also stages[{first}].name)",
                        stage.name
                    ),
                )));
            }
        }

        for (name, sink) in &self.outputs {
            if !valid_output_name(name) {
                return Err(FieldError::new(
                    name,
                    "output names may only use a-z, 0-9, '_' and '-'",
                )
                .within("outputs"));
            }
            sink.validate()
                .map_err(|e| e.within(name).within("outputs"))?;
        }
        if !self.outputs.contains_key("default") {
            return Err(FieldError::new(
                "default",
                "a pipeline needs a default output: add an [outputs.default] table",
            )
            .within("outputs"));
        }
        if let Some(dl) = &self.dead_letter {
            dl.validate().map_err(|e| e.within("dead_letter"))?;
        }
        if let Some(ort) = &self.onnxruntime {
            ort.validate().map_err(|e| e.within("onnxruntime"))?;
        }
        for (name, model) in &self.models {
            if !crate::inference::valid_model_name(name) {
                return Err(FieldError::new(
                    name,
                    "model names may only use letters, digits, '_', '-' and '.' (at most 64)",
                )
                .within("models"));
            }
            model
                .validate()
                .map_err(|e| e.within(name).within("models"))?;
        }
        self.check_distinct_files()
    }

    /// Two sinks writing one file, or a sink overwriting the source's file,
    /// would lose events.
    fn check_distinct_files(&self) -> Result<(), FieldError> {
        let mut files: Vec<(PathBuf, String)> = Vec::new();
        if let Some(path) = self.source.file() {
            files.push((
                resolve(&self.base_dir, path.written()),
                "source.path".to_owned(),
            ));
        }
        let sinks = self
            .outputs
            .iter()
            .map(|(name, s)| {
                (
                    s,
                    FieldError::new("path", "").within(name).within("outputs"),
                )
            })
            .chain(
                self.dead_letter
                    .iter()
                    .map(|s| (s, FieldError::new("path", "").within("dead_letter"))),
            );
        for (sink, at) in sinks {
            let Some(written) = sink.file().map(|p| p.written()) else {
                continue;
            };
            let path = resolve(&self.base_dir, written);
            if let Some((_, other)) = files.iter().find(|(p, _)| *p == path) {
                return Err(FieldError {
                    message: format!("{} is also used by {other}", written.display()),
                    ..at
                });
            }
            files.push((path, at.field()));
        }
        Ok(())
    }

    /// The folder relative paths are resolved against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// `plugin_dir`, resolved.
    pub fn plugin_dir_path(&self) -> &Path {
        &self.plugin_dir_path
    }

    /// `cache_dir`, resolved.
    pub fn cache_dir_path(&self) -> &Path {
        &self.cache_dir_path
    }

    /// The state store's folder: `<state_dir>/<name>`, resolved.
    pub fn state_dir_path(&self) -> &Path {
        &self.state_dir_path
    }

    /// Whether some stage is keyed (has `[stages.state]`).
    pub fn is_keyed(&self) -> bool {
        self.stages.iter().any(|s| s.state.is_some())
    }

    /// `[onnxruntime] library`, resolved.
    pub fn onnxruntime_library(&self) -> Option<&Path> {
        self.onnxruntime.as_ref().and_then(|o| o.library.as_deref())
    }

    pub fn build_source(&self) -> Result<Box<dyn Source>, EndpointError> {
        self.source.build()
    }

    /// The source, telling `assignments` of its rebalances (keyed state on
    /// a Kafka source).
    pub fn build_source_with(
        &self,
        assignments: Option<std::sync::Arc<dyn crate::source::Assignments>>,
    ) -> Result<Box<dyn Source>, EndpointError> {
        self.source.build_with(assignments)
    }

    /// Every output's sink, by name.
    pub fn build_outputs(&self) -> Result<BTreeMap<String, Box<dyn Sink>>, EndpointError> {
        self.outputs
            .iter()
            .map(|(name, c)| Ok((name.clone(), c.build()?)))
            .collect()
    }

    /// The dead-letter sink: the configured one, or JSON lines on stderr (with
    /// a warning, since stderr is easily lost).
    pub fn build_dead_letter(&self) -> Result<Box<dyn Sink>, EndpointError> {
        match &self.dead_letter {
            Some(c) => c.build(),
            None => {
                tracing::warn!(
                    pipeline = %self.name,
                    "no [dead_letter] output configured: dead letters go to stderr as JSON lines"
                );
                SinkConfig::Stderr(StdoutSinkConfig::default()).build()
            }
        }
    }
}

/// Turns a `toml`/`serde` error into one naming the field and its line. In a
/// `type`-tagged table serde loses the position of the offending field; the
/// variant is then deserialized again on its own to find it.
fn deserialize_error(
    doc: &Document<'_>,
    err: toml::de::Error,
    file: Option<PathBuf>,
) -> ConfigError {
    let refined = err
        .span()
        .and_then(|span| doc.path_at(&span))
        .and_then(|path| refine_tagged(doc, &path));
    let err = refined.unwrap_or(err);
    let span = err.span();
    let path = span
        .as_ref()
        .and_then(|s| doc.path_at(s))
        .unwrap_or_default();
    let error = FieldError {
        path,
        message: String::new(),
    };
    ConfigError::Invalid {
        file,
        line: span.map(|s| doc.line_col(s.start).0),
        column: None,
        field: error.field(),
        message: err.message().trim_end().to_owned(),
    }
}

fn refine_tagged(doc: &Document<'_>, path: &[PathSegment]) -> Option<toml::de::Error> {
    let is_source = match path {
        [PathSegment::Key(k)] if k == "source" => true,
        [PathSegment::Key(k)] if k == "dead_letter" => false,
        [PathSegment::Key(k), PathSegment::Key(_)] if k == "outputs" => false,
        _ => return None,
    };
    let table = doc.table_at(path)?;
    let span = table.span();
    let mut table = table.into_inner();
    let ty = table.remove("type")?;
    let ty = ty.get_ref().as_str()?.to_owned();
    let de = toml::de::Deserializer::from(Spanned::new(span, table));
    if is_source {
        SourceConfig::variant_error(&ty, de)
    } else {
        SinkConfig::variant_error(&ty, de)
    }
}

#[cfg(test)]
mod tests;
