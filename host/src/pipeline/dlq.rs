//! Dead letters: events that could not be processed, with the reason.

use std::sync::Arc;

use crate::event::{Event, Header};

/// Header names a dead-lettered event carries (also in a Kafka DLQ topic).
pub mod headers {
    pub const ERROR: &str = "weir.error";
    pub const STAGE: &str = "weir.stage";
    pub const PLUGIN: &str = "weir.plugin";
    pub const PLUGIN_VERSION: &str = "weir.plugin.version";
    pub const SOURCE_STREAM: &str = "weir.source.stream";
    pub const SOURCE_PARTITION: &str = "weir.source.partition";
    pub const SOURCE_OFFSET: &str = "weir.source.offset";
}

/// An event that goes to the dead-letter output, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The event as it entered the stage that refused it (the source's event
    /// for input that could not be parsed).
    pub event: Event,
    pub reason: String,
    /// The stage, or `None` when the source itself rejected the input.
    pub stage: Option<Arc<str>>,
    pub plugin: Option<Arc<str>>,
    /// Content hash of the plugin version that refused it.
    pub plugin_version: Option<Arc<str>>,
}

impl DeadLetter {
    /// A dead letter from the source (unparseable input).
    pub fn from_source(event: Event, reason: impl Into<String>) -> Self {
        Self {
            event,
            reason: reason.into(),
            stage: None,
            plugin: None,
            plugin_version: None,
        }
    }

    /// The event to write to the dead-letter sink: the original key, value and
    /// headers, plus `weir.*` headers with the reason and provenance.
    pub fn into_event(self) -> Event {
        let mut event = self.event;
        let pos = event.position.clone();
        let mut add = |name: &str, value: String| event.headers.push(Header::new(name, value));
        add(headers::ERROR, self.reason);
        if let Some(stage) = self.stage {
            add(headers::STAGE, stage.to_string());
        }
        if let Some(plugin) = self.plugin {
            add(headers::PLUGIN, plugin.to_string());
        }
        if let Some(version) = self.plugin_version {
            add(headers::PLUGIN_VERSION, version.to_string());
        }
        add(headers::SOURCE_STREAM, pos.stream.to_string());
        add(headers::SOURCE_PARTITION, pos.partition.to_string());
        add(headers::SOURCE_OFFSET, pos.offset.to_string());
        event
    }
}
