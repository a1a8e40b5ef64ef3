//! End-to-end delivery acknowledgement.
//!
//! The source driver makes a [`Finalizer`] for each chunk a source hands over,
//! under the id the source minted for it. Every piece of
//! work derived from the chunk (plugin outputs on their way to any sink, dead
//! letters included) holds a clone of it through an [`AckSet`]. A sink that
//! failed to deliver marks it failed; when the last clone is dropped, the
//! source receives one [`Ack`] with the outcome. The Kafka source stores offsets
//! only on [`AckStatus::Delivered`] (at-least-once); the file source counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

/// The outcome of a chunk once everything derived from it has been dealt with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckStatus {
    /// Every output of every event in the chunk was accepted by its sink.
    Delivered,
    /// At least one output could not be delivered (after the sink's retries),
    /// or the work was dropped before reaching a sink (shutdown, fault).
    Failed,
}

/// What a source receives back for one chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The id the source gave the chunk.
    pub chunk: u64,
    /// How many events the chunk had.
    pub events: usize,
    pub status: AckStatus,
}

struct Inner {
    chunk: u64,
    events: usize,
    failed: AtomicBool,
    /// Set once the chunk has been handed to the sinks; dropped work that never
    /// got there counts as failed.
    reached_sinks: AtomicBool,
    tx: mpsc::UnboundedSender<Ack>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let ok = !self.failed.load(Ordering::Acquire) && self.reached_sinks.load(Ordering::Acquire);
        let status = if ok {
            AckStatus::Delivered
        } else {
            AckStatus::Failed
        };
        // The source may be gone already (shutdown); nothing to tell then.
        let _ = self.tx.send(Ack {
            chunk: self.chunk,
            events: self.events,
            status,
        });
    }
}

/// The acknowledgement handle of one source chunk. Cheap to clone.
#[derive(Clone)]
pub struct Finalizer(Arc<Inner>);

impl Finalizer {
    pub fn new(chunk: u64, events: usize, tx: mpsc::UnboundedSender<Ack>) -> Self {
        Self(Arc::new(Inner {
            chunk,
            events,
            failed: AtomicBool::new(false),
            reached_sinks: AtomicBool::new(false),
            tx,
        }))
    }

    pub fn fail(&self) {
        self.0.failed.store(true, Ordering::Release);
    }

    pub fn mark_reached_sinks(&self) {
        self.0.reached_sinks.store(true, Ordering::Release);
    }
}

/// The finalizers of every chunk that contributed to a batch. Sink batches hold
/// an `AckSet`; the chunk is acknowledged when the last holder is gone.
#[derive(Clone, Default)]
pub struct AckSet(Arc<Vec<Finalizer>>);

impl AckSet {
    pub fn new(finalizers: Vec<Finalizer>) -> Self {
        Self(Arc::new(finalizers))
    }

    /// The delivery failed: every chunk of this set is reported failed.
    pub fn fail(&self) {
        self.0.iter().for_each(Finalizer::fail);
    }

    /// The work reached the sink stage of the pipeline.
    pub fn mark_reached_sinks(&self) {
        self.0.iter().for_each(Finalizer::mark_reached_sinks);
    }
}

/// Creates the channel acks come back on.
pub fn ack_channel() -> (mpsc::UnboundedSender<Ack>, mpsc::UnboundedReceiver<Ack>) {
    mpsc::unbounded_channel()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_when_last_holder_drops_after_reaching_sinks() {
        let (tx, mut rx) = ack_channel();
        let f = Finalizer::new(7, 3, tx);
        let set = AckSet::new(vec![f]);
        let a = set.clone();
        let b = set.clone();
        drop(set);
        a.mark_reached_sinks();
        drop(a);
        assert!(rx.try_recv().is_err(), "acked while a holder remains");
        drop(b);
        let ack = rx.try_recv().expect("ack after last drop");
        assert_eq!(
            ack,
            Ack {
                chunk: 7,
                events: 3,
                status: AckStatus::Delivered
            }
        );
    }

    #[test]
    fn failed_when_any_sink_fails_or_never_reached() {
        let (tx, mut rx) = ack_channel();
        let set = AckSet::new(vec![Finalizer::new(1, 1, tx.clone())]);
        set.mark_reached_sinks();
        set.clone().fail();
        drop(set);
        assert_eq!(rx.try_recv().map(|a| a.status), Ok(AckStatus::Failed));

        let set = AckSet::new(vec![Finalizer::new(2, 1, tx)]);
        drop(set);
        assert_eq!(rx.try_recv().map(|a| a.status), Ok(AckStatus::Failed));
    }
}
