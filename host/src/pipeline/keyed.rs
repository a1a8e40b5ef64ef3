//! A keyed stage's state between its plugin and the store: the state key of
//! each event, the state each call receives (what this stage wrote and is not
//! committed yet first — the overlay — else the store), the writes and timers
//! a call returns (bounded, then overlaid and collected into the batch's
//! [`Commit`]), the timers the watermark made due, and the watermark itself.
//!
//! A batch's writes reach the store only once its outputs were accepted (the
//! committer, `commit.rs`); until then the overlay serves them, so the next
//! batch sees them. Overlay and cache are one map (one lookup per key): an
//! entry written by a batch not committed yet (`committed` is the number of
//! the first batch not yet in the store) is overlay and never dropped; once
//! its batch was committed it is cache, like the keys read from the store:
//! up to `cache_keys` keys' committed state, so a hot key is not read back
//! from the store on every batch. The cache is dropped whenever the store
//! changed under the stage (a partition restored or forgotten: its
//! generation).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;

use crate::event::{Event, now_ms};
use crate::plugin::{KeyedInput, KeyedOutput, Output, Processed, TimerOp};
use crate::state::{
    Commit, KeySpec, Slot, StageStateConfig, StateError, StateStore, StateWrite, TimerWrite,
    WatermarkConfig, Watermarks,
};

/// Most timers fired per partition and batch (more fire in the next ones).
const MAX_FIRED: usize = 4096;

/// Hash maps keyed by state keys, once per key and batch: foldhash (seeded
/// per map, so keys chosen to collide are not a cheap attack), not SipHash.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// What the stage knows of a key's state without the store.
#[derive(Debug)]
struct Known {
    value: Option<Bytes>,
    expires_ms: Option<i64>,
    /// The batch that wrote it (`None`: read from the store). Overlay while
    /// that batch is not committed, cache after.
    seq: Option<u64>,
}

impl Known {
    /// Overlay: written by a batch not committed yet (`committed`: the
    /// first batch not in the store).
    fn is_pending(&self, committed: u64) -> bool {
        self.seq.is_some_and(|s| s >= committed)
    }
}

/// The events of one source partition, with their state keys.
pub struct Group {
    pub partition: i32,
    pub events: Vec<Event>,
    pub keys: Vec<Bytes>,
}

/// What a keyed call delivers, its writes taken.
pub struct Applied {
    /// The events' outputs and errors.
    pub processed: Processed,
    /// (event index, reason): events whose key's write was refused.
    pub refused: Vec<(u32, String)>,
    /// Outputs of fired timers (`input`: the index in `fired`).
    pub timer_outputs: Vec<Output>,
    /// (fired index, reason): timers whose handler failed.
    pub timer_errors: Vec<(u32, String)>,
}

/// A batch split for the keyed calls.
pub struct Plan {
    /// One group per partition with events, in first-seen order.
    pub groups: Vec<Group>,
    /// Events without a usable key, with the reason.
    pub rejects: Vec<(Event, String)>,
}

/// Finds each event's state key (or why it has none): the first thing a
/// keyed stage does with a batch, apart so that the thread before the
/// stage's can do it for the batch the stage will take next (the runner
/// gives each keyed stage such a thread).
#[derive(Clone, Debug)]
pub struct KeyFinder {
    spec: KeySpec,
    max_key_bytes: usize,
}

impl KeyFinder {
    /// The state key of `event`, or the reason it goes to the dead letters.
    pub fn key(&self, event: &Event) -> Result<Bytes, String> {
        let key = self.spec.extract(event)?;
        if key.len() > self.max_key_bytes {
            return Err(format!(
                "the state key is {} bytes, over max_key_bytes = {}",
                key.len(),
                self.max_key_bytes
            ));
        }
        Ok(key)
    }

    /// The keys of `events`, in order.
    pub fn keys(&self, events: &[Event]) -> Vec<Result<Bytes, String>> {
        events.iter().map(|e| self.key(e)).collect()
    }
}

