//! Watches the plugin directory for `.wasm` files that appear, change or
//! disappear: inotify (through `notify`) by default, or polling for
//! filesystems without change events. Changes are debounced per file: a file
//! is reported once it has been quiet (same size and mtime) for `debounce`,
//! so a plugin being copied in is never reported half-written.
//! [`watch_matching`] watches other files the same way (model files).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use notify::{RecursiveMode, Watcher};
use serde::Deserialize;

use crate::validate::{self, FieldError};

/// How to notice changes.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// Filesystem events (inotify on Linux).
    #[default]
    Notify,
    /// Scan the directory every `poll_interval_ms` (network filesystems,
    /// some container mounts).
    Poll,
}

/// The `[reload]` table.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// Watch `plugin_dir` and swap plugins while the pipeline runs.
    pub enabled: bool,
    pub mode: WatchMode,
    /// Polling period in `poll` mode (and the re-check period in `notify`
    /// mode while a file is still settling).
    pub poll_interval_ms: u64,
    /// How long a file must stay unchanged before it is loaded.
    pub debounce_ms: u64,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            mode: WatchMode::Notify,
            poll_interval_ms: 500,
            debounce_ms: 150,
        }
    }
}

impl ReloadConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        validate::at_least_one("poll_interval_ms", self.poll_interval_ms)
    }
}

/// A settled change of one plugin file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The file exists (new or modified) and has settled.
    Ready(PathBuf),
    Removed(PathBuf),
}

/// What a file looked like last time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// Inode and change time: an atomic rename of a same-sized file within
    /// the mtime granularity still changes these.
    inode: u64,
    changed: (i64, i64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let (inode, changed) = {
        use std::os::unix::fs::MetadataExt;
        (meta.ino(), (meta.ctime(), meta.ctime_nsec()))
    };
    #[cfg(not(unix))]
    let (inode, changed) = (0, (0, 0));
    meta.is_file().then(|| Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode,
        changed,
    })
}

fn is_plugin(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wasm")
        && !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
}

fn scan(dir: &Path, relevant: &dyn Fn(&Path) -> bool) -> HashMap<PathBuf, Stamp> {
    let mut out = HashMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if relevant(&p)
                && let Some(s) = stamp(&p)
            {
                out.insert(p, s);
            }
        }
    }
    out
}

/// Files as they were when a pipeline loaded them: a watcher started later
/// reports every change since, so a file replaced between the load and the
/// watcher's first look is not missed. Take it before loading.
#[derive(Clone, Debug, Default)]
pub struct Baseline(HashMap<PathBuf, Stamp>);

impl Baseline {
    /// The plugin files of `dir` now.
    pub fn plugins(dir: &Path) -> Self {
        Self(scan(dir, &is_plugin))
    }

    /// `files` now (one that does not exist is left out).
    pub fn files(files: &[PathBuf]) -> Self {
        Self(
            files
                .iter()
                .filter_map(|f| Some((f.clone(), stamp(f)?)))
                .collect(),
        )
    }
}

