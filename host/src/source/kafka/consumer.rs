//! The consumer thread and its librdkafka context (rebalance and commit
//! callbacks, statistics, logs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::record::{RecordParts, TopicNames, record_to_event};
use super::tracker::TopicPartition;
use super::{Buffered, Shared};
use crate::endpoint::EndpointError;
use crate::event::{Event, now_ms};

/// Records taken per poll round (under one lock).
pub(super) const POLL_BATCH: usize = 512;
/// How long one poll waits; also how often the thread checks for close and
/// stores offsets.
const POLL_WAIT: Duration = Duration::from_millis(50);

pub(super) struct Context {
    shared: Arc<Shared>,
}

impl ClientContext for Context {
    fn stats(&self, statistics: Statistics) {
        self.shared.stats.record(&statistics);
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        crate::kafka::forward_log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", error = %error, "kafka consumer: {reason}");
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| (Arc::from(e.topic()), e.partition()))
        .collect()
}

impl Context {
    /// A revocation: drops buffered records of the revoked partitions, waits
    /// (at most `revoke_timeout`) until their in-flight chunks are
    /// acknowledged, then commits their delivered prefix synchronously.
    fn revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let tps = partitions(tpl);
        let deadline = Instant::now() + self.shared.revoke_timeout;
        let mut st = self.shared.lock();
        st.buffer.retain(|b| !tps.contains(&b.tp));
        let started = Instant::now();
        loop {
            let inflight = st.tracker.inflight(&tps);
            if inflight == 0 {
                break;
            }
            let now = Instant::now();
            if st.closing || now >= deadline {
                tracing::warn!(
                    chunks = inflight,
                    "revocation: in-flight events of the revoked partitions were not acknowledged in time; they may be processed twice"
                );
                break;
            }
            st = match self.shared.acked.wait_timeout(st, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        let drained = st.tracker.inflight(&tps) == 0;
        // Closing: the partitions are let go, not handed to another member
        // yet; keyed state stays (the next run catches up from it).
        let closing = st.closing;
        let commits: Vec<(TopicPartition, i64)> = tps
            .iter()
            .filter_map(|tp| st.tracker.committable(tp).map(|o| (tp.clone(), o)))
            .collect();
        st.tracker.revoke(&tps);
        drop(st);
        if let Some(a) = &self.shared.assignments
            && !closing
        {
            a.revoked(&tps, drained);
        }
        tracing::info!(
            partitions = tps.len(),
            waited_ms = started.elapsed().as_millis() as u64,
            "partitions revoked"
        );
        for (t, p) in &tps {
            self.shared.stats.set_assigned(t, *p, false);
        }
        commit(consumer, &commits, &self.shared);
    }
}

impl Context {
    /// Asks the assignments listener (keyed state) where the assigned
    /// partitions start, after it prepared them, and sets those offsets in
    /// the assignment (what librdkafka then fetches from, instead of the
    /// group's committed offsets). A failure stops the pipeline.
    fn start_at(&self, tpl: &TopicPartitionList, tps: &[TopicPartition]) {
        let Some(a) = &self.shared.assignments else {
            return;
        };
        match a.assigned(tps) {
            Ok(starts) => {
                for ((t, p), offset) in starts {
                    if let Some(mut e) = tpl.find_partition(&t, p)
                        && let Err(e) = e.set_offset(Offset::Offset(offset))
                    {
                        tracing::warn!(error = %e, "setting a start offset");
                    }
                }
            }
            Err(reason) => {
                tracing::error!(error = %reason, "preparing assigned partitions failed");
                self.shared.lock().error = Some(reason);
                self.shared.data.notify_one();
            }
        }
    }
}

/// Commits these offsets synchronously; failures are logged (the records
/// will be read again: at-least-once).
fn commit<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    offsets: &[(TopicPartition, i64)],
    shared: &Shared,
) {
    if offsets.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::with_capacity(offsets.len());
    for ((t, p), o) in offsets {
        if let Err(e) = tpl.add_partition_offset(t, *p, Offset::Offset(*o)) {
            tracing::warn!(error = %e, "bad offset");
        }
    }
    match consumer.commit(&tpl, CommitMode::Sync) {
        Ok(()) => {
            for ((t, p), o) in offsets {
                shared.stats.set_committed(t, *p, *o);
            }
        }
        Err(e) => tracing::warn!(error = %e, "committing offsets failed"),
    }
}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let tps = partitions(tpl);
                self.start_at(tpl, &tps);
                tracing::info!(partitions = ?tps.iter().map(|(t, p)| format!("{t}[{p}]")).collect::<Vec<_>>(), "partitions assigned");
                for (t, p) in &tps {
                    self.shared.stats.set_assigned(t, *p, true);
                }
                self.shared.stats.set_joined();
                let mut st = self.shared.lock();
                st.tracker.assign(tps);
                st.rebalanced = true;
            }
            Rebalance::Revoke(tpl) => self.revoke(consumer, tpl),
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                for e in offsets.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        self.shared.stats.set_committed(e.topic(), e.partition(), o);
                    }
                }
            }
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!(error = %e, "offset commit failed"),
        }
    }
}

