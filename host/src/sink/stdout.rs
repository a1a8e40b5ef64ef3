//! The `stdout` and `stderr` sinks.

use std::io::Write as _;

use serde::Deserialize;

use super::jsonl::OutputFormat;
use super::writer::WriterSink;
use crate::validate::FieldError;

pub type StdoutSink = WriterSink<std::io::Stdout>;
pub type StderrSink = WriterSink<std::io::Stderr>;

/// `type = "stdout"` (or `"stderr"`): one line per event on standard output
/// (error). Each batch is written and flushed, then acknowledged.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StdoutSinkConfig {
    /// `json` (default): the JSON envelope (key, value, timestamp, headers,
    /// source position); `value`: the value's bytes and a newline.
    pub format: OutputFormat,
}

impl StdoutSinkConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        Ok(())
    }

    pub fn build_stdout(&self) -> StdoutSink {
        let describe = format!("stdout ({})", self.format.name());
        WriterSink::new(describe, self.format, std::io::stdout(), |w| w.flush())
    }

    pub fn build_stderr(&self) -> StderrSink {
        let describe = format!("stderr ({})", self.format.name());
        WriterSink::new(describe, self.format, std::io::stderr(), |w| w.flush())
    }
}
