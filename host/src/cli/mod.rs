//! The `weir` command line.

pub mod plugin;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Print synthetic events (JSON lines) from the built-in generator.
    Generate(GenerateArgs),
    /// Plugin author tools: scaffold, build, test locally, inspect.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file (TOML).
    pub pipeline: PathBuf,
    /// No live progress line.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The pipeline file (TOML) of a running or finished `weir run`.
    pub pipeline: PathBuf,
}

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

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a new plugin crate that builds as is.
    New {
        /// Crate name (lowercase letters, digits, `-`).
        name: String,
        /// Parent folder of the new crate.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Path to weir's plugin-sdk (default: the one this weir was built from).
        #[arg(long)]
        sdk_path: Option<PathBuf>,
    },
    /// Build a plugin crate for wasm32-wasip2 (release) and copy the
    /// component to `--out/<crate-name>.wasm`.
    Build {
        /// The crate folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where to put `<crate-name>.wasm` (a pipeline's plugin_dir).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a plugin over a JSON-lines file and print outputs, routed outputs
    /// and errors.
    Test {
        plugin: PathBuf,
        /// JSON lines, one event value per line.
        #[arg(long)]
        input: PathBuf,
        /// A stage param, `key=value` (value parsed as JSON when it is JSON,
        /// else taken as a string). Repeatable.
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// All params as one JSON object (merged under `--param`s).
        #[arg(long, value_name = "JSON")]
        params_json: Option<String>,
        /// Events per call.
        #[arg(long, default_value_t = 1024)]
        batch: usize,
        /// A model the plugin may call, `NAME=PATH.onnx` (as `[models.NAME]`
        /// in a pipeline, with the defaults). Repeatable.
        #[arg(long = "model", value_name = "NAME=PATH")]
        models: Vec<String>,
    },
    /// Show a plugin's imports and exports, and whether this host can run it.
    Inspect { plugin: PathBuf },
}
