//! The state tables of the pipeline file: `[state]` (the store),
//! `[watermark]` (event time) and a stage's `[stages.state]` (its key, TTL
//! and bounds).

use std::time::Duration;

use serde::Deserialize;

use crate::validate::{self, FieldError};

/// How often the store is synced to disk.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Every commit is synced (`fdatasync`) before the next batch commits.
    #[default]
    Batch,
    /// Commits reach the OS at once (they survive a crash of weir) and are
    /// synced every `interval_ms` (a power loss may lose the last interval:
    /// the source then replays it).
    Interval,
}

/// Whether committed writes are published to a changelog topic (Kafka sources).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChangelogMode {
    /// A pipeline on a Kafka source publishes each keyed stage's commits to
    /// the compacted topic `<pipeline>-<stage>-changelog` (created if
    /// missing) and restores assigned partitions from it.
    #[default]
    Auto,
    /// No changelog: state stays on this machine.
    Off,
}

/// `[state]`: the store every keyed stage of the pipeline keeps its state in
/// (under `state_dir`, one folder per pipeline name).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// `batch` (default): sync every commit; `interval`: sync every
    /// `interval_ms`.
    pub durability: Durability,
    /// With `durability = "interval"`: how often the store is synced, in
    /// milliseconds (10 to 60000). Default 1000.
    pub interval_ms: u64,
    /// `auto` (default) or `off`.
    pub changelog: ChangelogMode,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Batch,
            interval_ms: 1000,
            changelog: ChangelogMode::Auto,
        }
    }
}

impl StateConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        validate::in_range("interval_ms", self.interval_ms, 10..=60_000)
    }

    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }
}

/// `[watermark]`: how event time advances. A source partition's watermark is
/// the largest event time it delivered minus `out_of_order_ms`; a stage's is
/// the smallest over the partitions that delivered in the last
/// `idle_timeout_ms`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct WatermarkConfig {
    /// How late (in event time) an event may arrive, in milliseconds.
    /// Default 5000.
    pub out_of_order_ms: u64,
    /// A partition that delivered nothing for this long (wall clock) no
    /// longer holds the watermark back, in milliseconds. Default 10000.
    pub idle_timeout_ms: u64,
}

impl Default for WatermarkConfig {
    fn default() -> Self {
        Self {
            out_of_order_ms: 5000,
            idle_timeout_ms: 10_000,
        }
    }
}

impl WatermarkConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        validate::at_most("out_of_order_ms", self.out_of_order_ms, 86_400_000)?;
        validate::in_range("idle_timeout_ms", self.idle_timeout_ms, 1..=86_400_000)
    }
}

/// The largest `max_key_bytes`.
pub const MAX_KEY_BYTES: usize = 64 * 1024;
/// The largest `max_value_bytes`.
pub const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;

/// `[stages.state]`: makes a stage keyed. Its plugin must be a keyed plugin
/// (contract 0.2.0, `keyed = true`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StageStateConfig {
    /// Where the state key is: `"$key"` (the event's key) or a JSON pointer
    /// into the event's value (`"/card_id"`). An event without it goes to
    /// the dead letters.
    pub key: String,
    /// Entries not written for this long (seconds) read as absent and are
    /// removed. Absent: kept until deleted.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    /// The longest key, in bytes (1 to 65536). Default 1024.
    #[serde(default = "default_max_key")]
    pub max_key_bytes: usize,
    /// The largest value a plugin may write, in bytes (1 to 16 MiB).
    /// Default 65536. A write over it sends its event to the dead letters.
    #[serde(default = "default_max_value")]
    pub max_value_bytes: usize,
    /// On a Kafka source: the stage's changelog topic. Default
    /// `<pipeline>-<stage>-changelog`.
    #[serde(default)]
    pub changelog_topic: Option<String>,
    /// How many keys' committed state the stage keeps in memory between
    /// batches, so a hot key is not read back from the store on every
    /// batch (0 to 10,000,000; 0: none). Memory: up to this many keys and
    /// values. Default 65536.
    #[serde(default = "default_cache_keys")]
    pub cache_keys: usize,
}

fn default_cache_keys() -> usize {
    65_536
}

fn default_max_key() -> usize {
    1024
}

fn default_max_value() -> usize {
    64 * 1024
}

impl StageStateConfig {
    /// A stage keyed by `key`, with the default bounds.
    pub fn keyed_by(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            ttl_secs: None,
            max_key_bytes: default_max_key(),
            max_value_bytes: default_max_value(),
            changelog_topic: None,
            cache_keys: default_cache_keys(),
        }
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        super::KeySpec::parse(&self.key).map_err(|m| FieldError::new("key", m))?;
        if let Some(ttl) = self.ttl_secs {
            validate::in_range("ttl_secs", ttl, 1..=10 * 365 * 86_400)?;
        }
        validate::in_range("max_key_bytes", self.max_key_bytes, 1..=MAX_KEY_BYTES)?;
        validate::in_range("max_value_bytes", self.max_value_bytes, 1..=MAX_VALUE_BYTES)?;
        validate::in_range("cache_keys", self.cache_keys, 0..=10_000_000)?;
        if let Some(topic) = &self.changelog_topic {
            validate::not_blank("changelog_topic", topic)?;
        }
        Ok(())
    }

    /// The TTL in milliseconds, if any.
    pub fn ttl_ms(&self) -> Option<i64> {
        self.ttl_secs.map(|s| (s as i64).saturating_mul(1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_state_checks_name_the_field() {
        let mut c = StageStateConfig::keyed_by("card_id");
        assert_eq!(c.validate().map_err(|e| e.field()), Err("key".to_owned()));
        c.key = "/card_id".into();
        assert!(c.validate().is_ok());
        c.key = "$key".into();
        assert!(c.validate().is_ok());
        c.ttl_secs = Some(0);
        assert_eq!(
            c.validate().map_err(|e| e.to_string()),
            Err("ttl_secs: must be between 1 and 315360000, got 0".to_owned())
        );
        c.ttl_secs = Some(60);
        c.max_value_bytes = 0;
        assert_eq!(
            c.validate().map_err(|e| e.field()),
            Err("max_value_bytes".to_owned())
        );
        c.max_value_bytes = 10;
        c.changelog_topic = Some(" ".into());
        assert_eq!(
            c.validate().map_err(|e| e.field()),
            Err("changelog_topic".to_owned())
        );
        let c: StageStateConfig =
            toml::from_str("key = \"/a\"\nchangelog_topic = \"cards-log\"").expect("parse");
        assert_eq!(c.changelog_topic.as_deref(), Some("cards-log"));
    }

    #[test]
    fn tables_deny_unknown_fields() {
        let err =
            toml::from_str::<StageStateConfig>("key = \"/a\"\nttl = 3").expect_err("unknown field");
        assert!(err.to_string().contains("unknown field `ttl`"), "{err}");
        let err =
            toml::from_str::<StateConfig>("durability = \"sometimes\"").expect_err("bad variant");
        assert!(err.to_string().contains("sometimes"), "{err}");
        let c: StateConfig = toml::from_str("durability = \"interval\"").expect("parse");
        assert_eq!(c.durability, Durability::Interval);
        assert!(
            WatermarkConfig {
                idle_timeout_ms: 0,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }
}