/// Creates the consumer, subscribes, and starts the polling thread.
pub(super) fn spawn(
    config: ClientConfig,
    topics: &[&str],
    shared: Arc<Shared>,
) -> Result<std::thread::JoinHandle<()>, EndpointError> {
    let consumer: BaseConsumer<Context> = config
        .create_with_context(Context {
            shared: shared.clone(),
        })
        .map_err(|e| EndpointError::Other(format!("cannot create the Kafka consumer: {e}")))?;
    consumer
        .subscribe(topics)
        .map_err(|e| EndpointError::Other(format!("cannot subscribe to {topics:?}: {e}")))?;
    std::thread::Builder::new()
        .name("weir-kafka-consumer".into())
        .spawn(move || run(consumer, shared))
        .map_err(|e| EndpointError::Io {
            context: "cannot start the Kafka consumer thread".into(),
            source: e,
        })
}

/// Converts a record to an event (copies key, value and headers): its parts,
/// through [`record_to_event`].
fn to_event(msg: &BorrowedMessage<'_>, topics: &mut TopicNames) -> Event {
    let record = RecordParts {
        topic: msg.topic(),
        partition: msg.partition(),
        offset: msg.offset(),
        key: msg.key(),
        payload: msg.payload(),
        timestamp_ms: msg.timestamp().to_millis(),
    };
    record_to_event(record, header_parts(msg), topics, now_ms)
}

/// A record's headers as librdkafka holds them, in order: (name, value)
/// pairs, the names as bytes. Not rdkafka's `Headers::iter`: it panics on a
/// name that is not UTF-8 (`to_str().unwrap()`), which any producer can send
/// (Kafka does not check header names), and the panic would end this thread
/// and stall the source for good.
fn header_parts<'m>(
    msg: &'m BorrowedMessage<'_>,
) -> impl Iterator<Item = (&'m [u8], Option<&'m [u8]>)> + 'm {
    use rdkafka::bindings as rd;
    const OK: rd::rd_kafka_resp_err_t = rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR;
    let mut hdrs: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `msg.ptr()` is the message `msg` holds (alive for 'm);
    // librdkafka only stores the address of the message's own headers (or
    // none) in `hdrs`.
    let err = unsafe { rd::rd_kafka_message_headers(msg.ptr(), &mut hdrs) };
    let count = if err == OK && !hdrs.is_null() {
        // SAFETY: `hdrs` is the message's headers, alive as long as it.
        unsafe { rd::rd_kafka_header_cnt(hdrs) }
    } else {
        0
    };
    (0..count).filter_map(move |idx| {
        let mut name: *const std::ffi::c_char = std::ptr::null();
        let mut value: *const std::ffi::c_void = std::ptr::null();
        let mut size = 0usize;
        // SAFETY: `hdrs` is alive for 'm and `idx` is below its count;
        // librdkafka writes pointers into the headers' own storage.
        let err =
            unsafe { rd::rd_kafka_header_get_all(hdrs, idx, &mut name, &mut value, &mut size) };
        if err != OK || name.is_null() {
            return None;
        }
        // SAFETY: librdkafka keeps every header name NUL-terminated, and the
        // storage lives as long as the message ('m).
        let name = unsafe { std::ffi::CStr::from_ptr(name) }.to_bytes();
        // SAFETY: a non-null value points at `size` bytes of the headers'
        // storage, alive for 'm.
        let value = (!value.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) });
        Some((name, value))
    })
}

