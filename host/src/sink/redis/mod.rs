//! The `redis` sink: each event written under a key built from a template,
//! as a hash of its JSON object's fields or as a string, with an optional
//! TTL: the online feature store a serving API reads.
//!
//! Writes are last-writer-wins made safe by a version stored beside the
//! value (a hash field, or a sibling key `<key>:<version_field>` for
//! strings): a Lua script writes only when the event's version is newer
//! than the stored one, so a replay after a crash, or an event that arrives
//! late, never overwrites a newer value. A batch is one round trip: one call
//! of the script for up to 1,000 events, keys, versions and values. Connection errors are retried (backoff with jitter; the
//! connection is made anew), with the pipeline slowed down meanwhile; an
//! event the server refuses (a key holding another type...) goes to the
//! dead letters with the server's message.
//!
//! `version = "none"` ([`unversioned`]) writes without a version or a
//! script: pipelined `HSET` (the event's fields merged into the hash) or
//! `SET`, encoded straight into RESP on the sink's own connection
//! ([`resp`]), several times faster, but the last writer wins in arrival
//! order only, so a replay after a crash may briefly write older values
//! again.

use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, RedisError, RetryMethod};
use async_trait::async_trait;
use serde::Deserialize;

use super::fields::{Json, field_text};
use super::retry::RetryConfig;
use super::secret::Secret;
use super::template::{KeyTemplate, Version, validate_pointer};
use super::upsert::{self, Attempt, Upsert};
use super::{Sink, SinkBatch, SinkContext};
use crate::endpoint::EndpointError;
use crate::event::Event;
use crate::validate::{self, FieldError};
use resp::RespConnection;

mod resp;
mod unversioned;

const SCRIPT: &str = include_str!("upsert.lua");

/// Writes per call of the script.
const PER_CALL: usize = 1000;

/// `type = "redis"`.
///
/// ```toml
/// [outputs.features]
/// type = "redis"
/// url = "redis://127.0.0.1:6379/0"
/// password = "env:REDIS_PASSWORD"      # optional
/// key = "card:{/card_id}"
/// mode = "hash"                        # or "string"
/// version = "/ts"                      # or "offset" (default), or "none"
/// ttl_secs = 86400                     # optional
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisSinkConfig {
    /// `redis://host:port[/db]`, without a password (see `password`).
    pub url: String,
    /// The username (Redis ACLs), if any.
    pub username: Option<String>,
    /// The password: `"env:NAME"` reads it from the environment.
    pub password: Option<Secret>,
    /// The key template: `{key}` is the event's key, `{/json/pointer}` a
    /// field of its value, e.g. `"card:{/card_id}"`.
    pub key: KeyTemplate,
    /// `hash` (default): the value's JSON object becomes the hash's fields
    /// (strings as is, other values as JSON), replacing the previous ones
    /// (with `version = "none"`: merged into them); `string`: the value's
    /// bytes.
    #[serde(default)]
    pub mode: RedisMode,
    /// The version that orders writes of one key: `"offset"` (default; the
    /// source offset) or an integer field such as `"/ts"`; or `"none"`: no
    /// version, plain pipelined `HSET`/`SET`, last writer wins in arrival
    /// order only (a replay after a crash may briefly write older values
    /// again; use a version where that matters).
    #[serde(default = "offset")]
    pub version: RedisVersion,
    /// Where the version is kept: the hash field (hash mode) or the suffix
    /// of the sibling key `<key>:<version_field>` (string mode). Default
    /// `_version`; refused with `version = "none"`.
    pub version_field: Option<String>,
    /// Expire keys this many seconds after their last write.
    pub ttl_secs: Option<u64>,
    /// Timeout of connecting and of one batch's round trip (default 5000 ms).
    #[serde(default = "timeout_ms")]
    pub timeout_ms: u64,
    /// Retries (`[outputs.<name>.retry]`): unbounded by default.
    #[serde(default)]
    pub retry: RetryConfig,
}

fn offset() -> RedisVersion {
    RedisVersion::Versioned(Version::Offset)
}

