//! What the language builds share: the language, the build plan, the
//! manifest checks, and where this weir's SDKs and the contract Python and
//! JavaScript plugins build against live.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::ValueEnum;

use super::super::home::repo;

/// A plugin language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl Lang {
    /// `rust`, `python` or `js` (as `--lang` spells it).
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    /// This weir's SDK for the language, relative to the source tree, and a
    /// file in it that marks it as that SDK.
    fn sdk_folder(self) -> (&'static str, &'static str) {
        match self {
            Lang::Rust => ("plugin-sdk", "Cargo.toml"),
            Lang::Python => ("plugin-sdk/python", "weir/__init__.py"),
            Lang::Js => ("plugin-sdk/js", "build.mjs"),
        }
    }
}

/// The contract Python and JavaScript plugins are built against by default,
/// relative to the source tree: `weir:plugin@0.2.0` (`wit`, the packed
/// batch). Their SDKs also speak 0.1.x's record batch, for `--wit
/// wit/released/0.1.x` (plugins for older hosts); Rust plugins take their
/// contract from their `weir-sdk`.
pub const GUEST_CONTRACT: &str = "wit";

/// The WIT folder of [`GUEST_CONTRACT`] in this weir's source tree.
pub fn default_wit() -> PathBuf {
    repo().join(GUEST_CONTRACT)
}

/// A toolchain run: writes the component to the given path.
pub type BuildFn = dyn Fn(&Path) -> anyhow::Result<()>;

/// How to build one guest-language plugin.
pub struct BuildPlan {
    /// The plugin's name: `<name>.wasm`.
    pub name: String,
    pub lang: Lang,
    /// `transform` or `transform-with-inference`.
    pub world: String,
    /// Every input of the build, hashed into the cache key: (label, folder).
    pub inputs: Vec<(String, PathBuf)>,
    /// The toolchain and its version, also in the key.
    pub toolchain: String,
    /// Runs the build, writing the component to the given path.
    pub run: Box<BuildFn>,
}

/// The inputs of a guest build: the plugin's folder, the SDK folder it is
/// built with and the WIT folder it is built against.
pub(super) fn inputs(plugin: &Path, sdk: PathBuf, wit: &Path) -> Vec<(String, PathBuf)> {
    vec![
        ("plugin".into(), plugin.to_path_buf()),
        ("sdk".into(), sdk),
        ("wit".into(), wit.to_path_buf()),
    ]
}

/// Runs a toolchain command for `plugin` to its end, its chatter on stderr
/// (stdout is the built file's path): an error names the `tool`, with `hint`
/// when it could not be started.
pub(super) fn run_toolchain(
    cmd: &mut Command,
    tool: &str,
    hint: &str,
    plugin: &Path,
) -> anyhow::Result<()> {
    let status = cmd
        .stdout(std::io::stderr())
        .status()
        .with_context(|| format!("running {tool}{hint}"))?;
    if !status.success() {
        bail!(
            "{tool} failed for {} (see its output above)",
            plugin.display()
        );
    }
    Ok(())
}

/// The manifest `file` of the plugin folder `dir`: its path and text.
pub(super) fn read_manifest(dir: &Path, file: &str) -> anyhow::Result<(PathBuf, String)> {
    let path = dir.join(file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok((path, text))
}

/// `[table] name` of a TOML manifest `doc` read from `path`.
pub(super) fn toml_name(doc: &toml::Table, table: &str, path: &Path) -> anyhow::Result<String> {
    doc.get(table)
        .and_then(|t| t.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_owned)
        .with_context(|| format!("{}: no [{table}] name", path.display()))
}

/// Checks a plugin name (also the `.wasm` file name).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The two worlds a plugin may target.
pub(super) fn check_world(world: &str, manifest: &Path) -> anyhow::Result<()> {
    match world {
        "transform" | "transform-with-inference" => Ok(()),
        other => bail!(
            "{}: world `{other}` is not a weir world: use \"transform\" or \"transform-with-inference\"",
            manifest.display()
        ),
    }
}

/// The files of a new plugin: (path in its folder, template). A template's
/// `{{name}}` becomes the plugin's name, `{{sdk_path}}` the SDK's folder.
pub type Scaffold = [(&'static str, &'static str)];

/// `weir plugin new`: the folder `dir/name` holding `files`, refusing a bad
/// name, an existing folder or a missing SDK before writing anything.
pub(super) fn scaffold(
    name: &str,
    dir: &Path,
    lang: Lang,
    sdk: Option<&Path>,
    files: &Scaffold,
) -> anyhow::Result<PathBuf> {
    if !valid_name(name) {
        bail!(
            "`{name}` is not a valid plugin name: use lowercase letters, digits and `-`, starting with a letter"
        );
    }
    let root = dir.join(name);
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    let sdk = sdk_dir(sdk, lang)?.display().to_string();
    for (path, template) in files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = template
            .replace("{{name}}", name)
            .replace("{{sdk_path}}", &sdk);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(root)
}

/// This weir's SDK for `lang` (under `plugin-sdk/`), or the one given,
/// refused if it is not that SDK.
pub(super) fn sdk_dir(given: Option<&Path>, lang: Lang) -> anyhow::Result<PathBuf> {
    let (folder, marker) = lang.sdk_folder();
    let sdk = given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo().join(folder));
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "the weir {} SDK was not found at {} (pass --sdk-path)",
            lang.name(),
            sdk.display()
        )
    })?;
    if !sdk.join(marker).is_file() {
        bail!(
            "{} is not the weir {} SDK (no {marker})",
            sdk.display(),
            lang.name()
        );
    }
    Ok(sdk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_and_js_build_against_0_2_0() {
        let wit = std::fs::read_to_string(default_wit().join("weir.wit")).unwrap();
        assert!(wit.contains("package weir:plugin@0.2.0;"), "{wit}");
        assert!(wit.contains("world transform-with-inference"));
    }

    #[test]
    fn an_sdk_path_must_hold_that_languages_sdk() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            assert!(
                sdk_dir(None, lang).is_ok(),
                "this weir's {} SDK",
                lang.name()
            );
        }
        let tmp = tempfile::tempdir().unwrap();
        let err = sdk_dir(Some(tmp.path()), Lang::Python)
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("is not the weir python SDK (no weir/__init__.py)"),
            "{err}"
        );
        let err = sdk_dir(Some(&tmp.path().join("missing")), Lang::Js)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the weir js SDK was not found at"), "{err}");
    }

    #[test]
    fn worlds_are_checked() {
        assert!(check_world("transform", Path::new("p")).is_ok());
        assert!(check_world("transform-with-inference", Path::new("p")).is_ok());
        let err = check_world("command", Path::new("p"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a weir world"), "{err}");
    }
}
