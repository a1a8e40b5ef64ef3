//! `weir plugin new | build | test | inspect`: the plugin author's loop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use wasmtime::component::{Component, types::ComponentItem};

use crate::event::{Event, Position};
use crate::pipeline::{Batch, Stage, StageSpec};
use crate::plugin::{ArtifactCache, EngineOptions, PluginEngine};
use crate::sink::encode_envelope;
use crate::telemetry::StageStats;

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

impl PluginCommand {
    /// Runs the plugin subcommand.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            PluginCommand::New {
                name,
                dir,
                sdk_path,
            } => {
                let root = new(&name, &dir, sdk_path.as_deref())?;
                println!("created {}", root.display());
                println!("next: weir plugin build {}", root.display());
            }
            PluginCommand::Build { dir, out } => {
                let wasm = build(&dir, out.as_deref())?;
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
                let params = parse_params(&params, params_json.as_deref())?;
                let models = load_models(&models)?;
                let stdout = std::io::stdout();
                test(&plugin, &input, &params, batch, models, &mut stdout.lock())?;
            }
            PluginCommand::Inspect { plugin } => {
                let stdout = std::io::stdout();
                if !inspect(&plugin, &mut stdout.lock())? {
                    return Ok(ExitCode::from(2));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

const CARGO_TOML_TEMPLATE: &str = include_str!("template/Cargo.toml.tmpl");
const LIB_RS_TEMPLATE: &str = include_str!("template/lib.rs.tmpl");

/// The plugin-sdk this weir was built from.
fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk")
}

/// The per-user cache of compiled plugins used by the CLI.
fn user_cache() -> ArtifactCache {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    ArtifactCache::new(base.join("weir"))
}

fn valid_crate_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn new(name: &str, dir: &Path, sdk_path: Option<&Path>) -> anyhow::Result<PathBuf> {
    if !valid_crate_name(name) {
        bail!(
            "`{name}` is not a valid plugin name: use lowercase letters, digits and `-`, starting with a letter"
        );
    }
    let root = dir.join(name);
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    let sdk = sdk_path
        .map(Path::to_path_buf)
        .unwrap_or_else(default_sdk_path);
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "weir-sdk not found at {} (pass --sdk-path to weir's plugin-sdk folder)",
            sdk.display()
        )
    })?;
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{sdk_path}}", &sdk.display().to_string())
    };
    std::fs::create_dir_all(root.join("src"))?;
    std::fs::write(root.join("Cargo.toml"), fill(CARGO_TOML_TEMPLATE))?;
    std::fs::write(root.join("src/lib.rs"), fill(LIB_RS_TEMPLATE))?;
    std::fs::write(root.join(".gitignore"), "/target\n")?;
    Ok(root)
}

/// Makes sure the wasm32-wasip2 standard library is installed.
fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed = std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("wasm32-wasip2") => Ok(()),
        Ok(_) => {
            let status = std::process::Command::new("rustup")
                .args(["target", "add", "wasm32-wasip2"])
                .status()
                .context("running rustup target add wasm32-wasip2")?;
            if !status.success() {
                bail!("`rustup target add wasm32-wasip2` failed");
            }
            Ok(())
        }
        // No rustup: trust that the toolchain has the target; cargo says if not.
        Err(_) => Ok(()),
    }
}

