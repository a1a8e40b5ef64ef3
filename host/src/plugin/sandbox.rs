//! What a plugin may touch: nothing, unless the stage grants it.
//!
//! A plugin gets no files, no network, no environment variables and no stdin.
//! A stage may grant directories (read-only or read-write, mounted at a guest
//! path; WASI preopens through cap-std, so `..` and symlinks cannot leave them)
//! and named environment variables. A plugin's stdout and stderr go to the
//! host's log, line by line, tagged with the stage and plugin.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use serde::Deserialize;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtx};

use super::error::PluginError;
use crate::validate::FieldError;

/// The `[stages.grants]` table.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GrantsConfig {
    /// Host directories the plugin may open, each at a guest path.
    pub dirs: Vec<DirGrant>,
    /// Names of host environment variables the plugin may read (with the
    /// host's values). Unset variables are simply absent.
    pub env: Vec<String>,
}

/// One granted directory.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The host directory; relative to the pipeline file's folder.
    pub path: PathBuf,
    /// Where the plugin sees it, e.g. `/data`.
    pub guest: String,
    /// `ro` (default) or `rw`.
    #[serde(default)]
    pub mode: DirMode,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DirMode {
    #[default]
    Ro,
    Rw,
}

impl GrantsConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        for (i, d) in self.dirs.iter().enumerate() {
            if !d.guest.starts_with('/') {
                return Err(FieldError::new(
                    "guest",
                    "must be an absolute guest path like `/data`",
                )
                .within_index(i)
                .within("dirs"));
            }
        }
        for (i, name) in self.env.iter().enumerate() {
            if name.is_empty() || name.contains('=') {
                return Err(FieldError::at_index(
                    "env",
                    i,
                    format!("`{name}` is not a variable name"),
                ));
            }
        }
        Ok(())
    }

    /// Resolves the granted directories against the pipeline file's folder.
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        for d in &mut self.dirs {
            d.path = crate::paths::resolve(base_dir, &d.path);
        }
    }

    /// The grants as a stage's instances get them: the directories (paths
    /// resolved) and the granted variables' values, read now.
    pub fn sandbox(&self) -> Sandbox {
        Sandbox {
            dirs: self
                .dirs
                .iter()
                .map(|d| (d.path.clone(), d.guest.clone(), d.mode))
                .collect(),
            env: self
                .env
                .iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| (k.clone(), v)))
                .collect(),
        }
    }
}

/// The resolved grants of a stage.
#[derive(Clone, Debug, Default)]
pub struct Sandbox {
    dirs: Vec<(PathBuf, String, DirMode)>,
    env: Vec<(String, String)>,
}

impl Sandbox {
    /// The WASI context of one instance, and a handle on its stderr (held
    /// during a call, so that a failed call's output is reported once).
    pub fn wasi_ctx(
        &self,
        stage: &Arc<str>,
        plugin: &Arc<str>,
    ) -> Result<(WasiCtx, PluginStderr), PluginError> {
        let mut b = WasiCtx::builder();
        let stderr = LogOutput::new(stage, plugin, "stderr");
        b.stdout(LogOutput::new(stage, plugin, "stdout"));
        b.stderr(stderr.clone());
        for (host, guest, mode) in &self.dirs {
            let perms = match mode {
                DirMode::Ro => FsPerms::ReadOnly,
                DirMode::Rw => FsPerms::ReadWrite,
            };
            b.preopened_dir(host, guest, perms).map_err(|e| {
                PluginError::Engine(format!(
                    "stage {stage}: cannot grant directory {}: {e}",
                    host.display()
                ))
            })?;
        }
        for (k, v) in &self.env {
            b.env(k, v);
        }
        Ok((b.build(), PluginStderr(stderr)))
    }
}

/// Longest line kept from a plugin's stdout/stderr.
const MAX_LINE: usize = 8 * 1024;

/// Most lines of one call's stderr held back (the rest are dropped).
const MAX_HELD_LINES: usize = 64;

/// A plugin instance's stderr. While held (during a call), its lines are
/// kept instead of logged: a call that succeeds logs them after it; a call
/// that fails hands them to the fault's reason (a panic message), so that a
/// poison event re-run while it is isolated is not logged at every step.
#[derive(Clone)]
pub struct PluginStderr(LogOutput);

impl PluginStderr {
    /// Keeps the lines written from now on.
    pub(crate) fn hold(&self) {
        if let Ok(mut buf) = self.0.0.lock() {
            buf.held = Some(Vec::new());
        }
    }

    /// Logs the held lines and stops holding.
    pub(crate) fn release(&self) {
        if let Ok(mut buf) = self.0.0.lock() {
            for line in buf.held.take().unwrap_or_default() {
                buf.log(line.as_bytes());
            }
        }
    }

