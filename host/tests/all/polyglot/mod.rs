//! Python and JavaScript plugins, end to end: built from source by the test
//! run with `weir plugin build` (the pinned toolchains come from
//! `scripts/setup.sh`, run before the tests), then run by the real `weir`.
//!
//! A Python component is ~18 MB and takes ~30 s to build and ~30 s for
//! wasmtime to compile, so the tests share: each component is built once per
//! source content (`weir plugin build`'s cache under `~/.cache/weir/builds`)
//! and compiled once into one artifact cache (`target/test-plugins/cwasm`)
//! that every pipeline here names as its `cache_dir`. Six components serve
//! every test: `py-modes` (v1, and v2 built against the 0.1.0 contract),
//! `json-filter-py`, `fraud-features-py` and `json-filter-js` (0.2.0, and
//! 0.1.1). They build
//! against `weir plugin build`'s default, the 0.2.0 contract in `wit` (the
//! packed batch), except `py-modes` v2 (0.1.0, the record batch).

mod cli;
mod js;
mod python;
mod shipped;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::{Pipeline, output_of, run_watched, weir, workspace};

/// Where the guest components built by the tests go.
fn out_dir() -> PathBuf {
    workspace()
        .join("target")
        .join("test-plugins")
        .join("guest")
}

/// `XDG_CACHE_HOME` for `weir plugin test | inspect` here: their cache of
/// compiled plugins (`$XDG_CACHE_HOME/weir`) is then [`cwasm_cache`].
pub fn xdg_cache_home() -> PathBuf {
    workspace().join("target").join("test-plugins").join("xdg")
}

/// The compiled-artifact cache every pipeline (and CLI command) of these
/// tests shares: each component is compiled once per run.
pub fn cwasm_cache() -> PathBuf {
    xdg_cache_home().join("weir")
}

/// Where `weir plugin build` keeps built components (its default, made
/// explicit: the tests change `XDG_CACHE_HOME`).
fn workspace_cache() -> PathBuf {
    std::env::var_os("WEIR_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/weir")))
        .unwrap_or_else(|| workspace().join("target/test-plugins/weir-cache"))
}

/// `weir plugin build SRC --out OUT [--wit WIT]`, never installing a
/// toolchain (scripts/setup.sh did); returns the component.
pub fn build_guest(src: &Path, out: &Path, wit: Option<&Path>) -> PathBuf {
    let mut cmd = weir();
    cmd.args(["plugin", "build"])
        .arg(src)
        .arg("--out")
        .arg(out)
        .env("WEIR_TOOLCHAIN_INSTALL", "0");
    if let Some(wit) = wit {
        cmd.arg("--wit").arg(wit);
    }
    let (ok, stdout, stderr) = output_of(&mut cmd);
    assert!(ok, "weir plugin build {} failed:\n{stderr}", src.display());
    let path = PathBuf::from(stdout.trim());
    assert!(path.is_file(), "no component at {}", path.display());
    path
}

macro_rules! guest {
    ($(#[$doc:meta])* $fn:ident, $build:expr) => {
        $(#[$doc])*
        pub fn $fn() -> &'static Path {
            static BUILT: OnceLock<PathBuf> = OnceLock::new();
            BUILT.get_or_init(|| $build)
        }
    };
}

guest!(
    /// `tests/polyglot/py-modes`, against the 0.2.0 contract (`wit`, the
    /// default for Python).
    py_modes,
    build_guest(
        &workspace().join("tests/polyglot/py-modes"),
        &out_dir().join("v1"),
        None
    )
);

guest!(
    /// `py-modes` with `VERSION = "v2"`, built against the released 0.1.0
    /// contract (`wit/released/0.1.0`): the hot swap's new version, and the
    /// plugin of an older contract running beside newer ones.
    py_modes_v2,
    {
        let src = workspace().join("target/test-plugins/guest-src/py-modes");
        let _ = std::fs::remove_dir_all(&src);
        std::fs::create_dir_all(&src).expect("mkdir");
        for f in ["pyproject.toml", "app.py"] {
            std::fs::copy(workspace().join("tests/polyglot/py-modes").join(f), src.join(f))
                .expect("copy py-modes");
        }
        std::fs::write(src.join("version.py"), "VERSION = \"v2\"\n").expect("write version");
        build_guest(
            &src,
            &out_dir().join("v2-contract-0.1.0"),
            Some(&workspace().join("wit/released/0.1.0")),
        )
    }
);

guest!(
    /// The shipped `plugins/json-filter-py`.
    json_filter_py,
    build_guest(
        &workspace().join("plugins/json-filter-py"),
        &out_dir(),
        None
    )
);

guest!(
    /// The shipped `plugins/fraud-features-py`.
    fraud_features_py,
    build_guest(
        &workspace().join("plugins/fraud-features-py"),
        &out_dir(),
        None
    )
);

guest!(
    /// The shipped `plugins/json-filter-js`.
    json_filter_js,
    build_guest(
        &workspace().join("plugins/json-filter-js"),
        &out_dir(),
        None
    )
);

guest!(
    /// `plugins/json-filter-js` built against the released 0.1.1 contract
    /// (`wit/released/0.1.1`, the record batch): the JS SDK's other codec.
    json_filter_js_v011,
    build_guest(
        &workspace().join("plugins/json-filter-js"),
        &out_dir().join("contract-0.1.1"),
        Some(&workspace().join("wit/released/0.1.1")),
    )
);

/// A pipeline folder: `plugins/<name>.wasm` for each (name, component).
pub fn plugins(dir: &Path, components: &[(&str, &Path)]) {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir plugins");
    for (name, wasm) in components {
        std::fs::copy(wasm, plugins.join(format!("{name}.wasm"))).expect("copy plugin");
    }
}

/// A pipeline named `name` (unique: its status file lands in the shared
/// cache) whose compiled plugins are in [`cwasm_cache`].
pub fn pipeline(dir: &Path, name: &str) -> Pipeline {
    Pipeline::new(dir)
        .cache_dir(&cwasm_cache())
        .top(&format!("name = \"{name}\""))
}

/// `weir run` of `DIR/pipeline.toml` to the end (a first start compiles an
/// 18 MB component, ~30 s); asserts it succeeded and returns its log.
pub fn run_to_end(dir: &Path) -> String {
    let outcome = run_watched(dir, &[], Duration::from_secs(240));
    assert!(outcome.status.success(), "weir failed:\n{}", outcome.stderr);
    outcome.stderr
}

/// `weir plugin`, its compiled plugins in [`cwasm_cache`] (run it with
/// [`output_of`](crate::support::output_of)).
pub fn weir_plugin() -> Command {
    let mut cmd = weir();
    cmd.arg("plugin")
        .env("XDG_CACHE_HOME", xdg_cache_home())
        .env("WEIR_CACHE", workspace_cache());
    cmd
}
