//! The pinned guest toolchains, found (or installed on first use) by
//! `scripts/toolchains.sh`: one installer for `scripts/setup.sh` and for
//! `weir plugin build`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::super::home::repo;

/// componentize-py, the Python toolchain.
pub const COMPONENTIZE_PY: &str = "componentize-py 0.25.1";
/// componentize-js + jco, the JavaScript toolchain.
pub const COMPONENTIZE_JS: &str = "componentize-js 0.23.0 + jco 1.35.0";

/// `python` or `js`: the path `scripts/toolchains.sh` prints.
///
/// `$WEIR_COMPONENTIZE_PY` / `$WEIR_COMPONENTIZE_JS` override it. With
/// `WEIR_TOOLCHAIN_INSTALL=0` (the integration tests set it) a missing
/// toolchain is an error instead of an install: `scripts/setup.sh` installs
/// them before any test starts.
pub fn ensure(which: &str) -> anyhow::Result<PathBuf> {
    let var = match which {
        "python" => "WEIR_COMPONENTIZE_PY",
        _ => "WEIR_COMPONENTIZE_JS",
    };
    if let Some(path) = std::env::var_os(var) {
        return Ok(PathBuf::from(path));
    }
    let script = repo().join("scripts").join("toolchains.sh");
    let no_install = std::env::var("WEIR_TOOLCHAIN_INSTALL").is_ok_and(|v| v == "0");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg(which).stderr(Stdio::inherit());
    if no_install {
        // Same script, but only report what it would use.
        cmd.env("WEIR_TOOLCHAIN_CHECK_ONLY", "1");
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        let hint = if no_install {
            " (WEIR_TOOLCHAIN_INSTALL=0: run `source scripts/setup.sh` first)"
        } else {
            ""
        };
        bail!("the {which} plugin toolchain is not available{hint}");
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !path.exists() {
        bail!(
            "{} printed {}, which does not exist",
            script.display(),
            path.display()
        );
    }
    Ok(path)
}
