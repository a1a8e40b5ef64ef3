//! The `http` sink: each event, or each batch of events, POSTed (or PUT) to
//! an endpoint such as an alerting webhook.
//!
//! Requests run concurrently up to `concurrency`; `send` waits for a free
//! slot, so while the endpoint is slow or down the pipeline slows down and
//! memory stays bounded. A request is retried (exponential backoff with
//! jitter, `Retry-After` honoured) on connect errors, timeouts, 408, 429 and
//! 5xx; any other status below 200 or from 300 sends its events to the dead
//! letters with the status and the start of the body. Events are
//! acknowledged only after a 2xx (or once they are dead letters). Every
//! request carries an `Idempotency-Key` derived from the source position of
//! its events, the same after a crash and a replay.

mod deliver;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use tokio::task::JoinSet;

use super::retry::RetryConfig;
use super::secret::Secret;
use super::{Sink, SinkBatch, SinkContext};
use crate::endpoint::EndpointError;
use crate::event::Event;
use crate::validate::{self, FieldError};

/// The header carrying each request's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// `type = "http"`: events to an HTTP endpoint.
///
/// ```toml
/// [outputs.alerts]
/// type = "http"
/// url = "https://hooks.example.com/alerts"      # or "env:ALERTS_URL"
/// format = "json-array"                          # or "json", "ndjson"
/// batch_max_events = 100
/// headers = { Authorization = "env:WEBHOOK_TOKEN" }
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpSinkConfig {
    /// The endpoint, `http://` or `https://`; `"env:NAME"` reads it from the
    /// environment (webhook URLs are often secrets). It is never logged.
    pub url: Secret,
    /// `POST` (default) or `PUT`.
    #[serde(default)]
    pub method: HttpMethod,
    /// The body: `json` (default): one event's value per request;
    /// `json-array`: a JSON array of the batch's values; `ndjson`: one value
    /// per line. Values must be JSON (others go to the dead letters).
    #[serde(default)]
    pub format: HttpFormat,
    /// Request headers. Values may be `"env:NAME"` (read from the
    /// environment when the pipeline starts); they are never logged or shown.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Events per request for `json-array` and `ndjson` (default 100; 1 for
    /// `json`, which sends one event per request).
    pub batch_max_events: Option<usize>,
    /// Requests in flight at once (default 4).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Timeout of one request, connecting included (default 10000 ms); a
    /// request that times out is retried.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries (`[outputs.<name>.retry]`): unbounded by default.
    #[serde(default)]
    pub retry: RetryConfig,
}

fn default_concurrency() -> usize {
    4
}

fn default_timeout_ms() -> u64 {
    10_000
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Post,
    Put,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum HttpFormat {
    #[default]
    #[serde(rename = "json")]
    Json,
    #[serde(rename = "json-array")]
    JsonArray,
    #[serde(rename = "ndjson")]
    Ndjson,
}

impl HttpFormat {
    fn content_type(self) -> &'static str {
        match self {
            HttpFormat::Json | HttpFormat::JsonArray => "application/json",
            HttpFormat::Ndjson => "application/x-ndjson",
        }
    }
}

impl HttpSinkConfig {
    fn batch_max(&self) -> usize {
        match (self.format, self.batch_max_events) {
            (HttpFormat::Json, _) => 1,
            (_, Some(n)) => n,
            (_, None) => 100,
        }
    }

    fn parsed_url(&self) -> Result<reqwest::Url, FieldError> {
        self.url.validate("url")?;
        let text = self.url.reveal().map_err(|e| FieldError::new("url", e))?;
        // The URL may be a secret: the error never repeats it.
        let url = reqwest::Url::parse(&text)
            .map_err(|e| FieldError::new("url", format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FieldError::new("url", "must be an http:// or https:// URL"));
        }
        if url.password().is_some() {
            return Err(FieldError::new(
                "url",
                "must not hold a password: send credentials in `headers` (e.g. Authorization = \"env:TOKEN\")",
            ));
        }
        Ok(url)
    }

