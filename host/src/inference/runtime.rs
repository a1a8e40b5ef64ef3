//! Finding and loading ONNX Runtime's shared library, once per process.
//!
//! ort is built with `load-dynamic`: nothing is linked, the library is opened
//! at run time, and only by pipelines that declare models. Without a library
//! ort panics on first use, so every path here goes through [`environment`].

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::LoadError;

/// What to install, for error messages.
const INSTALL_HINT: &str = "install it with `source scripts/setup.sh` (a Python venv with \
     onnxruntime 1.31.1), or `pip install onnxruntime==1.31.1` and set ORT_DYLIB_PATH to its \
     onnxruntime/capi/libonnxruntime.so.1.31.1, or name the file in the pipeline's \
     [onnxruntime] library";

/// Where the library came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LibrarySource {
    Pipeline,
    Environment,
    Venv,
}

/// Finds the library: the pipeline's `[onnxruntime] library` (already
/// resolved against its folder), else `ORT_DYLIB_PATH`, else the set-up venv.
pub fn find_library(configured: Option<&Path>) -> Result<(PathBuf, LibrarySource), LoadError> {
    if let Some(path) = configured {
        return check_file(path, "onnxruntime.library").map(|p| (p, LibrarySource::Pipeline));
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return check_file(Path::new(&path), "ORT_DYLIB_PATH")
            .map(|p| (p, LibrarySource::Environment));
    }
    let venv = match std::env::var_os("WEIR_VENV").filter(|p| !p.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".cache/weir/venv"),
            None => {
                return Err(LoadError::Library(format!(
                    "ONNX Runtime not found (no [onnxruntime] library, ORT_DYLIB_PATH or HOME): {INSTALL_HINT}"
                )));
            }
        },
    };
    match find_in_venv(&venv) {
        Some(p) => Ok((p, LibrarySource::Venv)),
        None => Err(LoadError::Library(format!(
            "ONNX Runtime not found: no [onnxruntime] library in the pipeline, ORT_DYLIB_PATH \
             unset, and no libonnxruntime.so.1.31* in the venv {}: {INSTALL_HINT}",
            venv.display()
        ))),
    }
}

fn check_file(path: &Path, what: &str) -> Result<PathBuf, LoadError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(path.to_path_buf()),
        Ok(_) => Err(LoadError::Library(format!(
            "{what}: {} is not a file: {INSTALL_HINT}",
            path.display()
        ))),
        Err(e) => Err(LoadError::Library(format!(
            "{what}: ONNX Runtime library {} cannot be read ({e}): {INSTALL_HINT}",
            path.display()
        ))),
    }
}

/// `<venv>/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.31*`.
fn find_in_venv(venv: &Path) -> Option<PathBuf> {
    let mut found = Vec::new();
    for py in std::fs::read_dir(venv.join("lib")).ok()?.flatten() {
        if !py.file_name().to_string_lossy().starts_with("python3") {
            continue;
        }
        let capi = py.path().join("site-packages/onnxruntime/capi");
        let Ok(entries) = std::fs::read_dir(&capi) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with("libonnxruntime.so.1.31")
            {
                found.push(e.path());
            }
        }
    }
    found.sort();
    found.pop()
}

/// The process's ONNX Runtime environment, and the library it was loaded from.
struct Loaded {
    env: ort::environment::Environment,
    library: PathBuf,
}

static LOADED: OnceLock<Loaded> = OnceLock::new();
static LOADING: Mutex<()> = Mutex::new(());

/// Loads the library (first call) and returns the environment sessions are
/// built in. Later calls reuse it; asking for a different library than the
/// one loaded is an error (a process holds one ONNX Runtime).
pub fn environment(configured: Option<&Path>) -> Result<ort::environment::Environment, LoadError> {
    let (path, source) = find_library(configured)?;
    if let Some(loaded) = LOADED.get() {
        return same_library(loaded, &path, &source);
    }
    let _guard = LOADING
        .lock()
        .map_err(|_| LoadError::Library("ONNX Runtime loading lock poisoned".into()))?;
    if let Some(loaded) = LOADED.get() {
        return same_library(loaded, &path, &source);
    }
    let builder = ort::init_from(&path).map_err(|e| {
        LoadError::Library(format!(
            "cannot load ONNX Runtime from {} ({source:?}): {e}: {INSTALL_HINT}",
            path.display()
        ))
    })?;
    let env = builder
        .with_name("weir")
        .with_telemetry(false)
        .build()
        .map_err(|e| {
            LoadError::Library(format!(
                "ONNX Runtime from {}: cannot create its environment: {e}",
                path.display()
            ))
        })?;
    tracing::info!(library = %path.display(), from = ?source, "ONNX Runtime loaded");
    let loaded = LOADED.get_or_init(|| Loaded {
        env,
        library: path.clone(),
    });
    Ok(loaded.env.clone())
}

fn same_library(
    loaded: &Loaded,
    path: &Path,
    source: &LibrarySource,
) -> Result<ort::environment::Environment, LoadError> {
    let same = loaded.library == path
        || matches!(
            (loaded.library.canonicalize(), path.canonicalize()),
            (Ok(a), Ok(b)) if a == b
        );
    if same || *source != LibrarySource::Pipeline {
        return Ok(loaded.env.clone());
    }
    Err(LoadError::Library(format!(
        "onnxruntime.library: this process already loaded ONNX Runtime from {}; it cannot also load {}",
        loaded.library.display(),
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_configured_library_is_a_clear_error() {
        let err = find_library(Some(Path::new("/nonexistent/libonnxruntime.so.1.31.1")))
            .expect_err("missing");
        let msg = err.to_string();
        assert!(msg.contains("onnxruntime.library"), "{msg}");
        assert!(
            msg.contains("/nonexistent/libonnxruntime.so.1.31.1"),
            "{msg}"
        );
        assert!(msg.contains("pip install onnxruntime==1.31.1"), "{msg}");
        assert!(msg.contains("scripts/setup.sh"), "{msg}");
    }

    #[test]
    fn the_venv_layout_is_searched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let capi = dir
            .path()
            .join("lib/python3.11/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).expect("mkdir");
        assert_eq!(find_in_venv(dir.path()), None);
        std::fs::write(capi.join("libonnxruntime.so.1.31.1"), b"").expect("write");
        assert_eq!(
            find_in_venv(dir.path()),
            Some(capi.join("libonnxruntime.so.1.31.1"))
        );
    }
}
