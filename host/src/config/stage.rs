//! `[batch]` and `[[stages]]`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::params;
use crate::pipeline::CircuitBreakerConfig;
use crate::plugin::GrantsConfig;
use crate::plugin::LimitsConfig;
use crate::validate::{self, FieldError};

/// The largest `batch.max_events`.
pub const MAX_BATCH_EVENTS: usize = 65_536;

/// `[batch]`: the micro-batcher in front of the first stage. A batch is cut
/// when it has `max_events` events or its first event waited `max_wait_ms`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Most events per batch, 1 to 65536. Default 1024.
    pub max_events: usize,
    /// Longest a batch waits to fill up, in milliseconds (0 to 60000).
    /// Default 50.
    pub max_wait_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_events: 1024,
            max_wait_ms: 50,
        }
    }
}

impl BatchConfig {
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        validate::in_range("max_events", self.max_events, 1..=MAX_BATCH_EVENTS)?;
        validate::at_most("max_wait_ms", self.max_wait_ms, 60_000)
    }
}

/// The most instances `parallelism` asks for.
pub const MAX_PARALLELISM: usize = crate::telemetry::MAX_INSTANCES;

/// `parallelism = N` or `"auto"`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Parallelism {
    Instances(usize),
    Word(String),
}

impl Default for Parallelism {
    fn default() -> Self {
        Self::Instances(1)
    }
}

impl Parallelism {
    /// The number of instances (`"auto"`: this machine's cores, at most
    /// `MAX_PARALLELISM`).
    pub fn instances(&self) -> usize {
        match self {
            Self::Instances(n) => *n,
            Self::Word(_) => std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(MAX_PARALLELISM),
        }
    }

    fn validate(&self) -> Result<(), FieldError> {
        match self {
            Self::Instances(n) => validate::in_range("parallelism", *n, 1..=MAX_PARALLELISM),
            Self::Word(w) if w == "auto" => Ok(()),
            Self::Word(w) => Err(FieldError::new(
                "parallelism",
                format!("{w:?}: use a number from 1 to {MAX_PARALLELISM} or \"auto\""),
            )),
        }
    }
}

/// `[[stages]]`: one transform, a plugin instance.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// The stage's name, unique in the pipeline: it appears in logs, metrics
    /// and the `weir.stage` header of dead letters. Letters, digits, `_`, `-`
    /// and `.`; at most 64 characters.
    pub name: String,
    /// The plugin: a name (the component `<plugin_dir>/<plugin>.wasm`) or a
    /// path ending in `.wasm` (relative to the pipeline file's folder).
    pub plugin: String,
    /// Parameters for the plugin's `init`: any table, handed over as a JSON
    /// object (datetimes become RFC 3339 strings). Default: `{}`.
    #[serde(default)]
    pub params: toml::Table,
    /// Resource limits of the plugin instance (`[stages.limits]`).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// What the plugin may touch (`[stages.grants]`): nothing by default.
    #[serde(default)]
    pub grants: GrantsConfig,
    /// When a faulting plugin stops being tried (`[stages.circuit_breaker]`).
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerConfig,
    /// A JSON-lines file of events every new version of the plugin is run on
    /// before it may serve (hot reload): a trap on them refuses the version.
    /// Relative to the pipeline file's folder.
    #[serde(default)]
    pub smoke: Option<PathBuf>,
    /// Makes the stage keyed (`[stages.state]`: its key, TTL and bounds):
    /// the host keeps per-key state for the plugin (crate::state).
    #[serde(default)]
    pub state: Option<crate::state::StageStateConfig>,
    /// Instances of the plugin run side by side on each batch, each on a
    /// thread of its own: a number from 1 to 64, or `"auto"` (one per
    /// core). Events of one key go to one instance. Default 1.
    #[serde(default)]
    pub parallelism: Parallelism,
    /// The plugin's component file, resolved (at load).
    #[serde(skip)]
    plugin_file: PathBuf,
}

impl StageConfig {
    /// `params` as the JSON object the plugin's `init` receives.
    pub fn params_json(&self) -> Result<serde_json::Value, FieldError> {
        params::table_to_json(&self.params).map_err(|e| e.within("params"))
    }

    /// Whether `plugin` is a path (ends in `.wasm`) rather than a name.
    pub fn plugin_is_path(&self) -> bool {
        self.plugin.ends_with(".wasm")
    }

    /// The component file of the stage's plugin: `<plugin_dir>/<plugin>.wasm`,
    /// or the `.wasm` path.
    pub fn plugin_file(&self) -> &Path {
        &self.plugin_file
    }

    /// Resolves the plugin file, granted directories and smoke file against
    /// the pipeline file's folder (`plugin_dir` already resolved).
    pub(super) fn resolve_paths(&mut self, base_dir: &Path, plugin_dir: &Path) {
        self.plugin_file = if self.plugin_is_path() {
            crate::paths::resolve(base_dir, Path::new(&self.plugin))
        } else {
            plugin_dir.join(format!("{}.wasm", self.plugin))
        };
        self.grants.resolve_paths(base_dir);
        if let Some(smoke) = &mut self.smoke {
            *smoke = crate::paths::resolve(base_dir, smoke);
        }
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        let name_ok = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        };
        validate::not_empty("name", &self.name)?;
        if self.name.len() > 64 || !name_ok(&self.name) {
            return Err(FieldError::new(
                "name",
                format!(
                    "{:?}: use at most 64 letters, digits, '_', '-' and '.'",
                    self.name
                ),
            ));
        }
        validate::not_empty("plugin", &self.plugin)?;
        if self.plugin_is_path() {
            if self.plugin.len() == ".wasm".len() {
                return Err(FieldError::new("plugin", "\".wasm\" is not a file name"));
            }
        } else if !name_ok(&self.plugin) || self.plugin.starts_with('.') {
            return Err(FieldError::new(
                "plugin",
                format!(
                    "{:?} is neither a plugin name (letters, digits, '_', '-', '.') nor a path ending in .wasm",
                    self.plugin
                ),
            ));
        }
        self.params_json()?;
        self.parallelism.validate()?;
        self.limits.validate().map_err(|e| e.within("limits"))?;
        self.grants.validate().map_err(|e| e.within("grants"))?;
        if let Some(state) = &self.state {
            state.validate().map_err(|e| e.within("state"))?;
        }
        self.circuit_breaker
            .validate()
            .map_err(|e| e.within("circuit_breaker"))
    }
}
