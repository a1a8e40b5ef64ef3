//! `weir plugin inspect`: a component's imports and exports, and whether
//! this host can run it.

use std::path::Path;

use anyhow::Context;
use wasmtime::component::{Component, types::ComponentItem};

use super::home::user_cache;
use crate::plugin::{Contract, EngineOptions, PluginEngine};

/// Prints what `path` imports and exports; `false` when this host cannot
/// run it.
pub fn inspect(path: &Path, out: &mut dyn std::io::Write) -> anyhow::Result<bool> {
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
    let mut exported = None;
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
            if let Some(version) = name.strip_prefix("weir:plugin/transformer@") {
                exported = Some(version.to_owned());
            }
            writeln!(out, "  {name}{}", kind(&item.ty))?;
        }
    }
    match engine.load_bytes(&stem(path), &wasm) {
        Ok(plugin) => {
            let (version, batch) = match plugin.contract() {
                Contract::V0_1 => ("0.1", "typed batch records"),
                Contract::V0_2 => ("0.2.0", "packed batch, keyed state"),
            };
            let version = exported.as_deref().unwrap_or(version);
            writeln!(out, "contract: weir:plugin@{version} ({batch})")?;
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
