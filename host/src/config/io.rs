//! `[source]`, `[outputs.*]` and `[dead_letter]`: `type`-tagged tables whose
//! variants' config structs live with their implementations.

use std::path::Path;

use serde::Deserialize;

use crate::sink::file::FileSinkConfig;
use crate::sink::kafka::KafkaSinkConfig;
use crate::sink::stdout::StdoutSinkConfig;
use crate::sink::{Sink, SinkError};
use crate::source::file::FileSourceConfig;
use crate::source::generate::GenerateSourceConfig;
use crate::source::kafka::KafkaSourceConfig;
use crate::source::stdin::StdinSourceConfig;
use crate::source::{Source, SourceError};
use crate::validate::FieldError;

/// `[source]`: where events come from. `type` selects the kind; the other
/// fields are the kind's (see each config struct).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    /// Built-in synthetic events ([`GenerateSourceConfig`]).
    Generate(GenerateSourceConfig),
    /// A file of lines ([`FileSourceConfig`]).
    File(FileSourceConfig),
    /// Lines on standard input ([`StdinSourceConfig`]).
    Stdin(StdinSourceConfig),
    /// Kafka topics, as a consumer-group member ([`KafkaSourceConfig`]).
    Kafka(KafkaSourceConfig),
}

impl SourceConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        match self {
            SourceConfig::Generate(c) => c.validate(),
            SourceConfig::File(c) => c.validate(),
            SourceConfig::Stdin(c) => c.validate(),
            SourceConfig::Kafka(c) => c.validate(),
        }
    }

    /// Creates the source. Relative paths are resolved against `base_dir`.
    pub fn build(&self, base_dir: &Path) -> Result<Box<dyn Source>, SourceError> {
        Ok(match self {
            SourceConfig::Generate(c) => Box::new(c.build()?),
            SourceConfig::File(c) => Box::new(c.build(base_dir)?),
            SourceConfig::Stdin(c) => Box::new(c.build()?),
            SourceConfig::Kafka(c) => Box::new(c.build()?),
        })
    }

    /// Deserializes the variant named `ty` directly, for an error with the
    /// precise position (serde's tagged enums lose it).
    pub(super) fn variant_error(
        ty: &str,
        de: toml::de::Deserializer<'_>,
    ) -> Option<toml::de::Error> {
        match ty {
            "generate" => GenerateSourceConfig::deserialize(de).err(),
            "file" => FileSourceConfig::deserialize(de).err(),
            "stdin" => StdinSourceConfig::deserialize(de).err(),
            "kafka" => KafkaSourceConfig::deserialize(de).err(),
            _ => None,
        }
    }
}

/// An output (`[outputs.<name>]`) or the dead-letter output (`[dead_letter]`).
/// `type` selects the kind; the other fields are the kind's.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// JSON lines on standard output ([`StdoutSinkConfig`]).
    Stdout(StdoutSinkConfig),
    /// JSON lines on standard error ([`StdoutSinkConfig`]); the default
    /// dead-letter output.
    Stderr(StdoutSinkConfig),
    /// A file ([`FileSinkConfig`]).
    File(FileSinkConfig),
    /// A Kafka topic ([`KafkaSinkConfig`]).
    Kafka(KafkaSinkConfig),
}

impl SinkConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        match self {
            SinkConfig::Stdout(c) | SinkConfig::Stderr(c) => c.validate(),
            SinkConfig::File(c) => c.validate(),
            SinkConfig::Kafka(c) => c.validate(),
        }
    }

    /// Creates the sink. Relative paths are resolved against `base_dir`.
    pub fn build(&self, base_dir: &Path) -> Result<Box<dyn Sink>, SinkError> {
        Ok(match self {
            SinkConfig::Stdout(c) => Box::new(c.build_stdout()),
            SinkConfig::Stderr(c) => Box::new(c.build_stderr()),
            SinkConfig::File(c) => Box::new(c.build(base_dir)?),
            SinkConfig::Kafka(c) => Box::new(c.build()?),
        })
    }

    pub(super) fn variant_error(
        ty: &str,
        de: toml::de::Deserializer<'_>,
    ) -> Option<toml::de::Error> {
        match ty {
            "stdout" | "stderr" => StdoutSinkConfig::deserialize(de).err(),
            "file" => FileSinkConfig::deserialize(de).err(),
            "kafka" => KafkaSinkConfig::deserialize(de).err(),
            _ => None,
        }
    }
}