/// The redis sink's `version`: a [`Version`], or `"none"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisVersion {
    /// No version: plain `HSET`/`SET`, see [`unversioned`].
    None,
    Versioned(Version),
}

impl<'de> Deserialize<'de> for RedisVersion {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let s = String::deserialize(de)?;
        if s == "none" {
            return Ok(RedisVersion::None);
        }
        Version::parse(&s)
            .map(RedisVersion::Versioned)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "{s:?} is none of \"offset\", \"none\" or a JSON pointer such as \"/ts\""
                ))
            })
    }
}

fn timeout_ms() -> u64 {
    5000
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RedisMode {
    #[default]
    Hash,
    String,
}

impl RedisMode {
    fn name(self) -> &'static str {
        match self {
            RedisMode::Hash => "hash",
            RedisMode::String => "string",
        }
    }
}

impl RedisSinkConfig {
    fn client(&self) -> Result<Client, FieldError> {
        let info = self
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| FieldError::new("url", format!("not a Redis URL ({e})")))?;
        if info.redis_settings().password().is_some() {
            return Err(FieldError::new(
                "url",
                "must not hold a password: use `password = \"env:NAME\"`",
            ));
        }
        let mut redis = info.redis_settings().clone();
        if let Some(user) = &self.username {
            redis = redis.set_username(user);
        }
        if let Some(password) = &self.password {
            password.validate("password")?;
            let value = password
                .reveal()
                .map_err(|e| FieldError::new("password", e))?;
            redis = redis.set_password(value);
        }
        Client::open(info.set_redis_settings(redis))
            .map_err(|e| FieldError::new("url", e.to_string()))
    }

    /// The version field (`None`: no version).
    fn version_field(&self) -> Option<&str> {
        match self.version {
            RedisVersion::None => None,
            RedisVersion::Versioned(_) => Some(self.version_field.as_deref().unwrap_or("_version")),
        }
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        validate::not_blank("url", &self.url)?;
        self.client()?;
        match (&self.version, &self.version_field) {
            (RedisVersion::Versioned(Version::Pointer(p)), _) => validate_pointer("version", p)?,
            (RedisVersion::None, Some(_)) => {
                return Err(FieldError::new(
                    "version_field",
                    "has no use with `version = \"none\"` (no version is stored): remove it",
                ));
            }
            _ => {}
        }
        if let Some(field) = &self.version_field {
            validate::not_blank("version_field", field)?;
        }
        if let Some(ttl) = self.ttl_secs {
            validate::in_range("ttl_secs", ttl, 1..=(i64::MAX as u64))?;
        }
        self.retry.validate_with_timeout(self.timeout_ms, 600_000)
    }

    /// Creates the client; it connects at the first batch.
    pub fn build(&self) -> Result<RedisSink, EndpointError> {
        let client = super::checked("redis", self.validate(), || self.client())?;
        let timeout = Duration::from_millis(self.timeout_ms);
        Ok(RedisSink {
            describe: format!(
                "redis {} ({}, {}{})",
                self.url,
                self.key.written(),
                self.mode.name(),
                if self.version == RedisVersion::None {
                    ", unversioned"
                } else {
                    ""
                }
            ),
            client,
            connection_config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout)),
            connection: None,
            bare: None,
            waiting: None,
            timeout,
            script_sha: ::redis::Script::new(SCRIPT).get_hash().to_owned(),
            config: self.clone(),
            context: None,
        })
    }
}

/// A running Redis sink.
pub struct RedisSink {
    describe: String,
    client: Client,
    connection_config: AsyncConnectionConfig,
    /// The versioned writes' connection.
    connection: Option<MultiplexedConnection>,
    /// The unversioned writes' connection ([`resp`]).
    bare: Option<RespConnection>,
    /// The unversioned batch whose replies are still coming.
    waiting: Option<unversioned::Waiting>,
    timeout: Duration,
    script_sha: String,
    config: RedisSinkConfig,
    context: Option<SinkContext>,
}

/// One event, ready to write.
pub(super) struct Write {
    key: String,
    /// 0 without a version.
    version: i64,
    /// The string value, or the hash's field/value pairs.
    value: Parts,
}

