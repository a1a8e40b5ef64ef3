//! What the fuzz targets (`fuzz/`, `cargo fuzz`) call: the parsers of what
//! someone else controls, re-exported here rather than made public where
//! they live. Not an API: hidden from the docs, it may change at any time.
//!
//! - the pipeline file: [`crate::config::PipelineConfig::from_str`] (already
//!   public; what `weir run` calls on the file's text);
//! - the lines of the `file` and `stdin` sources: [`lines_source`];
//! - a Kafka record → an event: [`record_to_event`];
//! - a plugin's inputs to a model: [`check_inputs`].

use std::sync::Arc;

pub use crate::inference::model::{ElemType, TensorSpec, check_inputs};
pub use crate::source::kafka::{RecordParts, TopicNames, record_to_event};
use crate::source::{LineFormat, LinesSource};
use crate::validate::FieldError;

/// A line source (as `[source] type = "file"` or `"stdin"` builds it) over
/// any reader, with the stream name `fuzz`: `event_time` is checked as the
/// pipeline file's would be. Its reader thread needs no runtime; reading it
/// (`Source::read`) does.
pub fn lines_source<R>(
    format: LineFormat,
    event_time: Option<&str>,
    reader: R,
) -> Result<LinesSource, FieldError>
where
    R: std::io::Read + Send + 'static,
{
    crate::source::lines::validate_event_time(event_time, format)?;
    LinesSource::spawn(
        "fuzz".to_owned(),
        Arc::from("fuzz"),
        format,
        event_time.map(Arc::from),
        reader,
    )
    .map_err(|e| FieldError::new("reader", e.to_string()))
}
