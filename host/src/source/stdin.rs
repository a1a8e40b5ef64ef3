//! The `stdin` source: lines on standard input.

use std::sync::Arc;

use serde::Deserialize;

use super::lines::{LineFormat, LinesSource};
use crate::endpoint::EndpointError;
use crate::validate::FieldError;

/// `[source] type = "stdin"`: one event per line of standard input, until
/// end of input. Positions: stream `stdin`, partition 0, offset = the 0-based
/// line number.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StdinSourceConfig {
    /// `json` (default): each non-empty line is a JSON document, and a line
    /// that is not goes to the dead-letter output; `text`: each non-empty line
    /// is the value as is.
    pub format: LineFormat,
    /// A JSON pointer to each event's time in milliseconds (`"/ts"`);
    /// absent: the ingestion time.
    pub event_time: Option<String>,
}

impl StdinSourceConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        super::lines::validate_event_time(self.event_time.as_deref(), self.format)
    }

    /// Starts reading standard input. The reader thread blocks on stdin and
    /// cannot be interrupted; it ends with the input or the process.
    pub fn build(&self) -> Result<LinesSource, EndpointError> {
        let describe = format!("stdin ({})", self.format.name());
        LinesSource::spawn(
            describe,
            Arc::from("stdin"),
            self.format,
            self.event_time.as_deref().map(Arc::from),
            std::io::stdin(),
        )
    }
}