/// A write's value: byte strings packed in one buffer (a hash's fields:
/// one allocation, not one per field), or the event's value itself (a
/// string: no copy).
pub(super) enum Parts {
    Packed { bytes: Vec<u8>, ends: Vec<usize> },
    Whole(bytes::Bytes),
}

impl Default for Parts {
    fn default() -> Self {
        Self::with_capacity(0, 0)
    }
}

impl Parts {
    fn with_capacity(bytes: usize, parts: usize) -> Self {
        Parts::Packed {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(parts),
        }
    }

    /// Adds a part (to a packed value; a whole one stays as it is).
    fn push(&mut self, part: &[u8]) {
        if let Parts::Packed { bytes, ends } = self {
            bytes.extend_from_slice(part);
            ends.push(bytes.len());
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Parts::Packed { ends, .. } => ends.len(),
            Parts::Whole(_) => 1,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let (bytes, ends, whole): (&[u8], &[usize], Option<&[u8]>) = match self {
            Parts::Packed { bytes, ends } => (bytes, ends, None),
            Parts::Whole(b) => (&[], &[], Some(b)),
        };
        let starts = std::iter::once(0).chain(ends.iter().copied());
        starts
            .zip(ends.iter().copied())
            .map(move |(a, b)| &bytes[a..b])
            .chain(whole)
    }
}

impl RedisSink {
    /// An event's write, or why it cannot be written.
    fn prepare(&self, event: &Event) -> Result<Write, String> {
        let c = &self.config;
        let version = match &c.version {
            RedisVersion::Versioned(v) => Some(v),
            RedisVersion::None => None,
        };
        let needs_json = c.key.reads_value()
            || version.is_some_and(Version::reads_value)
            || c.mode == RedisMode::Hash;
        let json = if needs_json {
            Some(Json::parse(&event.value).map_err(|e| format!("the value is not JSON ({e})"))?)
        } else {
            None
        };
        let key = c.key.render(event, json.as_ref())?;
        let version = match version {
            Some(v) => v.of(event, json.as_ref())?,
            None => 0,
        };
        let skipped = c.version_field();
        let value = match (c.mode, json) {
            (RedisMode::Hash, Some(Json::Object(fields))) => {
                let mut pairs = Parts::with_capacity(event.value.len(), fields.len() * 2);
                for (name, raw) in fields {
                    if skipped == Some(&*name) {
                        continue;
                    }
                    pairs.push(name.as_bytes());
                    pairs.push(field_text(raw).as_bytes());
                }
                pairs
            }
            (RedisMode::Hash, _) => {
                return Err("hash mode needs a JSON object as the value".into());
            }
            (RedisMode::String, _) => Parts::Whole(event.value.clone()),
        };
        Ok(Write {
            key,
            version,
            value,
        })
    }

    /// One call of the script writing all of `writes`.
    fn command(&self, writes: &[&Write], version_field: &str) -> ::redis::Cmd {
        let c = &self.config;
        let mut cmd = ::redis::cmd("EVALSHA");
        cmd.arg(&self.script_sha).arg(writes.len() * 2);
        for w in writes {
            cmd.arg(&w.key).arg(format!("{}:{version_field}", w.key));
        }
        cmd.arg(c.mode.name())
            .arg(c.ttl_secs.unwrap_or(0))
            .arg(version_field);
        for w in writes {
            cmd.arg(w.version).arg(w.value.len());
            for part in w.value.iter() {
                cmd.arg(part);
            }
        }
        cmd
    }

    /// The versioned writes' connection, made (and the script loaded) if
    /// there is none.
    async fn connection(&mut self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(c) = &self.connection {
            return Ok(c.clone());
        }
        let mut c = self
            .client
            .get_multiplexed_async_connection_with_config(&self.connection_config)
            .await?;
        let _: String = ::redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(SCRIPT)
            .query_async(&mut c)
            .await?;
        self.connection = Some(c.clone());
        Ok(c)
    }