/// Builds the crate in `dir`; returns the component's path (copied into
/// `out` as `<crate-name>.wasm` when given).
fn build(dir: &Path, out: Option<&Path>) -> anyhow::Result<PathBuf> {
    ensure_wasm_target()?;
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("no plugin crate at {}", dir.display()))?;
    let doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}", manifest.display()))?;
    let name = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .with_context(|| format!("{}: no [package] name", manifest.display()))?
        .to_string();
    let output =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .arg("build")
            .arg("--release")
            .args([
                "--target",
                "wasm32-wasip2",
                "--message-format",
                "json-render-diagnostics",
            ])
            .arg("--manifest-path")
            .arg(&manifest)
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running cargo")?;
    if !output.status.success() {
        bail!("cargo build failed for {}", dir.display());
    }
    let lib_name = name.replace('-', "_");
    let mut wasm = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact"
            || msg["target"]["name"].as_str() != Some(lib_name.as_str())
        {
            continue;
        }
        if let Some(files) = msg["filenames"].as_array() {
            for f in files.iter().filter_map(|f| f.as_str()) {
                if f.ends_with(".wasm") {
                    wasm = Some(PathBuf::from(f));
                }
            }
        }
    }
    let wasm = wasm.with_context(|| {
        format!("cargo built no .wasm for `{name}`: is its crate-type \"cdylib\"?")
    })?;
    match out {
        Some(out) => {
            std::fs::create_dir_all(out)?;
            let dest = out.join(format!("{name}.wasm"));
            // Copy then rename, so a watching host never sees half a file.
            let tmp = out.join(format!(".{name}.wasm.tmp"));
            std::fs::copy(&wasm, &tmp)?;
            std::fs::rename(&tmp, &dest)?;
            Ok(dest)
        }
        None => Ok(wasm),
    }
}

/// Parses `--param k=v` pairs over an optional JSON object.
fn parse_params(params: &[String], base: Option<&str>) -> anyhow::Result<String> {
    let mut obj = match base {
        Some(text) => match serde_json::from_str::<serde_json::Value>(text)
            .context("--params-json is not valid JSON")?
        {
            serde_json::Value::Object(map) => map,
            _ => bail!("--params-json must be a JSON object"),
        },
        None => serde_json::Map::new(),
    };
    for p in params {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--param `{p}` is not KEY=VALUE"))?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.into()));
        obj.insert(k.to_string(), value);
    }
    Ok(serde_json::Value::Object(obj).to_string())
}

/// Reads a JSON-lines input for `weir plugin test`: valid lines become events
/// (offset = line index), invalid ones are reported.
fn read_input(path: &Path) -> anyhow::Result<(Vec<Event>, Vec<String>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let stream: Arc<str> = path.display().to_string().into();
    let now = crate::event::now_ms();
    let mut events = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(line) {
            bad.push(format!("line {}: invalid JSON: {e}", i + 1));
            continue;
        }
        events.push(Event::new(
            line.as_bytes().to_vec(),
            now,
            Position::new(stream.clone(), 0, i as i64),
        ));
    }
    Ok((events, bad))
}

struct TestReport {
    inputs: usize,
    pub outputs: BTreeMap<String, usize>,
    pub errors: usize,
}

/// The models of `--model NAME=PATH` options, loaded (ONNX Runtime found as
/// `weir run` finds it); `None` without options.
fn load_models(specs: &[String]) -> anyhow::Result<Option<crate::inference::ModelRegistry>> {
    if specs.is_empty() {
        return Ok(None);
    }
    let mut configs = BTreeMap::new();
    for spec in specs {
        let Some((name, path)) = spec.split_once('=') else {
            anyhow::bail!("--model {spec}: expected NAME=PATH");
        };
        let mut config = crate::inference::ModelConfig::new(path);
        config.max_delay_ms = 0;
        configs.insert(name.to_string(), config);
    }
    Ok(Some(crate::inference::ModelRegistry::load(None, &configs)?))
}

