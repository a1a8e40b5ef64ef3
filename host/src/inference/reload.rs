//! Model hot swap: the model files are watched like plugins (notify or
//! polling, debounced until a file is quiet); a settled change is loaded,
//! dry-run and swapped in by the registry on a background thread, off the
//! data path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use tokio_util::sync::CancellationToken;

use super::registry::ModelRegistry;
use crate::plugin::{Change, ReloadConfig, watch_matching};

/// Watches every model file until `stop`: one watcher thread per folder,
/// one thread applying the changes.
pub fn start_model_watch(
    registry: &ModelRegistry,
    config: &ReloadConfig,
    stop: &CancellationToken,
) -> std::io::Result<()> {
    let mut by_dir: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in registry.files() {
        let dir = file
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        by_dir.entry(dir).or_default().insert(file);
    }
    let (tx, rx) = mpsc::channel::<Change>();
    let loaded = registry.loaded_files();
    for (dir, files) in by_dir {
        let loaded = loaded.clone();
        let tx = tx.clone();
        let config = config.clone();
        let stop = stop.clone();
        let files = Arc::new(files);
        std::thread::Builder::new()
            .name("weir-model-watch".into())
            .spawn(move || {
                let relevant = move |p: &Path| files.contains(p);
                if let Err(e) = watch_matching(&dir, &config, Arc::new(relevant), loaded, tx, &stop) {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot watch the model folder: model hot swap is off for it");
                }
            })?;
    }
    drop(tx);
    let registry = registry.clone();
    std::thread::Builder::new()
        .name("weir-model-reload".into())
        .spawn(move || {
            // Loading and dry-running a new version yields the CPU to the
            // data path.
            crate::plugin::lower_this_thread_priority();
            while let Ok(change) = rx.recv() {
                match change {
                    Change::Ready(path) => registry.file_changed(&path),
                    Change::Removed(path) => registry.file_removed(&path),
                }
            }
        })?;
    Ok(())
}
