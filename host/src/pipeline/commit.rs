//! Exactly-once state: each batch's state writes and the source progress
//! they cover are committed in one atomic store batch, in batch order, once
//! every chunk of the batch was acknowledged delivered (its outputs accepted
//! by their sinks). The source driver tells the committer when a batch was
//! acknowledged ([`CommitTracker`]); the fan-out hands over what the keyed
//! stages wrote for it. After a crash the driver skips what the store's
//! progress says was applied, so no event's effect is applied twice or lost
//! (outputs stay at-least-once: a crash between a sink's write and the
//! commit re-delivers them). See `docs/state.md`.
//!
//! On a Kafka source the committer first publishes the batch's changes and
//! progress to the stages' changelog topics and waits for the broker's acks;
//! and the source hears of a chunk's acknowledgement only once its batch is
//! committed (the tracker holds the acks until the committer reports it), so
//! the Kafka offset is stored after the state: outputs acked → changelog
//! acked → one atomic store batch → offset stored.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use crate::pipeline::{Ack, AckStatus};
use crate::source::Read;
use crate::state::{Changelog, Commit, Durability, Progress, StateConfig, StateStore};
use crate::telemetry::PipelineStats;

/// The chunk id of the end-of-input batch the driver makes itself (so that
/// keyed stages fire their last timers); never a source's.
pub const END_CHUNK: u64 = u64::MAX;

/// The state every keyed stage of a pipeline shares.
#[derive(Clone)]
pub struct PipelineState {
    pub store: StateStore,
    pub config: StateConfig,
    /// The first batch not committed yet; keyed stages drop overlay entries
    /// of the batches before it.
    pub committed: Arc<AtomicU64>,
    /// Stages with a TTL: the committer removes their expired entries.
    pub ttl_stages: Vec<Arc<str>>,
    /// The keyed stages' changelog topics (a Kafka source, `[state]
    /// changelog = "auto"`): every commit is published there first.
    pub changelog: Option<Arc<Changelog>>,
}

/// How often expired entries are swept, and at most how many at a time.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
const SWEEP_MAX: usize = 10_000;

impl PipelineState {
    pub fn new(store: StateStore, config: StateConfig) -> Self {
        Self {
            store,
            config,
            committed: Arc::default(),
            ttl_stages: Vec::new(),
            changelog: None,
        }
    }
}

/// (stream, partition, highest offset) of a batch, per partition.
pub(super) type BatchProgress = Vec<(Arc<str>, i32, i64)>;

/// The committer thread: its result is a store error, if one stopped it.
pub(super) type Committer = std::thread::JoinHandle<Result<(), String>>;

/// What the committer tells the source driver after each commit: batches
/// before `upto` are in the store; `stalled`: no later batch ever will be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Committed {
    pub upto: u64,
    pub stalled: bool,
}

/// The driver's end of the committer's reports.
pub(super) type CommittedRx = tokio::sync::mpsc::UnboundedReceiver<Committed>;

pub(super) enum CommitMsg {
    /// A batch left the last stage: what its keyed stages wrote.
    Staged { seq: u64, delta: Commit },
    /// Every chunk of a batch was acknowledged.
    Acked {
        seq: u64,
        delivered: bool,
        progress: BatchProgress,
    },
}

#[derive(Default)]
struct Pending {
    delta: Option<Commit>,
    acked: Option<(bool, BatchProgress)>,
}

