//! What the redis and postgres sinks share: a batch of versioned upserts
//! written in one request, retried while the server cannot be reached or
//! answers with a passing error, and, if the server refuses the batch for
//! its data, written again one item at a time, the refused items to the
//! dead letters with the server's message. A sink whose request answers
//! item by item (the redis sink's `version = "none"` pipelines) names the
//! refused items instead ([`Attempt::Partly`]): they alone go to the dead
//! letters, the others are written.
//!
//! The sink's `up` (what `/readyz` reads) changes only on what an attempt
//! shows: down when the server cannot be reached, up when it wrote or
//! refused the data. A passing error (a script to load again, a server
//! busy a moment) leaves it as it was, so readiness does not flip back
//! and forth between retries.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use async_trait::async_trait;

use super::SinkContext;
use super::retry::RetryConfig;
use crate::endpoint::EndpointError;
use crate::event::Event;
use crate::pipeline::AckSet;

/// How one attempt at writing went.
pub(super) enum Attempt {
    Written,
    /// The items at these indices (of the attempt's) were refused by the
    /// server, with its message (not retried); the others were written.
    Partly(Vec<(usize, String)>),
    /// The server refused the data (not retried).
    Refused(String),
    /// The server cannot be reached: retried, the sink is down meanwhile.
    Unreachable(String),
    /// The server answered with an error that passes: retried.
    Passing(String),
}

/// A sink that writes a batch of items in one request.
#[async_trait]
pub(super) trait Upsert: Send {
    type Item: Send + Sync;
    /// The server, in logs (`"Redis"`).
    const SERVER: &'static str;

    /// One attempt at writing `items` in one request.
    async fn attempt(&mut self, items: &[&Self::Item]) -> Attempt;
}

/// Why a write did not happen.
enum Failed {
    Refused(String),
    /// Out of retries (or the pipeline stopped).
    GaveUp(String),
}

/// Prepares each event; those that cannot be written go to the dead
/// letters with the reason.
pub(super) async fn prepare<T>(
    context: &SinkContext,
    kind: &str,
    events: Vec<Event>,
    acks: &AckSet,
    mut prepare: impl FnMut(&Event) -> Result<T, String>,
) -> Vec<(T, Event)> {
    let mut items = Vec::with_capacity(events.len());
    for event in events {
        match prepare(&event) {
            Ok(item) => items.push((item, event)),
            Err(reason) => {
                context
                    .dead_letter(vec![event], &format!("{kind} output: {reason}"), acks)
                    .await;
            }
        }
    }
    items
}

/// Writes `items` (each with its event) for a sink of type `kind` (in
/// errors and dead-letter reasons): in one request, else one at a time when
/// the server refuses the batch. The acks drop delivered, or are failed
/// (and the error is fatal) when the retries ran out.
pub(super) async fn write_batch<W: Upsert>(
    sink: &mut W,
    context: &SinkContext,
    kind_retry: (&str, &RetryConfig),
    items: Vec<(W::Item, Event)>,
    acks: &AckSet,
) -> Result<(), EndpointError> {
    write_batch_after(sink, context, kind_retry, items, acks, None).await
}

/// [`write_batch`], the first attempt at the whole batch already made when
/// `first` (how it went, and when it started) is given: a sink that sends
/// while it prepares (the redis sink's `version = "none"`).
pub(super) async fn write_batch_after<W: Upsert>(
    sink: &mut W,
    context: &SinkContext,
    (kind, retry): (&str, &RetryConfig),
    items: Vec<(W::Item, Event)>,
    acks: &AckSet,
    first: Option<(Attempt, Instant)>,
) -> Result<(), EndpointError> {
    if items.is_empty() {
        return Ok(());
    }
    context.stats.in_flight.store(1, Relaxed);
    let all: Vec<&W::Item> = items.iter().map(|(item, _)| item).collect();
    let mut result = write(sink, context, (kind, retry), &all, first).await;
    if let Ok(refused) = &result {
        for (i, reason) in refused {
            if let Some((_, event)) = items.get(*i) {
                refuse(context, kind, event, reason, acks).await;
            }
        }
    }
    if let Err(Failed::Refused(reason)) = &result {
        tracing::warn!(output = %context.name, error = %reason, "{} refused a batch; writing its items one by one", W::SERVER);
        result = Ok(Vec::new());
        for (item, event) in &items {
            match write(sink, context, (kind, retry), &[item], None).await {
                Ok(refused) => {
                    for (_, reason) in refused {
                        refuse(context, kind, event, &reason, acks).await;
                    }
                }
                Err(Failed::Refused(reason)) => refuse(context, kind, event, &reason, acks).await,
                Err(gave_up) => {
                    result = Err(gave_up);
                    break;
                }
            }
        }
    }
    context.stats.in_flight.store(0, Relaxed);
    match result {
        Ok(_) => Ok(()),
        Err(Failed::Refused(m) | Failed::GaveUp(m)) => {
            acks.fail();
            context
                .stats
                .failures
                .fetch_add(items.len() as u64, Relaxed);
            Err(EndpointError::Other(m))
        }
    }
}

/// Sends `event`, which the server refused, to the dead letters.
async fn refuse(context: &SinkContext, kind: &str, event: &Event, reason: &str, acks: &AckSet) {
    let reason = format!("{kind} output: {reason}");
    context
        .dead_letter(vec![event.clone()], &reason, acks)
        .await;
}

/// One request (`first`: the first attempt, made already), retried while
/// the server cannot be reached or answers with a passing error: the items
/// the server refused one by one (index, its message), the others written.
async fn write<W: Upsert>(
    sink: &mut W,
    context: &SinkContext,
    (kind, retry): (&str, &RetryConfig),
    items: &[&W::Item],
    mut first: Option<(Attempt, Instant)>,
) -> Result<Vec<(usize, String)>, Failed> {
    let output = &*context.name;
    let server = W::SERVER;
    let mut retries = retry.start(&context.stop);
    loop {
        context.stats.requests.fetch_add(1, Relaxed);
        let (attempt, started) = match first.take() {
            Some(made) => made,
            None => {
                let started = Instant::now();
                (sink.attempt(items).await, started)
            }
        };
        context
            .stats
            .latency
            .observe(started.elapsed().as_secs_f64());
        let reason = match attempt {
            Attempt::Written | Attempt::Partly(_) | Attempt::Refused(_) => {
                if context.stats.set_up(true) {
                    tracing::info!(output, "{server} reachable again");
                }
                return match attempt {
                    Attempt::Refused(reason) => Err(Failed::Refused(reason)),
                    Attempt::Partly(refused) => Ok(refused),
                    _ => Ok(Vec::new()),
                };
            }
            Attempt::Unreachable(reason) => {
                if context.stats.set_up(false) {
                    tracing::warn!(output, error = %reason, "{server} cannot be reached; retrying");
                }
                reason
            }
            Attempt::Passing(reason) => {
                if retries.done() == 0 {
                    tracing::warn!(output, error = %reason, "{server} answered with an error; retrying");
                }
                reason
            }
        };
        if !retries.wait(None).await {
            return Err(Failed::GaveUp(format!(
                "{kind}: writing failed after {} retries: {reason}",
                retries.done()
            )));
        }
        context.stats.retries.fetch_add(1, Relaxed);
    }
}
