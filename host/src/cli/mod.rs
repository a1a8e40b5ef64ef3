//! The `weir` command line.

pub mod lang;
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
    /// Create a new plugin (a Rust crate, or a Python or JavaScript
    /// folder) that builds as is.
    New {
        /// Plugin name (lowercase letters, digits, `-`).
        name: String,
        /// Parent folder of the new plugin.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The plugin's language.
        #[arg(long, value_enum, default_value_t = lang::Lang::Rust)]
        lang: lang::Lang,
        /// Path to weir's SDK for that language (default: the one this weir
        /// was built from: plugin-sdk, plugin-sdk/python or plugin-sdk/js).
        #[arg(long)]
        sdk_path: Option<PathBuf>,
    },
    /// Build a plugin into a component, `--out/<name>.wasm`: a Rust crate
    /// with cargo (wasm32-wasip2, release), a Python folder (pyproject.toml)
    /// with componentize-py, a JavaScript one (package.json) with
    /// componentize-js. The Python and JS toolchains are installed on first
    /// use, and unchanged plugins come from the build cache.
    Build {
        /// The plugin folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where to put `<name>.wasm` (a pipeline's plugin_dir).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Python/JS: the WIT folder to build against (default: this weir's
        /// `wit/`; `wit/released/0.1.0` for hosts of that contract).
        #[arg(long)]
        wit: Option<PathBuf>,
        /// Python/JS: path to weir's SDK for that language.
        #[arg(long)]
        sdk_path: Option<PathBuf>,
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