fn run(consumer: BaseConsumer<Context>, shared: Arc<Shared>) {
    let mut topics = TopicNames::default();
    let mut paused = false;
    let mut polled: Vec<Event> = Vec::with_capacity(POLL_BATCH);
    loop {
        // Offsets to store, close, backpressure.
        let (dirty, closing, buffered, rebalanced) = {
            let mut st = shared.lock();
            let rebalanced = std::mem::take(&mut st.rebalanced);
            (
                st.tracker.take_dirty(),
                st.closing,
                st.buffer.len(),
                rebalanced,
            )
        };
        store(&consumer, &dirty);
        if closing {
            break;
        }
        if paused && rebalanced {
            // Newly assigned partitions start unpaused.
            set_paused(&consumer, true);
        }
        if !paused && buffered >= shared.buffer_events {
            set_paused(&consumer, true);
            paused = true;
        } else if paused && buffered <= shared.buffer_events / 2 {
            set_paused(&consumer, false);
            paused = false;
        }

        // Poll a round of records (rebalances are served in here).
        let mut wait = POLL_WAIT;
        while polled.len() < POLL_BATCH {
            match consumer.poll(wait) {
                None => break,
                Some(Ok(msg)) => polled.push(to_event(&msg, &mut topics)),
                Some(Err(e)) => {
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
                        // The client cannot go on (librdkafka says so):
                        // stop the pipeline; the next run resumes from the
                        // last commit.
                        shared.lock().error = Some(format!("kafka consumer: {e}"));
                        shared.data.notify_one();
                    }
                    tracing::warn!(error = %e, "kafka consumer error");
                    break;
                }
            }
            wait = Duration::ZERO;
        }
        if polled.is_empty() {
            continue;
        }
        {
            let mut st = shared.lock();
            for event in polled.drain(..) {
                let tp: TopicPartition = (event.position.stream.clone(), event.position.partition);
                // Records come from assigned partitions only (rebalances
                // run on this thread, inside poll).
                if let Some(generation) = st.tracker.generation(&tp) {
                    st.buffer.push_back(Buffered {
                        event,
                        tp,
                        generation,
                    });
                }
            }
        }
        shared.data.notify_one();
    }

    // Closing: commit the delivered prefix, then close the consumer here
    // (a blocking call; the revocation it triggers does not wait).
    let commits: Vec<(TopicPartition, i64)> = {
        let st = shared.lock();
        st.tracker
            .owned()
            .into_iter()
            .filter_map(|tp| st.tracker.committable(&tp).map(|o| (tp, o)))
            .collect()
    };
    commit(&consumer, &commits, &shared);
    drop(consumer);
    shared.lock().done = true;
    shared.data.notify_one();
    tracing::debug!("kafka consumer closed");
}

fn store<C: ConsumerContext>(consumer: &BaseConsumer<C>, offsets: &[(TopicPartition, i64)]) {
    if offsets.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::with_capacity(offsets.len());
    for ((t, p), o) in offsets {
        if tpl.add_partition_offset(t, *p, Offset::Offset(*o)).is_err() {
            continue;
        }
    }
    if let Err(e) = consumer.store_offsets(&tpl) {
        // A partition revoked in between: its new owner reads it again.
        tracing::debug!(error = %e, "storing offsets failed");
    }
}

fn set_paused<C: ConsumerContext>(consumer: &BaseConsumer<C>, pause: bool) {
    let Ok(assignment) = consumer.assignment() else {
        return;
    };
    let result = if pause {
        consumer.pause(&assignment)
    } else {
        consumer.resume(&assignment)
    };
    match result {
        Ok(()) => tracing::debug!(pause, "kafka source backpressure"),
        Err(e) => tracing::warn!(error = %e, pause, "pausing/resuming partitions failed"),
    }
}
