//! `weir state`: the keyed state a pipeline's stage holds, as JSON lines
//! (read-only). The store admits one process: while `weir run` has it open,
//! the command says so (and how to stop it) instead of waiting.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::config::PipelineConfig;
use crate::state::{StateError, StateStore};

#[derive(Debug, Args)]
pub struct StateArgs {
    /// The pipeline file (TOML).
    pub pipeline: PathBuf,
    /// The keyed stage.
    #[arg(long)]
    pub stage: String,
    /// Only this key (its bytes as UTF-8).
    #[arg(long)]
    pub key: Option<String>,
    /// At most this many entries.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

/// A value as JSON: itself if it is JSON, else a string (UTF-8) or base64.
fn as_json(bytes: &[u8]) -> serde_json::Value {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        return v;
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => serde_json::Value::String(s.to_owned()),
        Err(_) => {
            use base64::Engine as _;
            serde_json::json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) })
        }
    }
}

impl StateArgs {
    pub fn run(&self) -> anyhow::Result<ExitCode> {
        let config = PipelineConfig::from_file(&self.pipeline)?;
        let Some(stage) = config.stages.iter().find(|s| s.name == self.stage) else {
            anyhow::bail!("the pipeline has no stage `{}`", self.stage);
        };
        if stage.state.is_none() {
            anyhow::bail!(
                "stage `{}` is not keyed (it has no [stages.state])",
                self.stage
            );
        }
        let dir = config.state_dir_path();
        if !dir.exists() {
            anyhow::bail!("no state yet at {} (has the pipeline run?)", dir.display());
        }
        let store = match StateStore::open(dir, &config.state) {
            Ok(s) => s,
            Err(e @ StateError::Locked { .. }) => {
                anyhow::bail!(
                    "{e}: stop `weir run {}` to read it",
                    self.pipeline.display()
                )
            }
            Err(e) => return Err(e).context("opening the state store"),
        };
        let entries = store
            .scan(
                &self.stage,
                self.key.as_deref().map(str::as_bytes),
                self.limit,
                crate::event::now_ms(),
            )
            .context("reading the state store")?;
        for e in entries {
            let line = serde_json::json!({
                "partition": e.partition,
                "key": String::from_utf8_lossy(&e.key),
                "value": as_json(&e.value),
                "expires_ms": e.expires_ms,
            });
            println!("{line}");
        }
        Ok(ExitCode::SUCCESS)
    }
}
