//! `weir generate`: synthetic events on standard output.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::source::{GenerateSchema, generate_values, sensor_truth};

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// card-transactions | sized | sensors
    #[arg(long, default_value = "card-transactions")]
    pub schema: String,
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Event size in bytes, for the `sized` schema.
    #[arg(long, default_value_t = 200)]
    pub size: usize,
    /// How many devices, for the `sensors` schema.
    #[arg(long, default_value_t = GenerateSchema::DEFAULT_DEVICES)]
    pub devices: u32,
    /// `sensors` only: also write what was planted in these events (the
    /// anomalies and the readings delayed by minutes), one JSON object a
    /// line, to this file.
    #[arg(long)]
    pub truth: Option<PathBuf>,
}

impl GenerateArgs {
    /// Prints `count` events (JSON lines) of the schema.
    pub fn run(&self) -> anyhow::Result<ExitCode> {
        let schema = GenerateSchema::from_name(&self.schema, self.size, self.devices)
            .map_err(anyhow::Error::msg)?;
        if let Some(path) = &self.truth {
            let GenerateSchema::Sensors { devices } = schema else {
                anyhow::bail!("--truth is for --schema sensors only");
            };
            let mut text = String::new();
            for line in sensor_truth(self.seed, devices, self.count) {
                text.push_str(&line.to_string());
                text.push('\n');
            }
            std::fs::write(path, text)
                .with_context(|| format!("writing the truth file {}", path.display()))?;
        }
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        for value in generate_values(&schema, self.seed, self.count) {
            out.write_all(&value)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(ExitCode::SUCCESS)
    }
}
