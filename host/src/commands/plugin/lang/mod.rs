//! A plugin in each language: `weir plugin new --lang rust|python|js` and
//! `weir plugin build`, which detects the language from the folder.
//!
//! A Rust plugin is a crate (`Cargo.toml`, `rust.rs`), a Python plugin a
//! folder with a `pyproject.toml` (`[tool.weir]`, `python.rs`), a JS plugin
//! one with a `package.json` (`"weir": {...}`, `js.rs`). Python and JS are
//! built by a pinned toolchain (`scripts/toolchains.sh` installs it into
//! `~/.cache/weir/toolchains` on first use) against the 0.2.0 contract in
//! `wit` (see [`plan::GUEST_CONTRACT`]) or `--wit` (a `wit/released/0.1.x`
//! folder, for older hosts), and the built
//! component is cached by the hash of everything that goes into it (plugin
//! sources, SDK, WIT, world, toolchain version): building an unchanged plugin
//! again is a copy.

/// The files of a new plugin of one language (a [`plan::Scaffold`]): each
/// `FILE` from `template/<lang>/FILE.tmpl`, and a `.gitignore`.
macro_rules! scaffold {
    ($lang:literal: [$($file:literal),+ $(,)?], gitignore: $ignore:literal) => {
        &[
            $(($file, include_str!(concat!("template/", $lang, "/", $file, ".tmpl"))),)+
            (".gitignore", $ignore),
        ]
    };
}

mod build_cache;
mod js;
mod plan;
mod python;
mod rust;
mod toolchain;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

pub use plan::Lang;
use plan::default_wit;

/// The language of the plugin folder `dir`, from its manifest.
pub fn detect(dir: &Path) -> anyhow::Result<Lang> {
    let found: Vec<Lang> = [
        ("Cargo.toml", Lang::Rust),
        ("pyproject.toml", Lang::Python),
        ("package.json", Lang::Js),
    ]
    .into_iter()
    .filter(|(manifest, _)| dir.join(manifest).is_file())
    .map(|(_, lang)| lang)
    .collect();
    match found.as_slice() {
        [lang] => Ok(*lang),
        [] => bail!(
            "{} is not a plugin folder: no Cargo.toml (Rust), pyproject.toml (Python) or package.json (JavaScript)",
            dir.display()
        ),
        many => bail!(
            "{} has manifests for several languages ({}): keep one",
            dir.display(),
            many.iter().map(|l| l.name()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// What `weir plugin build` was asked.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Where `<name>.wasm` goes (default: `DIR/target/`).
    pub out: Option<PathBuf>,
    /// The WIT folder to build against (default: this weir's
    /// `wit` ([`plan::GUEST_CONTRACT`]); e.g. `wit/released/0.1.0` for a plugin that
    /// must run on older hosts).
    pub wit: Option<PathBuf>,
    /// The SDK folder (default: this weir's `plugin-sdk/python` or `/js`).
    pub sdk: Option<PathBuf>,
}

/// `weir plugin new NAME --lang L`: the plugin folder it created.
pub fn new(name: &str, dir: &Path, lang: Lang, sdk: Option<&Path>) -> anyhow::Result<PathBuf> {
    let files = match lang {
        Lang::Rust => rust::SCAFFOLD,
        Lang::Python => python::SCAFFOLD,
        Lang::Js => js::SCAFFOLD,
    };
    plan::scaffold(name, dir, lang, sdk, files)
}

/// The WIT folder a Python or JS plugin builds against: `--wit`, else
/// [`default_wit`].
fn wit_folder(options: &BuildOptions) -> anyhow::Result<PathBuf> {
    let wit = options.wit.clone().unwrap_or_else(default_wit);
    wit.canonicalize()
        .with_context(|| format!("WIT folder {} not found", wit.display()))
}

/// `weir plugin build DIR`: the built component's path.
pub fn build(dir: &Path, options: &BuildOptions) -> anyhow::Result<PathBuf> {
    let plan = match detect(dir)? {
        Lang::Rust if options.wit.is_some() => bail!(
            "--wit applies to Python and JavaScript plugins (a Rust plugin's WIT comes from its weir-sdk)"
        ),
        Lang::Rust => return rust::build(dir, options.out.as_deref()),
        Lang::Python => python::plan(dir, &wit_folder(options)?, options.sdk.as_deref())?,
        Lang::Js => js::plan(dir, &wit_folder(options)?, options.sdk.as_deref())?,
    };
    let dest = match &options.out {
        Some(out) => out.join(format!("{}.wasm", plan.name)),
        None => dir.join("target").join(format!("{}.wasm", plan.name)),
    };
    build_cache::build(&plan, &dest)?;
    Ok(dest)
}

#[cfg(test)]
mod tests;