pub struct KeyedState {
    stage: Arc<str>,
    finder: KeyFinder,
    max_value_bytes: usize,
    ttl_ms: Option<i64>,
    store: StateStore,
    /// The first batch not committed yet (set by the committer).
    committed: Arc<AtomicU64>,
    /// (partition, key) → its state as written by a batch (overlay, or
    /// cache once committed) or read from the store (cache).
    known: HashMap<(i32, Bytes), Known>,
    /// `committed` as the batch being processed began.
    committed_at: u64,
    cache_keys: usize,
    /// The store's generation the cache was filled under.
    generation: u64,
    /// (partition, at-ms, key) → (set or removed, the batch).
    timers: BTreeMap<(i32, i64, Bytes), (bool, u64)>,
    /// Partitions that may hold timers.
    timer_partitions: BTreeSet<i32>,
    watermarks: Watermarks,
    /// The batch being processed.
    seq: u64,
    /// What the batch being processed will commit.
    delta: Commit,
}

/// Whose the state is: for dead-letter reasons.
fn show_key(key: &[u8]) -> String {
    let text = String::from_utf8_lossy(key);
    if text.chars().count() > 64 {
        format!("{:?}…", text.chars().take(64).collect::<String>())
    } else {
        format!("{text:?}")
    }
}

impl KeyedState {
    pub fn new(
        stage: Arc<str>,
        config: &StageStateConfig,
        watermark: &WatermarkConfig,
        store: StateStore,
        committed: Arc<AtomicU64>,
    ) -> Result<Self, String> {
        let spec = KeySpec::parse(&config.key)?;
        let timer_partitions = store.timer_partitions(&stage).into_iter().collect();
        let generation = store.generation();
        Ok(Self {
            stage,
            finder: KeyFinder {
                spec,
                max_key_bytes: config.max_key_bytes,
            },
            max_value_bytes: config.max_value_bytes,
            ttl_ms: config.ttl_ms(),
            store,
            committed,
            known: HashMap::default(),
            committed_at: 0,
            cache_keys: config.cache_keys,
            generation,
            timers: BTreeMap::new(),
            timer_partitions,
            watermarks: Watermarks::new(watermark),
            seq: 0,
            delta: Commit::default(),
        })
    }

    pub fn store(&self) -> &StateStore {
        &self.store
    }

    /// What finds this stage's state keys.
    pub fn finder(&self) -> &KeyFinder {
        &self.finder
    }

    /// Starts batch `seq`: the overlay entries the store now holds become
    /// cache (bounded by `cache_keys`; dropped if the store changed under
    /// the stage).
    pub fn begin(&mut self, seq: u64) {
        self.seq = seq;
        let committed = self.committed.load(Ordering::Acquire);
        self.committed_at = committed;
        let generation = self.store.generation();
        if generation != self.generation || self.cache_keys == 0 {
            self.known.retain(|_, k| k.is_pending(committed));
            self.generation = generation;
        }
        self.timers.retain(|_, (_, s)| *s >= committed);
        if self.known.len() > self.cache_keys {
            // Evict committed entries until the map is down to 3/4 of the
            // bound (or only overlay is left), in the map's (arbitrary)
            // order: a length check per batch, a pass only when over.
            let mut evict = self.known.len() - self.cache_keys * 3 / 4;
            self.known.retain(|_, k| {
                if evict == 0 || k.is_pending(committed) {
                    return true;
                }
                evict -= 1;
                false
            });
        }
    }

    /// Splits `events` by partition, with their keys; events without a key
    /// (or with one over `max_key_bytes`) are rejected with the reason.
    /// `found`: the events' keys if a thread before found them (one per
    /// event; otherwise they are found here).
    pub fn plan(&self, events: Vec<Event>, found: Vec<Result<Bytes, String>>) -> Plan {
        let found = if found.len() == events.len() {
            found
        } else {
            self.finder.keys(&events)
        };
        let mut groups: Vec<Group> = Vec::new();
        let mut rejects = Vec::new();
        for (event, key) in events.into_iter().zip(found) {
            let key = match key {
                Ok(k) => k,
                Err(reason) => {
                    rejects.push((event, reason));
                    continue;
                }
            };
            let partition = event.position.partition;
            match groups.iter_mut().find(|g| g.partition == partition) {
                Some(g) => {
                    g.events.push(event);
                    g.keys.push(key);
                }
                None => groups.push(Group {
                    partition,
                    events: vec![event],
                    keys: vec![key],
                }),
            }
        }
        Plan { groups, rejects }
    }