    fn header_map(&self) -> Result<HeaderMap, FieldError> {
        let mut map = HeaderMap::new();
        map.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(self.format.content_type()),
        );
        for (name, value) in &self.headers {
            let field = |message: &str| FieldError::new(name, message).within("headers");
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| field("not a valid header name"))?;
            if header.as_str() == IDEMPOTENCY_KEY {
                return Err(field("set by the sink from the events' source positions"));
            }
            value
                .validate("")
                .map_err(|e| e.within(name).within("headers"))?;
            let text = value.reveal().map_err(|e| field(&e))?;
            let mut v =
                HeaderValue::from_str(&text).map_err(|_| field("not a valid header value"))?;
            v.set_sensitive(true);
            map.insert(header, v);
        }
        Ok(map)
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        self.parsed_url()?;
        self.header_map()?;
        match (self.format, self.batch_max_events) {
            (HttpFormat::Json, Some(n)) if n != 1 => {
                return Err(FieldError::new(
                    "batch_max_events",
                    "`format = \"json\"` sends one event per request: use \"json-array\" or \"ndjson\" to batch",
                ));
            }
            (_, Some(n)) => validate::in_range("batch_max_events", n, 1..=100_000)?,
            _ => {}
        }
        validate::in_range("concurrency", self.concurrency, 1..=1024)?;
        self.retry.validate_with_timeout(self.timeout_ms, 3_600_000)
    }

    /// Creates the client (no connection yet).
    pub fn build(&self) -> Result<HttpSink, EndpointError> {
        let (url, headers) = super::checked("http", self.validate(), || {
            Ok((self.parsed_url()?, self.header_map()?))
        })?;
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(self.timeout_ms))
            .connect_timeout(Duration::from_millis(self.timeout_ms))
            .pool_max_idle_per_host(self.concurrency)
            .build()
            .map_err(|e| {
                EndpointError::Other(format!(
                    "cannot create the HTTP client: {}",
                    e.without_url()
                ))
            })?;
        let shown = match self.url.env_name() {
            Some(name) => format!("env:{name}"),
            None => format!(
                "{}://{}{}",
                url.scheme(),
                url.host_str().unwrap_or(""),
                url.port().map(|p| format!(":{p}")).unwrap_or_default()
            ),
        };
        let method = match self.method {
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
        };
        let describe = format!("http {method} {shown}");
        Ok(HttpSink {
            describe,
            shared: Arc::new(deliver::Endpoint {
                client,
                method,
                url,
                headers,
                retry: self.retry.clone(),
            }),
            format: self.format,
            batch_max: self.batch_max(),
            concurrency: self.concurrency,
            context: None,
            tasks: JoinSet::new(),
            failure: Arc::default(),
        })
    }
}

