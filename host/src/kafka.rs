//! librdkafka client settings shared by the Kafka source and sink: the
//! properties a pipeline file passes through, how weir's defaults and
//! forced values combine with them, and librdkafka's log lines.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::Deserialize;

use crate::validate::FieldError;

/// A property value as written in TOML: a string, number or boolean, handed
/// to librdkafka as text.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PropertyValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl std::fmt::Display for PropertyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(s) => f.write_str(s),
            Self::Integer(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl PropertyValue {
    /// The environment variable a `"env:NAME"` value names (a password the
    /// pipeline file should not hold, e.g. `sasl.password`).
    pub fn env_name(&self) -> Option<&str> {
        match self {
            Self::Text(s) => s.strip_prefix("env:"),
            _ => None,
        }
    }

    /// The text librdkafka gets: an `env:NAME` value read from the
    /// environment (empty if unset: [`validate_properties`] refuses that).
    pub fn resolved(&self) -> String {
        match self.env_name() {
            Some(name) => std::env::var(name).unwrap_or_default(),
            None => self.to_string(),
        }
    }
}

/// `[... .properties]`: any librdkafka property, by its librdkafka name; a
/// text value `"env:NAME"` is read from the environment variable `NAME`.
pub type Properties = BTreeMap<String, PropertyValue>;

/// Builds a client configuration: weir's `defaults` first, then the user's
/// `properties` (which win), then `forced` (which the user may not change).
pub fn client_config(
    defaults: &[(&str, &str)],
    properties: &Properties,
    forced: &[(&str, String)],
) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (k, v) in defaults {
        config.set(*k, *v);
    }
    for (k, v) in properties {
        config.set(k, v.resolved());
    }
    for (k, v) in forced {
        config.set(*k, v);
    }
    config
}

/// Rejects properties weir sets itself (`reserved`), then lets librdkafka
/// check names and values (no connection is made).
pub fn validate_properties(
    properties: &Properties,
    reserved: &[(&str, &str)],
    config: &ClientConfig,
) -> Result<(), FieldError> {
    for (key, value) in properties {
        if let Some((_, why)) = reserved.iter().find(|(k, _)| k == key) {
            return Err(FieldError::new(key, *why).within("properties"));
        }
        if let Some(name) = value.env_name()
            && std::env::var(name).is_err()
        {
            let why = format!("the environment variable {name} is not set (or not UTF-8)");
            return Err(FieldError::new(key, why).within("properties"));
        }
    }
    if let Err(e) = config.create_native_config() {
        let key = match &e {
            rdkafka::error::KafkaError::ClientConfig(_, _, key, _) => key.clone(),
            _ => String::new(),
        };
        let err = if key.is_empty() || !properties.contains_key(&key) {
            FieldError::new("properties", e.to_string())
        } else {
            FieldError::new(&key, e.to_string()).within("properties")
        };
        return Err(err);
    }
    Ok(())
}

/// Forwards one librdkafka log line to `tracing` at the matching level.
pub fn forward_log(level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
    use rdkafka::config::RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => {
            tracing::error!(target: "librdkafka", fac, "{log_message}")
        }
        L::Warning => tracing::warn!(target: "librdkafka", fac, "{log_message}"),
        L::Notice | L::Info => tracing::info!(target: "librdkafka", fac, "{log_message}"),
        L::Debug => tracing::debug!(target: "librdkafka", fac, "{log_message}"),
    }
}