    /// The watermark before this batch's events.
    pub fn watermark(&self) -> Option<i64> {
        self.watermarks.current()
    }

    /// Partitions that may have due timers.
    pub fn timer_partitions(&self) -> Vec<i32> {
        self.timer_partitions.iter().copied().collect()
    }

    /// Takes the timers of `partition` due at `watermark` out of the timer
    /// set (their removal is part of this batch's commit).
    pub fn take_due(
        &mut self,
        partition: i32,
        watermark: Option<i64>,
    ) -> Result<Vec<(i64, Bytes)>, StateError> {
        let Some(w) = watermark else {
            return Ok(Vec::new());
        };
        let mut due: BTreeSet<(i64, Bytes)> = BTreeSet::new();
        for (at, key) in self
            .store
            .due_timers(&self.stage, partition, w, MAX_FIRED)?
        {
            let removed = matches!(
                self.timers.get(&(partition, at, key.clone())),
                Some((false, _))
            );
            if !removed {
                due.insert((at, key));
            }
        }
        let start = (partition, i64::MIN, Bytes::new());
        for ((p, at, key), (set, _)) in self.timers.range(start..) {
            if *p != partition || *at > w {
                break;
            }
            if *set {
                due.insert((*at, key.clone()));
            }
        }
        let due: Vec<(i64, Bytes)> = due.into_iter().take(MAX_FIRED).collect();
        for (at, key) in &due {
            self.timer(partition, *at, key.clone(), false);
        }
        Ok(due)
    }

    fn slot(&self, partition: i32) -> Slot {
        Slot {
            stage: self.stage.clone(),
            partition,
        }
    }

    fn timer(&mut self, partition: i32, at_ms: i64, key: Bytes, set: bool) {
        if set {
            self.timer_partitions.insert(partition);
        }
        self.timers
            .insert((partition, at_ms, key.clone()), (set, self.seq));
        self.delta.timers.push(TimerWrite {
            slot: self.slot(partition),
            at_ms,
            key,
            set,
        });
    }

    /// The input of a call over `keys` (one per event) and fired timers.
    pub fn input(
        &mut self,
        partition: i32,
        keys: &[Bytes],
        fired: &[(i64, Bytes)],
        watermark: Option<i64>,
    ) -> Result<KeyedInput, StateError> {
        let mut index: HashMap<Bytes, u32> = HashMap::default();
        let mut input = KeyedInput {
            watermark,
            ..KeyedInput::default()
        };
        let mut slot = |key: &Bytes, input: &mut KeyedInput| -> u32 {
            *index.entry(key.clone()).or_insert_with(|| {
                input.keys.push(key.clone());
                (input.keys.len() - 1) as u32
            })
        };
        for key in keys {
            let i = slot(key, &mut input);
            input.event_key.push(i);
        }
        for (at, key) in fired {
            let i = slot(key, &mut input);
            input.fired.push((i, *at));
        }
        // The overlay first, then the cache; one store read for the rest.
        let now = now_ms();
        let mut missing = Vec::new();
        let mut lookup = (partition, Bytes::new());
        input.states = Vec::with_capacity(input.keys.len());
        for (i, k) in input.keys.iter().enumerate() {
            lookup.1 = k.clone();
            let state = if let Some(k) = self.known.get(&lookup) {
                if !k.is_pending(self.committed_at) && k.expires_ms.is_some_and(|at| at <= now) {
                    None
                } else {
                    k.value.clone()
                }
            } else {
                missing.push(i);
                None
            };
            input.states.push(state);
        }
        if !missing.is_empty() {
            let wanted: Vec<Bytes> = missing.iter().map(|&i| input.keys[i].clone()).collect();
            let found = self
                .store
                .get_many_expiring(&self.stage, partition, &wanted, now)?;
            let cache = self.cache_keys > 0;
            for ((i, key), found) in missing.into_iter().zip(wanted).zip(found) {
                let (value, expires) = match found {
                    Some((value, expires)) => (Some(value), expires),
                    None => (None, None),
                };
                if cache {
                    self.known.insert(
                        (partition, key),
                        Known {
                            value: value.clone(),
                            expires_ms: expires,
                            seq: None,
                        },
                    );
                }
                input.states[i] = value;
            }
        }
        Ok(input)
    }

