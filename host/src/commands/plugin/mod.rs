//! `weir plugin new | build | test | inspect`: the plugin author's loop, in
//! Rust, Python or JavaScript.
//!
//! This file holds the subcommands' arguments and dispatch; `lang/` makes
//! and builds a plugin of each language, `test.rs` and `inspect.rs` work on
//! any language's component, and `home.rs` knows where this weir's source
//! tree and per-user cache are.

mod home;
mod inspect;
mod lang;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use lang::{BuildOptions, Lang};

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
        #[arg(long, value_enum, default_value_t = Lang::Rust)]
        lang: Lang,
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
        /// `wit`, contract 0.2.0; `wit/released/0.1.1` or `0.1.0` for hosts
        /// of those contracts).
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

impl PluginCommand {
    /// Runs the plugin subcommand.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            PluginCommand::New {
                name,
                dir,
                lang,
                sdk_path,
            } => {
                let root = lang::new(&name, &dir, lang, sdk_path.as_deref())?;
                println!("created {}", root.display());
                println!("next: weir plugin build {}", root.display());
            }
            PluginCommand::Build {
                dir,
                out,
                wit,
                sdk_path,
            } => {
                let options = BuildOptions {
                    out,
                    wit,
                    sdk: sdk_path,
                };
                let wasm = lang::build(&dir, &options)?;
                println!("{}", wasm.display());
            }
            PluginCommand::Test {
                plugin,
                input,
                params,
                params_json,
                batch,
                models,
            } => {
                let params = test::parse_params(&params, params_json.as_deref())?;
                let models = test::load_models(&models)?;
                let stdout = std::io::stdout();
                test::test(&plugin, &input, &params, batch, models, &mut stdout.lock())?;
            }
            PluginCommand::Inspect { plugin } => {
                let stdout = std::io::stdout();
                if !inspect::inspect(&plugin, &mut stdout.lock())? {
                    return Ok(ExitCode::from(2));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