    /// The unversioned writes' connection, made if there is none (it is
    /// the caller's until given back).
    async fn bare(&mut self) -> Result<RespConnection, RedisError> {
        match self.bare.take() {
            Some(c) => Ok(c),
            None => RespConnection::connect(self.client.get_connection_info(), self.timeout).await,
        }
    }

    /// Runs `writes` (versioned) in one round trip: one call of the script
    /// per [`PER_CALL`] writes (a script blocks the server while it runs).
    async fn run(&mut self, writes: &[&Write], version_field: &str) -> Result<(), RedisError> {
        let mut connection = self.connection().await?;
        let mut pipe = ::redis::pipe();
        for chunk in writes.chunks(PER_CALL) {
            pipe.add_command(self.command(chunk, version_field));
        }
        let _: Vec<i64> = pipe.query_async(&mut connection).await?;
        Ok(())
    }

    /// How an error went: a fresh connection is made next time if it may
    /// help.
    fn classify(&mut self, e: &RedisError) -> Attempt {
        let unreachable = e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_unrecoverable_error()
            || e.code() == Some("LOADING");
        let passing = e.code() == Some("NOSCRIPT")
            || matches!(
                e.retry_method(),
                RetryMethod::WaitAndRetry | RetryMethod::RetryImmediately
            );
        if unreachable || passing {
            // Start over with a fresh connection (and the script loaded).
            self.connection = None;
        }
        if unreachable {
            Attempt::Unreachable(e.to_string())
        } else if passing {
            Attempt::Passing(e.to_string())
        } else {
            Attempt::Refused(e.to_string())
        }
    }
}

#[async_trait]
impl Upsert for RedisSink {
    type Item = Write;
    const SERVER: &'static str = "Redis";

    async fn attempt(&mut self, writes: &[&Write]) -> Attempt {
        let Some(version_field) = self.config.version_field() else {
            // A connection that cannot be made is unreachable, whatever
            // the reason (refused, timed out, the password refused).
            return match self.bare().await {
                Ok(c) => {
                    let (mode, ttl) = (self.config.mode, self.config.ttl_secs);
                    let (back, outcome) = unversioned::run(c, mode, ttl, writes).await;
                    self.bare = back;
                    self.outcome(outcome)
                }
                Err(e) => Attempt::Unreachable(e.to_string()),
            };
        };
        let version_field = version_field.to_owned();
        let result = self.run(writes, &version_field).await;
        self.outcome(result.map(|()| Vec::new()))
    }
}

impl RedisSink {
    /// How a run of writes went.
    fn outcome(&mut self, result: Result<Vec<(usize, RedisError)>, RedisError>) -> Attempt {
        let refused = match result {
            Ok(refused) if refused.is_empty() => return Attempt::Written,
            Ok(refused) => refused,
            Err(e) => return self.classify(&e),
        };
        // Each write refused alone, unless one error is about the server
        // rather than the data: then the whole batch is retried.
        let mut partly = Vec::with_capacity(refused.len());
        for (i, e) in refused {
            match self.classify(&e) {
                Attempt::Refused(reason) => partly.push((i, reason)),
                retried => return retried,
            }
        }
        Attempt::Partly(partly)
    }
}

#[async_trait]
impl Sink for RedisSink {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn attach(&mut self, context: SinkContext) {
        // Not ready until Redis answers: probe in the background.
        let (client, config) = (self.client.clone(), self.connection_config.clone());
        context.probe_until_up("Redis", self.config.retry.clone(), move || {
            let (client, config) = (client.clone(), config.clone());
            async move {
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(drop)
            }
        });
        self.context = Some(context);
    }

    async fn send(&mut self, batch: SinkBatch) -> Result<(), EndpointError> {
        let SinkBatch { events, acks } = batch;
        let context = SinkContext::attached(&mut self.context, "redis");
        let retry = self.config.retry.clone();
        if self.config.version == RedisVersion::None {
            return self.send_unversioned(&context, &retry, events, acks).await;
        }
        let writes = upsert::prepare(&context, "redis", events, &acks, |e| self.prepare(e)).await;
        upsert::write_batch(self, &context, ("redis", &retry), writes, &acks).await
    }

