//! `weir status`: what a running (or finished) `weir run` serves.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::app::status_path;
use crate::config::PipelineConfig;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The pipeline file (TOML) of a running or finished `weir run`.
    pub pipeline: PathBuf,
}

impl StatusArgs {
    /// Prints the status file `weir run` keeps for the pipeline.
    pub fn run(&self) -> anyhow::Result<ExitCode> {
        let config = PipelineConfig::from_file(&self.pipeline)?;
        let path = status_path(&config);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no status at {} (is `weir run {}` running, or has it run?)",
                path.display(),
                self.pipeline.display()
            )
        })?;
        println!("{text}");
        Ok(ExitCode::SUCCESS)
    }
}
