//! The `file` sink.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;

use serde::Deserialize;

use super::jsonl::OutputFormat;
use super::writer::WriterSink;
use crate::endpoint::EndpointError;
use crate::paths::ConfigPath;
use crate::validate::{self, FieldError};

pub type FileSink = WriterSink<File>;

/// `type = "file"`: one line per event in a file.
///
/// Each batch is written with one write; it is acknowledged once the write
/// returned, i.e. the data is with the operating system, not necessarily on
/// disk (set `fsync = true` to sync every batch to disk before acknowledging).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The file, relative to the pipeline file's folder. Missing parent
    /// folders are created.
    pub path: ConfigPath,
    /// `false` (default): the file is emptied when the pipeline starts;
    /// `true`: lines are added at its end.
    #[serde(default)]
    pub append: bool,
    /// Sync the file to disk after every batch, before acknowledging it.
    /// Slower; default `false`.
    #[serde(default)]
    pub fsync: bool,
    /// `json` (default): the JSON envelope (key, value, timestamp, headers,
    /// source position); `value`: the value's bytes and a newline.
    #[serde(default)]
    pub format: OutputFormat,
}

impl FileSinkConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        validate::not_empty("path", self.path.written())
    }

    /// Creates the parent folders and opens the file (truncating it unless
    /// `append`): a path that cannot be written is an error now.
    pub fn build(&self) -> Result<FileSink, EndpointError> {
        let path = self.path.resolved();
        let io_error = |what: &str, source| EndpointError::Io {
            context: format!("{what} {}", path.display()),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_error("cannot create the folder of", e))?;
        }
        let mut options = OpenOptions::new();
        options.create(true);
        if self.append {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        let file = options
            .open(path)
            .map_err(|e| io_error("cannot open the output file", e))?;
        let describe = format!(
            "file {} ({})",
            self.path.written().display(),
            self.format.name()
        );
        let after_write: fn(&mut File) -> std::io::Result<()> = if self.fsync {
            |f| {
                f.flush()?;
                f.sync_data()
            }
        } else {
            |f| f.flush()
        };
        Ok(WriterSink::new(describe, self.format, file, after_write))
    }

    /// Resolves `path` against the pipeline file's folder.
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        self.path.resolve(base_dir);
    }
}

#[cfg(test)]
mod tests;
