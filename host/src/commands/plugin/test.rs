//! `weir plugin test`: a plugin run over a JSON-lines file, printing its
//! outputs, routed outputs and errors (any language's component).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::home::user_cache;
use crate::event::{Event, Position};
use crate::pipeline::{Batch, Stage, StageSpec};
use crate::plugin::{EngineOptions, PluginEngine};
use crate::sink::encode_envelope;
use crate::telemetry::StageStats;

/// Parses `--param k=v` pairs over an optional JSON object.
pub fn parse_params(params: &[String], base: Option<&str>) -> anyhow::Result<String> {
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
        if let Err(e) = crate::json_check::check_str(line) {
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

/// What `weir plugin test` saw: inputs, outputs per route, errors.
pub struct TestReport {
    pub inputs: usize,
    pub outputs: BTreeMap<String, usize>,
    pub errors: usize,
}

/// The models of `--model NAME=PATH` options, loaded (ONNX Runtime found as
/// `weir run` finds it); `None` without options.
pub fn load_models(specs: &[String]) -> anyhow::Result<Option<crate::inference::ModelRegistry>> {
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

/// Runs `plugin` over `input` in batches of `batch_size`, writing one line
/// per output or error and a summary line to `out`.
pub fn test(
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