/// Starts the committer thread. It ends when every sender is gone, after
/// committing what it can; a store error (a full disk) is returned and
/// cancels `stop` at once, so the pipeline stops reading instead of
/// processing events whose state can no longer be kept.
pub(super) fn spawn_committer(
    state: &PipelineState,
    stats: Arc<PipelineStats>,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<(mpsc::Sender<CommitMsg>, Committer, CommittedRx)> {
    let (tx, rx) = mpsc::channel::<CommitMsg>();
    let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel();
    let state = state.clone();
    let handle = std::thread::Builder::new()
        .name("weir-state-commit".into())
        .spawn(move || {
            let result = run_committer(&state, &rx, &done_tx, &stats);
            if let Err(e) = &result {
                tracing::error!(error = %e, "state commits failed; stopping the pipeline");
                stop.cancel();
            }
            result
        })?;
    Ok((tx, handle, done_rx))
}

fn run_committer(
    state: &PipelineState,
    rx: &mpsc::Receiver<CommitMsg>,
    done: &tokio::sync::mpsc::UnboundedSender<Committed>,
    stats: &PipelineStats,
) -> Result<(), String> {
    let mut pending: BTreeMap<u64, Pending> = BTreeMap::new();
    let mut next = state.committed.load(Ordering::Acquire);
    let mut stalled = false;
    let interval = state.config.interval();
    let mut dirty = false;
    let mut last_sync = Instant::now();
    let mut last_sweep = Instant::now();
    loop {
        let msg = match state.config.durability {
            Durability::Batch => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            },
            Durability::Interval => match rx.recv_timeout(interval) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
        };
        if let Some(m) = msg {
            file(&mut pending, m);
        }
        // What arrived meanwhile, so the ready batches commit together.
        while let Ok(m) = rx.try_recv() {
            file(&mut pending, m);
        }
        // Every ready batch, in order, in one group commit (one changelog
        // flush, one atomic store batch): the later batches' writes and
        // progress after the earlier ones'.
        let mut group: Option<Commit> = None;
        let mut upto = next;
        let was_stalled = stalled;
        while !stalled {
            let ready = pending
                .get(&upto)
                .is_some_and(|p| p.delta.is_some() && p.acked.is_some());
            if !ready {
                break;
            }
            let Some(Pending {
                delta: Some(mut commit),
                acked: Some((delivered, progress)),
            }) = pending.remove(&upto)
            else {
                break;
            };
            if !delivered {
                // Its outputs were not all accepted: neither it nor any later
                // batch (computed from its state) may be committed; a restart
                // replays from the last commit.
                tracing::error!(
                    batch = upto,
                    "a batch's outputs were not delivered: state commits stop here (a restart replays from the last commit)"
                );
                stalled = true;
                break;
            }
            commit.progress = progress;
            match group.as_mut() {
                Some(g) => g.extend(commit),
                None => group = Some(commit),
            }
            upto += 1;
        }
        if let Some(mut commit) = group {
            commit.progress = latest_progress(std::mem::take(&mut commit.progress));
            let started = Instant::now();
            if let Some(changelog) = &state.changelog {
                commit.changelog = changelog
                    .publish(&commit)
                    .map_err(|e| format!("publishing state: {e}"))?;
            }
            state
                .store
                .commit(&commit)
                .map_err(|e| format!("committing state: {e}"))?;
            stats.state_commit.observe(started.elapsed().as_secs_f64());
            dirty = true;
            next = upto;
            state.committed.store(next, Ordering::Release);
            // The driver is gone only at the very end: nothing to tell.
            let _ = done.send(Committed {
                upto: next,
                stalled: false,
            });
        }
        if stalled {
            if !was_stalled {
                let _ = done.send(Committed {
                    upto: next,
                    stalled: true,
                });
            }
            pending.clear();
        }
        if !state.ttl_stages.is_empty() && last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = Instant::now();
            for stage in &state.ttl_stages {
                match state
                    .store
                    .sweep_expired(stage, crate::event::now_ms(), SWEEP_MAX)
                {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(stage = %stage, entries = n, "expired state removed"),
                    Err(e) => tracing::warn!(stage = %stage, error = %e, "sweeping expired state"),
                }
            }
        }
        if state.config.durability == Durability::Interval
            && dirty
            && last_sync.elapsed() >= interval
        {
            state
                .store
                .persist()
                .map_err(|e| format!("syncing state: {e}"))?;
            dirty = false;
            last_sync = Instant::now();
        }
    }
    if dirty {
        state
            .store
            .persist()
            .map_err(|e| format!("syncing state: {e}"))?;
    }
    Ok(())
}

fn file(pending: &mut BTreeMap<u64, Pending>, msg: CommitMsg) {
    match msg {
        CommitMsg::Staged { seq, delta } => {
            pending.entry(seq).or_default().delta = Some(delta);
        }
        CommitMsg::Acked {
            seq,
            delivered,
            progress,
        } => {
            pending.entry(seq).or_default().acked = Some((delivered, progress));
        }
    }
}

