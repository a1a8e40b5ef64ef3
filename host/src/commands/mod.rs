//! The `weir` commands, one file each (its arguments and what it does), as
//! the command line sees them. `anyhow` lives here, in `crate::app` and in
//! `main` only.

mod generate;
mod plugin;
mod run;
mod state;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub use generate::GenerateArgs;
pub use plugin::PluginCommand;
pub use run::RunArgs;
pub use state::StateArgs;
pub use status::StatusArgs;

#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "Stream processing with sandboxed WebAssembly transforms and native inference"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline file until its source ends or Ctrl-C / SIGTERM.
    Run(RunArgs),
    /// Show the plugin versions a pipeline serves and its recent reloads
    /// (swaps, refusals), as JSON.
    Status(StatusArgs),
    /// Print the keyed state a stage of a pipeline holds (JSON lines).
    State(StateArgs),
    /// Print synthetic events (JSON lines) from the built-in generator.
    Generate(GenerateArgs),
    /// Plugin author tools: scaffold, build, test locally, inspect.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

impl Cli {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Run(args) => args.run(),
            Command::Generate(args) => args.run(),
            Command::Status(args) => args.run(),
            Command::State(args) => args.run(),
            Command::Plugin(cmd) => cmd.run(),
        }
    }
}
