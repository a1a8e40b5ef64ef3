//! One request of the HTTP sink, with its retries, to its end: a 2xx
//! (acknowledged), a refusal (dead letters), or out of retries (failed).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::IDEMPOTENCY_KEY;
use crate::event::Event;
use crate::pipeline::AckSet;
use crate::sink::{RetryConfig, SinkContext};

/// How much of a refusal's body the dead letters keep.
const BODY_EXCERPT: usize = 512;

/// Where requests go; shared by every request of the sink.
pub struct Endpoint {
    pub client: reqwest::Client,
    pub method: reqwest::Method,
    pub url: reqwest::Url,
    pub headers: HeaderMap,
    pub retry: RetryConfig,
}

/// One request: its body and key, the events it carries, their acks.
pub struct Request {
    pub body: Bytes,
    pub key: String,
    pub events: Vec<Event>,
    pub acks: AckSet,
}

enum Outcome {
    Delivered,
    /// Worth retrying; `down`: the endpoint could not be reached.
    Retry {
        reason: String,
        after: Option<Duration>,
        down: bool,
    },
    Refused(String),
}

/// Counts the request in flight until dropped.
struct InFlight<'a>(&'a SinkContext);

impl<'a> InFlight<'a> {
    fn new(context: &'a SinkContext) -> Self {
        context.stats.in_flight.fetch_add(1, Relaxed);
        Self(context)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.stats.in_flight.fetch_sub(1, Relaxed);
    }
}

pub async fn deliver(
    endpoint: Arc<Endpoint>,
    context: SinkContext,
    request: Request,
    failure: Arc<Mutex<Option<String>>>,
) {
    let _in_flight = InFlight::new(&context);
    let Request {
        body,
        key,
        events,
        acks,
    } = request;
    let stats = &context.stats;
    let output = &*context.name;
    let mut retries = endpoint.retry.start(&context.stop);
    loop {
        stats.requests.fetch_add(1, Relaxed);
        let started = Instant::now();
        let sent = endpoint
            .client
            .request(endpoint.method.clone(), endpoint.url.clone())
            .headers(endpoint.headers.clone())
            .header(IDEMPOTENCY_KEY, key.as_str())
            .body(body.clone())
            .send()
            .await;
        let outcome = match sent {
            Ok(response) => classify(response).await,
            Err(e) => Outcome::Retry {
                down: e.is_connect() || e.is_timeout(),
                // Never the URL: it may be a secret.
                reason: error_chain(&e.without_url()),
                after: None,
            },
        };
        stats.latency.observe(started.elapsed().as_secs_f64());
        match outcome {
            Outcome::Delivered => {
                if stats.set_up(true) {
                    tracing::info!(output, "the HTTP endpoint answers again");
                }
                return; // the acks drop with `acks`: delivered
            }
            Outcome::Refused(reason) => {
                if stats.set_up(true) {
                    tracing::info!(output, "the HTTP endpoint answers again");
                }
                tracing::warn!(output, events = events.len(), reason = %reason, "the HTTP endpoint refused the events: to the dead letters");
                if !context.dead_letter(events, &reason, &acks).await
                    && let Ok(mut f) = failure.lock()
                {
                    f.get_or_insert(format!(
                        "the HTTP endpoint refused events and there is no dead-letter output to keep them: {reason}"
                    ));
                }
                return;
            }
            Outcome::Retry {
                reason,
                after,
                down,
            } => {
                if down && stats.set_up(false) {
                    tracing::warn!(output, reason = %reason, "the HTTP endpoint cannot be reached; retrying");
                }
                if retries.wait(after).await {
                    stats.retries.fetch_add(1, Relaxed);
                    tracing::debug!(output, reason = %reason, retry = retries.done(), "retrying an HTTP request");
                    continue;
                }
                stats.failures.fetch_add(events.len() as u64, Relaxed);
                acks.fail();
                let message = format!(
                    "an HTTP request failed after {} retries: {reason}",
                    retries.done()
                );
                tracing::error!(output, "{message}");
                if let Ok(mut f) = failure.lock() {
                    f.get_or_insert(message);
                }
                return;
            }
        }
    }
}

/// What a status means: 2xx delivered; 408, 429 and 5xx retried; the rest
/// refused.
async fn classify(response: reqwest::Response) -> Outcome {
    let status = response.status();
    if status.is_success() {
        return Outcome::Delivered;
    }
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        let after = retry_after(response.headers());
        return Outcome::Retry {
            reason: format!("HTTP {status}"),
            after,
            down: false,
        };
    }
    let excerpt = body_excerpt(response).await;
    Outcome::Refused(format!("HTTP {status}: {excerpt}"))
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The start of a response body, as text.
async fn body_excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_EXCERPT {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let cut = bytes.len().min(BODY_EXCERPT);
    let mut text = String::from_utf8_lossy(&bytes[..cut]).into_owned();
    if bytes.len() > BODY_EXCERPT {
        text.push('…');
    }
    text
}

/// An error and its sources, `: `-joined.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "3".parse().expect("value"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        h.insert(
            RETRY_AFTER,
            httpdate::fmt_http_date(later).parse().expect("value"),
        );
        let d = retry_after(&h).expect("a date");
        assert!(
            (Duration::from_secs(115)..=Duration::from_secs(121)).contains(&d),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, "soon".parse().expect("value"));
        assert_eq!(retry_after(&h), None);
    }
}