/// The highest offset per (stream, partition) of a group of batches.
fn latest_progress(progress: BatchProgress) -> BatchProgress {
    let mut high: BTreeMap<(Arc<str>, i32), i64> = BTreeMap::new();
    for (s, p, o) in progress {
        let at = high.entry((s, p)).or_insert(o);
        *at = (*at).max(o);
    }
    high.into_iter().map(|((s, p), o)| (s, p, o)).collect()
}

struct Tracked {
    chunks_left: usize,
    delivered: bool,
    progress: BatchProgress,
}

/// The source driver's side: skips what the store already applied, knows
/// which chunks make each batch, tells the committer when a batch was
/// acknowledged, and holds each chunk's acknowledgement until its batch is
/// committed (the source stores its offsets after the state).
pub(super) struct CommitTracker {
    tx: mpsc::Sender<CommitMsg>,
    resume: Progress,
    chunk_batch: HashMap<u64, u64>,
    batches: HashMap<u64, Tracked>,
    /// Chunks of the batch being filled.
    filling: Vec<u64>,
    skipped: u64,
    /// Acknowledgements held for the source, by batch, until it commits.
    held: BTreeMap<u64, Vec<Ack>>,
    /// The committer reported a stall (or stopped): no batch from here on
    /// commits; held and later acknowledgements reach the source as failed.
    stalled: bool,
}

impl CommitTracker {
    pub(super) fn new(tx: mpsc::Sender<CommitMsg>, resume: Progress) -> Self {
        if !resume.is_empty() {
            tracing::info!(
                partitions = resume.len(),
                "resuming after the stored state progress"
            );
        }
        Self {
            tx,
            resume,
            chunk_batch: HashMap::new(),
            batches: HashMap::new(),
            filling: Vec::new(),
            skipped: 0,
            held: BTreeMap::new(),
            stalled: false,
        }
    }

    /// Removes the events (and rejects) of `read` whose effects the store
    /// already holds; returns how many.
    pub(super) fn skip_applied(&mut self, read: &mut Read) -> usize {
        if self.resume.is_empty() {
            return 0;
        }
        let before = read.len();
        let resume = &self.resume;
        let applied = |p: &crate::event::Position| {
            resume
                .get(&(p.stream.clone(), p.partition))
                .is_some_and(|&at| p.offset <= at)
        };
        read.events.retain(|e| !applied(&e.position));
        read.rejects.retain(|d| !applied(&d.event.position));
        let n = before - read.len();
        self.skipped += n as u64;
        n
    }

    /// How many events were skipped as already applied.
    pub(super) fn skipped(&self) -> u64 {
        self.skipped
    }

    /// A chunk joined the batch being filled.
    pub(super) fn add_chunk(&mut self, chunk: u64) {
        self.filling.push(chunk);
    }

