//! JavaScript plugins: a folder with `package.json` and an ES module whose
//! default export is `weir.map(...)` (or filter, flatMap, batch), built by
//! componentize-js through the SDK's `build.mjs`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use super::plan::{
    BuildPlan, Lang, Scaffold, check_world, inputs, read_manifest, run_toolchain, sdk_dir,
};
use super::toolchain;

/// The files of a new JavaScript plugin.
pub const SCAFFOLD: &Scaffold = scaffold!(
    "js": ["package.json", "index.js", "index.test.js"],
    gitignore: "/target\nnode_modules/\n"
);

/// `name`, `main` and `"weir": {"world"}` of a plugin's package.json.
#[derive(Debug, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub main: String,
    pub world: String,
}

/// Reads and checks `dir/package.json`.
pub fn manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let (path, text) = read_manifest(dir, "package.json")?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let name = doc["name"]
        .as_str()
        .with_context(|| format!("{}: no \"name\"", path.display()))?;
    // A scoped npm name (`@org/plugin`) names the file after its last part.
    let name = name.rsplit('/').next().unwrap_or(name).to_string();
    let main = match &doc["main"] {
        serde_json::Value::Null => "index.js".to_string(),
        serde_json::Value::String(s) => s.trim_start_matches("./").to_string(),
        _ => bail!("{}: \"main\" must be a string", path.display()),
    };
    if doc["type"] != "module" {
        bail!(
            "{}: a weir plugin is an ES module: set \"type\": \"module\"",
            path.display()
        );
    }
    let weir = &doc["weir"];
    if let Some(obj) = weir.as_object()
        && let Some(unknown) = obj.keys().find(|k| k.as_str() != "world")
    {
        bail!(
            "{}: unknown field `{unknown}` in \"weir\" (known: world)",
            path.display()
        );
    }
    let world = match &weir["world"] {
        serde_json::Value::Null => "transform".to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => bail!("{}: \"weir\".\"world\" must be a string", path.display()),
    };
    check_world(&world, &path)?;
    if !dir.join(&main).is_file() {
        bail!("{}: the plugin module {main} is missing", path.display());
    }
    Ok(Manifest { name, main, world })
}

/// How to build the JavaScript plugin `dir` against the WIT folder `wit`.
pub fn plan(dir: &Path, wit: &Path, sdk: Option<&Path>) -> anyhow::Result<BuildPlan> {
    let manifest = manifest(dir)?;
    let sdk = sdk_dir(sdk, Lang::Js)?;
    let script = sdk.join("build.mjs");
    let plugin_dir = dir.to_path_buf();
    let wit_dir = wit.to_path_buf();
    let world = manifest.world.clone();
    let run = move |out: &Path| -> anyhow::Result<()> {
        let prefix = toolchain::ensure("js")?;
        let mut node = Command::new("node");
        node.arg(&script)
            .arg("--plugin")
            .arg(&plugin_dir)
            .arg("--wit")
            .arg(&wit_dir)
            .args(["--world", &world])
            .arg("--out")
            .arg(out)
            .arg("--toolchain")
            .arg(&prefix);
        run_toolchain(
            &mut node,
            "componentize-js",
            " with node (install Node.js 18 or newer)",
            &plugin_dir,
        )
    };
    Ok(BuildPlan {
        name: manifest.name,
        lang: Lang::Js,
        world: manifest.world,
        inputs: inputs(dir, sdk, wit),
        toolchain: toolchain::COMPONENTIZE_JS.into(),
        run: Box::new(run),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_is_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("index.js"), "").unwrap();
        let write = |s: &str| std::fs::write(dir.join("package.json"), s).unwrap();
        write(r#"{"name": "@me/tagger", "type": "module"}"#);
        assert_eq!(
            manifest(dir).unwrap(),
            Manifest {
                name: "tagger".into(),
                main: "index.js".into(),
                world: "transform".into()
            }
        );
        let refused = |package: &str| {
            write(package);
            manifest(dir).unwrap_err().to_string()
        };
        let err = refused(r#"{"name": "t"}"#);
        assert!(err.contains("\"type\": \"module\""), "{err}");
        let err = refused(r#"{"name": "t", "type": "module", "weir": {"wrld": "x"}}"#);
        assert!(err.contains("unknown field `wrld`"), "{err}");
        let err = refused(r#"{"name": "t", "type": "module", "main": "./src/main.js"}"#);
        assert!(err.contains("src/main.js is missing"), "{err}");
    }
}