    /// The held lines (the partial last one included), without logging them;
    /// stops holding.
    pub(crate) fn take_held(&self) -> Vec<String> {
        let Ok(mut buf) = self.0.0.lock() else {
            return Vec::new();
        };
        let mut held = buf.held.take().unwrap_or_default();
        if !buf.pending.is_empty() {
            let line = std::mem::take(&mut buf.pending);
            held.push(String::from_utf8_lossy(&line).into_owned());
        }
        held
    }
}

/// The message of a Rust panic in a plugin's stderr lines: the lines after
/// `panicked at <place>:` up to the backtrace note.
pub(crate) fn panic_message(lines: &[String]) -> Option<String> {
    let at = lines.iter().position(|l| l.contains(" panicked at "))?;
    let place = lines[at]
        .split(" panicked at ")
        .nth(1)
        .map(|p| p.trim_end_matches(':').to_string());
    let message: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|l| !l.starts_with("note: "))
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let message = message.join(" / ");
    Some(match place {
        Some(place) if !message.is_empty() => format!("{message} (at {place})"),
        Some(place) => format!("at {place}"),
        None => message,
    })
}

/// A plugin's stdout or stderr, forwarded to the host log line by line.
#[derive(Clone)]
struct LogOutput(Arc<Mutex<LineBuffer>>);

struct LineBuffer {
    stage: Arc<str>,
    plugin: Arc<str>,
    stream: &'static str,
    pending: Vec<u8>,
    /// Lines kept back during a call ([`PluginStderr::hold`]).
    held: Option<Vec<String>>,
}

impl LineBuffer {
    fn emit(&mut self, line: &[u8]) {
        match &mut self.held {
            Some(held) if held.len() < MAX_HELD_LINES => {
                held.push(String::from_utf8_lossy(line).into_owned());
            }
            Some(_) => {}
            None => self.log(line),
        }
    }

    fn log(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let (stage, plugin, stream) = (&*self.stage, &*self.plugin, self.stream);
        if stream == "stderr" {
            tracing::warn!(target: "weir::plugin", stage, plugin, stream, "{text}");
        } else {
            tracing::info!(target: "weir::plugin", stage, plugin, stream, "{text}");
        }
    }

    fn write(&mut self, mut bytes: &[u8]) {
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            if self.pending.is_empty() {
                self.emit(&bytes[..nl]);
            } else {
                self.pending.extend_from_slice(&bytes[..nl]);
                let line = std::mem::take(&mut self.pending);
                self.emit(&line);
            }
            bytes = &bytes[nl + 1..];
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() > MAX_LINE {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line[..MAX_LINE]);
        }
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }
}

impl LogOutput {
    fn new(stage: &Arc<str>, plugin: &Arc<str>, stream: &'static str) -> Self {
        Self(Arc::new(Mutex::new(LineBuffer {
            stage: stage.clone(),
            plugin: plugin.clone(),
            stream,
            pending: Vec::new(),
            held: None,
        })))
    }

    fn write(&self, bytes: &[u8]) {
        if let Ok(mut buf) = self.0.lock() {
            buf.write(bytes);
        }
    }
}

impl IsTerminal for LogOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for LogOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        LogOutput::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for LogOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        LogOutput::write(&self, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_dirs_resolve_against_the_pipeline_folder_and_env_is_filtered() {
        let mut grants = GrantsConfig {
            dirs: vec![DirGrant {
                path: "data".into(),
                guest: "/data".into(),
                mode: DirMode::Rw,
            }],
            env: vec!["WEIR_SURELY_UNSET_VARIABLE".into()],
        };
        assert_eq!(grants.validate(), Ok(()));
        grants.resolve_paths(Path::new("/srv/pipe"));
        let sandbox = grants.sandbox();
        assert_eq!(sandbox.dirs[0].0, PathBuf::from("/srv/pipe/data"));
        assert!(sandbox.env.is_empty(), "unset variables are absent");
    }

    #[test]
    fn guest_paths_must_be_absolute() {
        let grants = GrantsConfig {
            dirs: vec![DirGrant {
                path: "data".into(),
                guest: "data".into(),
                mode: DirMode::Ro,
            }],
            env: vec![],
        };
        assert_eq!(
            grants.validate().map_err(|e| e.field()),
            Err("dirs[0].guest".to_owned())
        );
    }

    #[test]
    fn output_is_split_into_lines() {
        let out = LogOutput::new(&"s".into(), &"p".into(), "stdout");
        out.write(b"one\ntw");
        out.write(b"o\nthree");
        let pending = out.0.lock().map(|b| b.pending.clone()).unwrap_or_default();
        assert_eq!(pending, b"three");
    }
}