    /// The batch being filled was cut as `seq`, holding these positions.
    pub(super) fn cut<'a>(
        &mut self,
        seq: u64,
        positions: impl Iterator<Item = &'a crate::event::Position>,
    ) {
        let mut high: BTreeMap<(Arc<str>, i32), i64> = BTreeMap::new();
        for p in positions {
            let at = high
                .entry((p.stream.clone(), p.partition))
                .or_insert(p.offset);
            *at = (*at).max(p.offset);
        }
        let chunks = std::mem::take(&mut self.filling);
        for &c in &chunks {
            self.chunk_batch.insert(c, seq);
        }
        self.batches.insert(
            seq,
            Tracked {
                chunks_left: chunks.len(),
                delivered: true,
                progress: high.into_iter().map(|((s, p), o)| (s, p, o)).collect(),
            },
        );
    }

    /// A chunk was acknowledged: returns what the source may hear of now
    /// (a chunk outside any batch — all of it applied before a restart — at
    /// once; a batch's chunks once the batch is committed).
    pub(super) fn acked(&mut self, ack: Ack) -> Vec<Ack> {
        let Some(seq) = self.chunk_batch.remove(&ack.chunk) else {
            return vec![ack];
        };
        let Some(t) = self.batches.get_mut(&seq) else {
            return vec![ack];
        };
        if self.stalled {
            return vec![failed(ack)];
        }
        self.held.entry(seq).or_default().push(ack);
        t.chunks_left = t.chunks_left.saturating_sub(1);
        t.delivered &= ack.status == AckStatus::Delivered;
        if t.chunks_left == 0
            && let Some(t) = self.batches.remove(&seq)
        {
            // The committer outlives the driver: a send fails only if it
            // stopped on a store error, which the pipeline reports.
            let _ = self.tx.send(CommitMsg::Acked {
                seq,
                delivered: t.delivered,
                progress: t.progress,
            });
        }
        Vec::new()
    }

    /// The committer's report (`None`: it stopped): the held
    /// acknowledgements the source may now hear of.
    pub(super) fn committed(&mut self, report: Option<Committed>) -> Vec<Ack> {
        let (upto, stalled) = report.map_or((0, true), |c| (c.upto, c.stalled));
        let mut out = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() >= upto && !stalled {
                break;
            }
            let done = *entry.key() < upto;
            out.extend(
                entry
                    .remove()
                    .into_iter()
                    .map(|a| if done { a } else { failed(a) }),
            );
        }
        self.stalled |= stalled;
        out
    }

    /// Acknowledgements held for uncommitted batches.
    pub(super) fn holding(&self) -> usize {
        self.held.values().map(Vec::len).sum()
    }
}