fn test(
    plugin: &Path,
    input: &Path,
    params_json: &str,
    batch_size: usize,
    models: Option<crate::inference::ModelRegistry>,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<TestReport> {
    let engine = Arc::new(PluginEngine::new(EngineOptions {
        pooling: false,
        cache: Some(user_cache()),
        fuel: false,
        ..EngineOptions::default()
    })?);
    let loaded = engine.load_file(plugin)?;
    let mut spec = StageSpec::new("test", loaded, params_json);
    if let Some(models) = &models {
        spec.instance.models = Some(Arc::new(models.clone()));
    }
    let mut stage = Stage::start(spec, engine, Arc::new(StageStats::default()))?;
    let (events, bad) = read_input(input)?;
    for b in &bad {
        writeln!(out, "rejected {b}")?;
    }
    let mut report = TestReport {
        inputs: events.len(),
        outputs: BTreeMap::new(),
        errors: bad.len(),
    };
    let mut line = Vec::new();
    for chunk in events.chunks(batch_size.max(1)) {
        let mut batch = Batch {
            events: chunk.to_vec(),
            ..Batch::default()
        };
        stage.process(&mut batch);
        let routes = stage.routes();
        let routed = batch
            .routed
            .into_places()
            .enumerate()
            .flat_map(|(place, events)| {
                let route = routes
                    .name(place)
                    .map_or_else(String::new, |r| r.to_string());
                events.into_iter().map(move |e| (route.clone(), e))
            });
        let default = batch.events.into_iter().map(|e| ("default".to_string(), e));
        for (route, event) in default.chain(routed) {
            line.clear();
            encode_envelope(&event, &mut line);
            writeln!(
                out,
                "line {} -> {route}: {}",
                event.position.offset + 1,
                String::from_utf8_lossy(line.trim_ascii_end())
            )?;
            *report.outputs.entry(route).or_default() += 1;
        }
        for dead in batch.dead {
            writeln!(
                out,
                "line {} -> ERROR: {}",
                dead.event.position.offset + 1,
                dead.reason
            )?;
            report.errors += 1;
        }
    }
    let total: usize = report.outputs.values().sum();
    let per: Vec<String> = report
        .outputs
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    writeln!(
        out,
        "{} inputs -> {} outputs ({}), {} errors",
        report.inputs,
        total,
        if per.is_empty() {
            "none".to_string()
        } else {
            per.join(", ")
        },
        report.errors
    )?;
    Ok(report)
}

fn inspect(path: &Path, out: &mut dyn std::io::Write) -> anyhow::Result<bool> {
    let engine = PluginEngine::new(EngineOptions {
        pooling: false,
        cache: Some(user_cache()),
        fuel: false,
        ..EngineOptions::default()
    })?;
    let wasm = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    writeln!(out, "plugin:   {}", path.display())?;
    writeln!(out, "size:     {} bytes", wasm.len())?;
    writeln!(out, "version:  {}", crate::plugin::content_hash(&wasm))?;
    // Show the interface even when the host cannot run it.
    let mut world = "transform";
    if let Ok(component) = Component::new(engine.engine(), &wasm) {
        let ty = component.component_type();
        writeln!(out, "imports:")?;
        for (name, item) in ty.imports(engine.engine()) {
            if name.starts_with("weir:plugin/inference@") {
                world = "transform-with-inference";
            }
            writeln!(out, "  {name}{}", kind(&item.ty))?;
        }
        writeln!(out, "exports:")?;
        for (name, item) in ty.exports(engine.engine()) {
            writeln!(out, "  {name}{}", kind(&item.ty))?;
        }
    }
    match engine.load_bytes(&stem(path), &wasm) {
        Ok(_) => {
            writeln!(out, "runs on this host: yes (world weir:plugin/{world})")?;
            Ok(true)
        }
        Err(err) => {
            writeln!(out, "runs on this host: no: {err}")?;
            Ok(false)
        }
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn kind(item: &ComponentItem) -> &'static str {
    match item {
        ComponentItem::ComponentFunc(_) => " (function)",
        ComponentItem::CoreFunc(_) => " (core function)",
        ComponentItem::Module(_) => " (module)",
        ComponentItem::Component(_) => " (component)",
        ComponentItem::ComponentInstance(_) => " (interface)",
        ComponentItem::Type(_) => " (type)",
        ComponentItem::Resource(_) => " (resource)",
    }
}