/// Runs the watch loop on the calling thread until `changes` is dropped by
/// the receiver side or `stop` fires, reporting the plugin files of `dir`
/// that differ from `loaded`.
pub fn watch(
    dir: &Path,
    config: &ReloadConfig,
    loaded: Baseline,
    changes: mpsc::Sender<Change>,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<(), notify::Error> {
    watch_matching(dir, config, Arc::new(is_plugin), loaded, changes, stop)
}

/// [`watch`] for the files of `dir` that `relevant` accepts (paths as
/// `dir.join(file name)`), e.g. the model files of a pipeline.
pub fn watch_matching(
    dir: &Path,
    config: &ReloadConfig,
    relevant: Arc<dyn Fn(&Path) -> bool + Send + Sync>,
    loaded: Baseline,
    changes: mpsc::Sender<Change>,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<(), notify::Error> {
    let (tx, rx) = mpsc::channel::<()>();
    let wake_on = relevant.clone();
    // Keep the watcher alive for the loop's duration.
    let _watcher = match config.mode {
        WatchMode::Notify => {
            // Wake only for plugin files: the folder may also hold files that
            // change all the time (outputs, a broker's data), and each wake-up
            // rescans the folder.
            let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                let relevant = match &res {
                    Ok(event) => event.paths.iter().any(|p| wake_on(p)),
                    Err(_) => true,
                };
                if relevant {
                    let _ = tx.send(());
                }
            })?;
            w.watch(dir, RecursiveMode::NonRecursive)?;
            Some(w)
        }
        WatchMode::Poll => None,
    };
    let poll = Duration::from_millis(config.poll_interval_ms);
    let debounce = Duration::from_millis(config.debounce_ms);
    let Baseline(mut known) = loaded;
    known.retain(|path, _| relevant(path));
    // Files seen changing, with their last stamp and when it last changed.
    let mut settling: HashMap<PathBuf, (Option<Stamp>, Instant)> = HashMap::new();
    while !stop.is_cancelled() {
        // Wake on an event, or periodically (polling, settling files, stop).
        let wait = if settling.is_empty() && config.mode == WatchMode::Notify {
            Duration::from_millis(200)
        } else {
            poll.min(debounce.max(Duration::from_millis(20)))
        };
        let _ = rx.recv_timeout(wait);
        while rx.try_recv().is_ok() {}
        let now = Instant::now();
        let current = scan(dir, &*relevant);
        for (path, s) in &current {
            if known.get(path) != Some(s) {
                match settling.get(path) {
                    Some((prev, _)) if *prev == Some(*s) => {}
                    _ => {
                        settling.insert(path.clone(), (Some(*s), now));
                    }
                }
            }
        }
        for path in known.keys() {
            if !current.contains_key(path) && !settling.contains_key(path) {
                settling.insert(path.clone(), (None, now));
            }
        }
        let mut settled = Vec::new();
        for (path, (s, since)) in &settling {
            let latest = current.get(path).copied();
            if latest != *s {
                continue; // changed again since: keep waiting (re-stamped above)
            }
            if now.duration_since(*since) >= debounce {
                settled.push((path.clone(), latest));
            }
        }
        for (path, latest) in settled {
            settling.remove(&path);
            let change = match latest {
                Some(s) => {
                    known.insert(path.clone(), s);
                    Change::Ready(path)
                }
                None => {
                    known.remove(&path);
                    Change::Removed(path)
                }
            };
            if changes.send(change).is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(rx: &mpsc::Receiver<Change>) -> Change {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a change within 10 s")
    }

    fn run(mode: WatchMode) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("old.wasm"), b"v0").expect("write");
        let (tx, rx) = mpsc::channel();
        let stop = tokio_util::sync::CancellationToken::new();
        let config = ReloadConfig {
            mode,
            poll_interval_ms: 20,
            debounce_ms: 100,
            ..ReloadConfig::default()
        };
        let path = dir.path().to_path_buf();
        let s = stop.clone();
        let loaded = Baseline::plugins(dir.path());
        let handle = std::thread::spawn(move || watch(&path, &config, loaded, tx, &s));
        std::thread::sleep(Duration::from_millis(150));

        // Written in pieces, quickly: reported once, complete.
        let p = dir.path().join("a.wasm");
        std::fs::write(&p, b"part").expect("write");
        for i in 0..5 {
            std::thread::sleep(Duration::from_millis(30));
            std::fs::write(&p, format!("part{i}").repeat(100)).expect("write");
        }
        assert_eq!(next(&rx), Change::Ready(p.clone()));
        assert_eq!(std::fs::read(&p).expect("read").len(), 500);
        // Atomic rename in; hidden temp files are ignored.
        let tmp = dir.path().join(".b.wasm.tmp");
        std::fs::write(&tmp, b"bbb").expect("write");
        std::fs::rename(&tmp, dir.path().join("b.wasm")).expect("rename");
        assert_eq!(next(&rx), Change::Ready(dir.path().join("b.wasm")));
        // Delete.
        std::fs::remove_file(dir.path().join("old.wasm")).expect("rm");
        assert_eq!(next(&rx), Change::Removed(dir.path().join("old.wasm")));
        assert!(
            rx.recv_timeout(Duration::from_millis(400)).is_err(),
            "nothing else"
        );
        stop.cancel();
        let _ = handle.join();
    }

    #[test]
    fn a_file_replaced_before_the_watcher_starts_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.wasm");
        std::fs::write(&p, b"v1").expect("write");
        let model = dir.path().join("model.onnx");
        std::fs::write(&model, b"m1").expect("write");
        let loaded = Baseline::plugins(dir.path());
        let models = Baseline::files(std::slice::from_ref(&model));
        // Replaced after the pipeline loaded it, before the watcher looked.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&p, b"v2, longer").expect("write");
        std::fs::write(&model, b"m2, longer").expect("write");
        let config = ReloadConfig {
            poll_interval_ms: 20,
            debounce_ms: 50,
            ..ReloadConfig::default()
        };
        let stop = tokio_util::sync::CancellationToken::new();
        let (tx, rx) = mpsc::channel();
        let (path, s, c) = (dir.path().to_path_buf(), stop.clone(), config.clone());
        let plugins = std::thread::spawn(move || watch(&path, &c, loaded, tx, &s));
        assert_eq!(next(&rx), Change::Ready(p));
        let (tx, rx) = mpsc::channel();
        let (path, s, m) = (dir.path().to_path_buf(), stop.clone(), model.clone());
        let relevant = Arc::new(move |f: &Path| f == m);
        let watcher =
            std::thread::spawn(move || watch_matching(&path, &config, relevant, models, tx, &s));
        assert_eq!(next(&rx), Change::Ready(model));
        stop.cancel();
        let _ = (plugins.join(), watcher.join());
    }

    #[test]
    fn notify_mode_reports_settled_changes_once() {
        run(WatchMode::Notify);
    }

    #[test]
    fn poll_mode_reports_settled_changes_once() {
        run(WatchMode::Poll);
    }
}