    async fn settle(&mut self) -> Result<(), EndpointError> {
        self.settle_unversioned().await
    }

    async fn flush(&mut self) -> Result<(), EndpointError> {
        self.settle_unversioned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(toml_text: &str) -> String {
        toml::from_str::<RedisSinkConfig>(toml_text)
            .expect("config")
            .validate()
            .expect_err("invalid")
            .field()
    }

    #[test]
    fn config_errors_name_the_field() {
        let ok = "url = \"redis://127.0.0.1:6379/0\"\nkey = \"card:{/card_id}\"\n";
        let c: RedisSinkConfig = toml::from_str(ok).expect("config");
        assert!(c.validate().is_ok());
        assert_eq!(c.version, RedisVersion::Versioned(Version::Offset));
        assert_eq!(
            field("url = \"redis://:pw@127.0.0.1/\"\nkey = \"{key}\""),
            "url"
        );
        assert_eq!(field("url = \"nope://x\"\nkey = \"{key}\""), "url");
        assert_eq!(
            field(&format!("{ok}password = \"env:WEIR_TEST_UNSET_REDIS_PW\"")),
            "password"
        );
        assert_eq!(field(&format!("{ok}ttl_secs = 0")), "ttl_secs");
        assert_eq!(
            field(&format!("{ok}version_field = \" \"")),
            "version_field"
        );
        assert!(toml::from_str::<RedisSinkConfig>("url = \"redis://h\"\nkey = \"card\"").is_err());
        assert!(toml::from_str::<RedisSinkConfig>(&format!("{ok}version = \"ts\"")).is_err());
        assert!(toml::from_str::<RedisSinkConfig>(&format!("{ok}mode = \"list\"")).is_err());
        let none: RedisSinkConfig =
            toml::from_str(&format!("{ok}version = \"none\"")).expect("config");
        assert!(none.validate().is_ok());
        assert_eq!(none.version, RedisVersion::None);
        assert_eq!(
            field(&format!("{ok}version = \"none\"\nversion_field = \"v\"")),
            "version_field"
        );
        let err = toml::from_str::<RedisSinkConfig>(&format!("{ok}version = \"nope\""))
            .expect_err("not a version")
            .to_string();
        assert!(err.contains("\"none\""), "{err}");
    }

    /// A hash sink of `card:{/card_id}` with `version`.
    fn sink(version: &str) -> RedisSink {
        let c: RedisSinkConfig = toml::from_str(&format!(
            "url = \"redis://127.0.0.1/\"\nkey = \"card:{{/card_id}}\"\nversion = \"{version}\""
        ))
        .expect("config");
        c.build().expect("build")
    }

    fn event(value: &[u8]) -> Event {
        Event::new(
            value.to_vec(),
            0,
            crate::event::Position::new("s".into(), 0, 3),
        )
    }

    #[test]
    fn unversioned_hash_keeps_every_field() {
        let sink = sink("none");
        assert!(
            sink.describe().ends_with("hash, unversioned)"),
            "{}",
            sink.describe()
        );
        let w = sink
            .prepare(&event(br#"{"card_id":"c1","_version":5}"#))
            .expect("write");
        assert_eq!(
            (w.key.as_str(), w.version, w.value.len()),
            ("card:c1", 0, 4)
        );
    }

    #[test]
    fn events_become_hash_fields_or_strings() {
        let sink = sink("/ts");
        let e = event(br#"{"card_id":"c1","ts":5,"score":0.5,"f":{"a":1}}"#);
        let w = sink.prepare(&e).expect("write");
        assert_eq!(w.key, "card:c1");
        assert_eq!(w.version, 5);
        let pairs: Vec<String> = w
            .value
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert_eq!(
            pairs,
            ["card_id", "c1", "ts", "5", "score", "0.5", "f", "{\"a\":1}"]
        );
        let bad = Event::new(b"[1]".to_vec(), 0, e.position.clone());
        assert!(sink.prepare(&bad).is_err());
    }
}