/// rustls needs a process-wide crypto provider (ring; aws-lc is not built).
fn install_crypto_provider() {
    // Fails only if one is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A running HTTP sink.
pub struct HttpSink {
    describe: String,
    shared: Arc<deliver::Endpoint>,
    format: HttpFormat,
    batch_max: usize,
    concurrency: usize,
    context: Option<SinkContext>,
    tasks: JoinSet<()>,
    /// The first request that ran out of retries.
    failure: Arc<Mutex<Option<String>>>,
}

impl HttpSink {
    fn failed(&self) -> Result<(), EndpointError> {
        match self.failure.lock().ok().and_then(|f| f.clone()) {
            Some(e) => Err(EndpointError::Other(e)),
            None => Ok(()),
        }
    }

    fn reap(&mut self) {
        while let Some(done) = self.tasks.try_join_next() {
            self.joined(done);
        }
    }

    fn joined(&self, done: Result<(), tokio::task::JoinError>) {
        if let Err(e) = done
            && let Ok(mut f) = self.failure.lock()
        {
            f.get_or_insert(format!("an HTTP request task failed: {e}"));
        }
    }
}

/// The idempotency key of the events from `first` to `last` (keys of single
/// events: `stream/partition/offset/index`; of a batch: `first..last`).
fn batch_key(keys: &[String]) -> String {
    match keys {
        [] => String::new(),
        [one] => one.clone(),
        [first, .., last] => format!("{first}..{last}"),
    }
}

/// One event's key: its source position and its index among the outputs of
/// that position in this sink's stream of events. Bytes outside visible
/// ASCII become `_` (header values must be visible ASCII).
fn event_key(event: &Event, index: u32) -> String {
    let p = &event.position;
    let stream: String = p
        .stream
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    format!("{stream}/{}/{}/{index}", p.partition, p.offset)
}

/// Appends one value to a body; `false` if it is not JSON.
fn encode(format: HttpFormat, value: &Bytes, first: bool, body: &mut Vec<u8>) -> bool {
    if crate::json_check::check_slice(value).is_err() {
        return false;
    }
    match format {
        HttpFormat::Json => body.extend_from_slice(value),
        HttpFormat::JsonArray => {
            body.push(if first { b'[' } else { b',' });
            body.extend_from_slice(value);
        }
        HttpFormat::Ndjson => {
            if memchr::memchr(b'\n', value).is_some() {
                // A pretty-printed value: one line per value.
                let compact = serde_json::from_slice::<serde_json::Value>(value)
                    .and_then(|v| serde_json::to_writer(&mut *body, &v));
                if compact.is_err() {
                    return false;
                }
            } else {
                body.extend_from_slice(value);
            }
            body.push(b'\n');
        }
    }
    true
}

#[async_trait]
impl Sink for HttpSink {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn attach(&mut self, context: SinkContext) {
        self.context = Some(context);
    }

    async fn send(&mut self, batch: SinkBatch) -> Result<(), EndpointError> {
        self.reap();
        if let Err(e) = self.failed() {
            batch.acks.fail();
            return Err(e);
        }
        let SinkBatch { events, acks } = batch;
        let context = SinkContext::attached(&mut self.context, "http");
        // Keys first: an event's index among the outputs of its position.
        let mut keyed = Vec::with_capacity(events.len());
        let mut index = 0u32;
        let mut previous: Option<crate::event::Position> = None;
        for event in events {
            if previous.as_ref() == Some(&event.position) {
                index += 1;
            } else {
                index = 0;
                previous = Some(event.position.clone());
            }
            let key = event_key(&event, index);
            keyed.push((event, key));
        }
        let mut not_json = Vec::new();
        let mut rest = keyed.into_iter().peekable();
        while rest.peek().is_some() {
            let mut body = Vec::new();
            let mut events = Vec::new();
            let mut keys = Vec::new();
            while events.len() < self.batch_max {
                let Some((event, key)) = rest.next() else {
                    break;
                };
                if encode(self.format, &event.value, events.is_empty(), &mut body) {
                    events.push(event);
                    keys.push(key);
                } else {
                    not_json.push(event);
                }
            }
            if events.is_empty() {
                continue;
            }
            if self.format == HttpFormat::JsonArray {
                body.push(b']');
            }
            while self.tasks.len() >= self.concurrency {
                if let Some(done) = self.tasks.join_next().await {
                    self.joined(done);
                }
            }
            let request = deliver::Request {
                body: Bytes::from(body),
                key: batch_key(&keys),
                events,
                acks: acks.clone(),
            };
            self.tasks.spawn(deliver::deliver(
                self.shared.clone(),
                context.clone(),
                request,
                self.failure.clone(),
            ));
        }
        if !not_json.is_empty() {
            context
                .dead_letter(not_json, "http output: the value is not JSON", &acks)
                .await;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), EndpointError> {
        while let Some(done) = self.tasks.join_next().await {
            self.joined(done);
        }
        self.failed()
    }
}

#[cfg(test)]
mod tests;
