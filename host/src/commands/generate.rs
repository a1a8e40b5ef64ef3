//! `weir generate`: synthetic events on standard output.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use crate::source::{GenerateSchema, generate_values};

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// card-transactions | sized
    #[arg(long, default_value = "card-transactions")]
    pub schema: String,
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Event size in bytes, for the `sized` schema.
    #[arg(long, default_value_t = 200)]
    pub size: usize,
}

impl GenerateArgs {
    /// Prints `count` events (JSON lines) of the schema.
    pub fn run(&self) -> anyhow::Result<ExitCode> {
        let schema =
            GenerateSchema::from_name(&self.schema, self.size).map_err(anyhow::Error::msg)?;
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