    /// Takes a call's writes and timers (bounded: a value over
    /// `max_value_bytes` is not written, and the call's events of that key
    /// become dead letters, returned as (event index, reason), their
    /// outputs dropped). Returns what to deliver.
    pub fn apply(&mut self, partition: i32, input: &KeyedInput, out: KeyedOutput) -> Applied {
        let mut refused: HashMap<Bytes, String> = HashMap::default();
        for (key, value) in &out.writes {
            let size = value.as_ref().map_or(0, Bytes::len);
            if size > self.max_value_bytes {
                refused.entry(key.clone()).or_insert_with(|| {
                    format!(
                        "the state value of key {} is {size} bytes, over max_value_bytes = {}: the state is not written",
                        show_key(key),
                        self.max_value_bytes
                    )
                });
            } else if key.len() > self.finder.max_key_bytes {
                refused.entry(key.clone()).or_insert_with(|| {
                    format!(
                        "the plugin wrote a state key of {} bytes, over max_key_bytes = {}",
                        key.len(),
                        self.finder.max_key_bytes
                    )
                });
            }
        }
        let expires = self.ttl_ms.map(|ttl| now_ms().saturating_add(ttl));
        for (key, value) in out.writes {
            if refused.contains_key(&key) {
                continue;
            }
            self.known.insert(
                (partition, key.clone()),
                Known {
                    value: value.clone(),
                    expires_ms: expires,
                    seq: Some(self.seq),
                },
            );
            self.delta.writes.push(StateWrite {
                slot: self.slot(partition),
                key,
                value,
                expires_ms: expires,
            });
        }
        for change in out.timers {
            let (key, at, set) = match change {
                TimerOp::Set { key, at_ms } => (key, at_ms, true),
                TimerOp::Cancel { key, at_ms } => (key, at_ms, false),
            };
            if !refused.contains_key(&key) && key.len() <= self.finder.max_key_bytes {
                self.timer(partition, at, key, set);
            }
        }
        let mut processed = Processed {
            outputs: out.outputs,
            errors: out.errors,
        };
        let mut dead = Vec::new();
        if !refused.is_empty() {
            let bad: BTreeSet<u32> = input
                .event_key
                .iter()
                .enumerate()
                .filter(|(_, k)| {
                    input
                        .keys
                        .get(**k as usize)
                        .is_some_and(|k| refused.contains_key(k))
                })
                .map(|(i, _)| i as u32)
                .collect();
            processed.outputs.retain(|o| !bad.contains(&o.input));
            processed.errors.retain(|(i, _)| !bad.contains(i));
            for i in bad {
                let key = &input.keys[input.event_key[i as usize] as usize];
                dead.push((i, refused[key].clone()));
            }
        }
        Applied {
            processed,
            refused: dead,
            timer_outputs: out.timer_outputs,
            timer_errors: out.timer_errors,
        }
    }

    /// Records the batch's event times; returns how many were late.
    pub fn observe(&mut self, events: &[Event]) -> usize {
        let now = Instant::now();
        let late = events
            .iter()
            .filter(|e| {
                self.watermarks.observe(
                    &e.position.stream,
                    e.position.partition,
                    e.timestamp_ms,
                    now,
                )
            })
            .count();
        self.watermarks.advance(now);
        late
    }

    /// The input ended: every timer is due.
    pub fn end_of_input(&mut self) {
        self.watermarks.end_of_input();
    }

    /// What this batch commits (its writes and timers so far).
    pub fn take_delta(&mut self) -> Commit {
        std::mem::take(&mut self.delta)
    }

    /// Entries written by batches not committed yet (for tests).
    #[cfg(test)]
    fn uncommitted(&self) -> usize {
        self.known
            .values()
            .filter(|k| k.is_pending(self.committed_at))
            .count()
    }

    /// Committed entries kept (for tests).
    #[cfg(test)]
    fn cached(&self) -> usize {
        self.known.len() - self.uncommitted()
    }

    /// Whether a committed entry of `key` is kept (for tests).
    #[cfg(test)]
    fn is_cached(&self, partition: i32, key: &[u8]) -> bool {
        self.known
            .get(&(partition, Bytes::copy_from_slice(key)))
            .is_some_and(|k| !k.is_pending(self.committed_at))
    }
}

#[cfg(test)]
#[path = "keyed_tests.rs"]
mod tests;