fn failed(ack: Ack) -> Ack {
    Ack {
        status: AckStatus::Failed,
        ..ack
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Position};
    use crate::state::{Slot, StateWrite};
    use bytes::Bytes;
    use std::time::Duration;

    fn write(key: &str, value: &str) -> Commit {
        Commit {
            writes: vec![StateWrite {
                slot: Slot {
                    stage: Arc::from("s"),
                    partition: 0,
                },
                key: Bytes::from(key.to_owned()),
                value: Some(Bytes::from(value.to_owned())),
                expires_ms: None,
            }],
            ..Commit::default()
        }
    }

    fn ack(chunk: u64, status: AckStatus) -> Ack {
        Ack {
            chunk,
            events: 1,
            status,
        }
    }

    fn pos(offset: i64) -> Position {
        Position::new(Arc::from("in"), 0, offset)
    }

    fn stage(tx: &mpsc::Sender<CommitMsg>, seq: u64, key: &str) {
        tx.send(CommitMsg::Staged {
            seq,
            delta: write(key, "1"),
        })
        .expect("send");
    }

    /// The committer's next report, within a second.
    fn report(rx: &mut CommittedRx) -> Option<Committed> {
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        loop {
            match rx.try_recv() {
                Ok(c) => return Some(c),
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return None,
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                    assert!(std::time::Instant::now() < deadline, "no report");
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    fn chunks(acks: &[Ack]) -> Vec<(u64, AckStatus)> {
        acks.iter().map(|a| (a.chunk, a.status)).collect()
    }

    /// Commits happen in batch order, only for delivered batches, with the
    /// progress of each; a failed batch stops every later commit. The
    /// source hears of a chunk only once its batch is committed; after the
    /// stall, as failed.
    #[test]
    fn commits_in_order_after_acknowledgement_and_stop_at_a_failure() {
        use AckStatus::{Delivered, Failed};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::open(dir.path(), &StateConfig::default()).expect("open");
        let state = PipelineState::new(store.clone(), StateConfig::default());
        let (tx, handle, mut reports) =
            spawn_committer(&state, Arc::default(), Default::default()).expect("spawn");
        let mut tracker = CommitTracker::new(tx.clone(), Progress::new());
        for (seq, offsets) in [(0u64, [0i64, 1]), (1, [2, 3]), (2, [4, 5]), (3, [6, 7])] {
            tracker.add_chunk(seq * 10);
            tracker.add_chunk(seq * 10 + 1);
            tracker.cut(
                seq,
                offsets.iter().map(|&o| pos(o)).collect::<Vec<_>>().iter(),
            );
        }
        // Batch 1 staged and acked before batch 0: nothing may commit yet.
        stage(&tx, 1, "b");
        assert!(tracker.acked(ack(10, Delivered)).is_empty(), "held");
        assert!(tracker.acked(ack(11, Delivered)).is_empty(), "held");
        stage(&tx, 0, "a");
        assert!(tracker.acked(ack(0, Delivered)).is_empty(), "held");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            state.committed.load(Ordering::Acquire),
            0,
            "batch 0 has a chunk unacked"
        );
        assert!(reports.try_recv().is_err(), "nothing committed yet");
        assert!(tracker.acked(ack(1, Delivered)).is_empty(), "held");
        assert_eq!(tracker.holding(), 4);
        let first = report(&mut reports);
        let mut released = tracker.committed(first);
        if tracker.holding() > 0 {
            released.extend(tracker.committed(report(&mut reports)));
        }
        assert_eq!(
            chunks(&released),
            vec![
                (0, Delivered),
                (1, Delivered),
                (10, Delivered),
                (11, Delivered)
            ]
        );
        // Batch 2 failed: it and batch 3 are never committed.
        stage(&tx, 2, "c");
        stage(&tx, 3, "d");
        tracker.acked(ack(20, Delivered));
        tracker.acked(ack(21, Failed));
        assert_eq!(
            report(&mut reports),
            Some(Committed {
                upto: 2,
                stalled: true
            })
        );
        let released = tracker.committed(Some(Committed {
            upto: 2,
            stalled: true,
        }));
        assert_eq!(chunks(&released), vec![(20, Failed), (21, Failed)]);
        assert_eq!(
            chunks(&tracker.acked(ack(30, Delivered))),
            vec![(30, Failed)]
        );
        tracker.acked(ack(31, Delivered));
        drop(tracker);
        drop(tx);
        handle.join().expect("join").expect("committer");
        assert_eq!(state.committed.load(Ordering::Acquire), 2);
        let keys: Vec<Bytes> = ["a", "b", "c", "d"]
            .iter()
            .map(|k| Bytes::from(*k))
            .collect();
        let got = store.get_many("s", 0, &keys, 0).expect("get");
        assert_eq!(got.iter().filter(|v| v.is_some()).count(), 2, "{got:?}");
        assert!(got[0].is_some() && got[1].is_some());
        assert_eq!(
            store
                .progress()
                .expect("progress")
                .get(&(Arc::from("in"), 0)),
            Some(&3)
        );
    }

    /// A chunk outside any batch (all of it applied before a restart)
    /// reaches the source at once; a committer that stopped fails what is
    /// held.
    #[test]
    fn skipped_chunks_pass_and_a_stopped_committer_fails_what_is_held() {
        let (tx, _rx) = mpsc::channel();
        let mut tracker = CommitTracker::new(tx, Progress::new());
        assert_eq!(
            chunks(&tracker.acked(ack(7, AckStatus::Delivered))),
            vec![(7, AckStatus::Delivered)]
        );
        tracker.add_chunk(8);
        tracker.cut(0, [pos(0)].iter());
        assert!(tracker.acked(ack(8, AckStatus::Delivered)).is_empty());
        assert_eq!(
            chunks(&tracker.committed(None)),
            vec![(8, AckStatus::Failed)]
        );
        assert_eq!(tracker.holding(), 0);
    }

    #[test]
    fn resumes_after_the_stored_progress() {
        let (tx, _rx) = mpsc::channel();
        let mut resume = Progress::new();
        resume.insert((Arc::from("in"), 0), 4);
        let mut tracker = CommitTracker::new(tx, resume);
        let mut read = Read {
            chunk: 0,
            events: (0..8).map(|o| Event::new("{}", 0, pos(o))).collect(),
            rejects: Vec::new(),
        };
        read.events
            .push(Event::new("{}", 0, Position::new(Arc::from("in"), 1, 0)));
        assert_eq!(tracker.skip_applied(&mut read), 5);
        let left: Vec<(i32, i64)> = read
            .events
            .iter()
            .map(|e| (e.position.partition, e.position.offset))
            .collect();
        assert_eq!(left, vec![(0, 5), (0, 6), (0, 7), (1, 0)]);
        assert_eq!(tracker.skipped(), 5);
    }
}
