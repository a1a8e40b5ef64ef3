//! The durable store: one fjall database per pipeline, a keyspace per stage
//! and source partition (`s.<stage>.<partition>`: key bytes → value; timers
//! in `t.<stage>.<partition>`: (at-ms, key) → nothing), and `meta`, holding
//! the source progress (per stream and partition, the last offset whose state
//! effects are in the store). A [`Commit`] — the state writes, timer changes
//! and progress of a batch — lands in one atomic fjall batch: all of it, or
//! none of it.
//!
//! Values are stored behind an 8-byte header, the entry's expiry (ms since
//! the epoch, big-endian; 0: never): an expired entry reads as absent and
//! [`StateStore::sweep_expired`] removes it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::config::{Durability, StateConfig};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the state store {} is in use by another weir process (one process per pipeline and state_dir)",
        .dir.display()
    )]
    Locked { dir: PathBuf },
    #[error("state store {}: {source}", .dir.display())]
    Store {
        dir: PathBuf,
        #[source]
        source: fjall::Error,
    },
    #[error("state store {}: corrupt entry in {keyspace}: {what}", .dir.display())]
    Corrupt {
        dir: PathBuf,
        keyspace: String,
        what: String,
    },
}

/// A stored value and when it expires (ms since the epoch), if it does.
pub type Expiring = (Bytes, Option<i64>);

/// The last offset whose effects are in the store, per (stream, partition).
pub type Progress = BTreeMap<(Arc<str>, i32), i64>;

/// Where state lives: one stage's share of one source partition (a
/// keyspace of its own for state, one for timers, one changelog partition).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    pub stage: Arc<str>,
    pub partition: i32,
}

/// A put (`value: Some`) or delete of one key of a stage's partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateWrite {
    pub slot: Slot,
    pub key: Bytes,
    pub value: Option<Bytes>,
    /// When the entry expires (ms since the epoch), if the stage has a TTL.
    pub expires_ms: Option<i64>,
}

/// A timer set (`set: true`) or removed (cancelled or fired).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerWrite {
    pub slot: Slot,
    pub at_ms: i64,
    pub key: Bytes,
    pub set: bool,
}

/// How much state a stage holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateSize {
    pub keys: u64,
    pub bytes: u64,
}

/// What one batch commits, atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commit {
    pub writes: Vec<StateWrite>,
    pub timers: Vec<TimerWrite>,
    /// (stream, partition, last offset applied).
    pub progress: Vec<(Arc<str>, i32, i64)>,
    /// (stage, partition, offset of the last changelog record these changes
    /// are in): where a later restore from the changelog starts.
    pub changelog: Vec<(Arc<str>, i32, i64)>,
}

impl Commit {
    /// Adds `other`'s writes, timers and progress after this one's.
    pub fn extend(&mut self, other: Commit) {
        self.writes.extend(other.writes);
        self.timers.extend(other.timers);
        self.progress.extend(other.progress);
        self.changelog.extend(other.changelog);
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
            && self.timers.is_empty()
            && self.progress.is_empty()
            && self.changelog.is_empty()
    }
}

/// One stored entry, as listed by [`StateStore::scan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub partition: i32,
    pub key: Bytes,
    pub value: Bytes,
    pub expires_ms: Option<i64>,
}

/// The store of one pipeline. Cheap to clone; shared by the keyed stages
/// (reads) and the committer (writes).
#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    meta: Keyspace,
    spaces: Mutex<HashMap<String, Keyspace>>,
    durability: Durability,
    dir: PathBuf,
    /// Bumped whenever something other than a stage's own commits changed
    /// the store (a partition forgotten or restored): what a stage cached
    /// of it is stale then.
    generation: AtomicU64,
}

const HEADER: usize = 8;

fn state_space(stage: &str, partition: i32) -> String {
    format!("s.{stage}.{partition}")
}

fn timer_space(stage: &str, partition: i32) -> String {
    format!("t.{stage}.{partition}")
}

/// Big-endian with the sign bit flipped: byte order is numeric order.
pub(super) fn ordered_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

pub(super) fn from_ordered_i64(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

fn progress_key(stream: &str, partition: i32) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 4 + stream.len() + 4);
    k.push(b'p');
    k.extend_from_slice(&(stream.len() as u32).to_be_bytes());
    k.extend_from_slice(stream.as_bytes());
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

fn parse_progress_key(k: &[u8]) -> Option<(Arc<str>, i32)> {
    let rest = k.strip_prefix(b"p")?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let stream = std::str::from_utf8(rest.get(4..4usize.checked_add(len)?)?).ok()?;
    let p = rest.get(4 + len..)?;
    let partition = i32::from_be_bytes(p.try_into().ok()?);
    Some((Arc::from(stream), partition))
}

/// The meta key of a stage partition's changelog checkpoint.
fn changelog_key(stage: &str, partition: i32) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + stage.len() + 4);
    k.push(b'c');
    k.extend_from_slice(&partition.to_be_bytes());
    k.extend_from_slice(stage.as_bytes());
    k
}

pub(super) fn timer_key(at_ms: i64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&ordered_i64(at_ms));
    k.extend_from_slice(key);
    k
}

pub(super) fn encode_value(value: &[u8], expires_ms: Option<i64>) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + value.len());
    let at = expires_ms.map_or(0, |t| t.max(1) as u64);
    v.extend_from_slice(&at.to_be_bytes());
    v.extend_from_slice(value);
    v
}

/// (payload, expiry); `None` if shorter than the header.
pub(super) fn decode_value(stored: &[u8]) -> Option<(&[u8], Option<i64>)> {
    let head: [u8; HEADER] = stored.get(..HEADER)?.try_into().ok()?;
    let at = u64::from_be_bytes(head);
    let expires = (at != 0).then_some(at as i64);
    Some((&stored[HEADER..], expires))
}

/// The store's block cache.
const CACHE_BYTES: u64 = 64 << 20;
/// Each keyspace's memtable: past it, it is flushed to disk. (fjall's
/// default, 64 MiB for each of a stage's 2 keyspaces per partition, let a
/// soak at 20k events/s grow by ~190 bytes per event: memtables of
/// overwritten values.)
const MEMTABLE_BYTES: u64 = 8 << 20;
/// Journals on disk before the memtables they hold are flushed.
const JOURNAL_BYTES: u64 = 256 << 20;

/// How a keyspace is created: with the memtable bound.
fn keyspace_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
}

/// Creates an empty store at `dir` in one step: built in a sibling folder
/// and renamed into place, so a creation cut short (a full disk, a kill)
/// leaves no half-made store that would then refuse to open.
fn create_atomically(dir: &Path) -> Result<(), fjall::Error> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.creating-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let made = (|| {
        let db = Database::builder(&tmp).worker_threads(1).open()?;
        let meta = db.keyspace("meta", keyspace_options)?;
        db.persist(PersistMode::SyncAll)?;
        drop(meta);
        drop(db);
        std::fs::rename(&tmp, dir)?;
        Ok(())
    })();
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    made
}

impl StateStore {
    /// Opens (or creates) the store in `dir`. Fails with
    /// [`StateError::Locked`] if another process has it open.
    pub fn open(dir: &Path, config: &StateConfig) -> Result<Self, StateError> {
        let err = |source: fjall::Error| match source {
            fjall::Error::Locked => StateError::Locked {
                dir: dir.to_path_buf(),
            },
            source => StateError::Store {
                dir: dir.to_path_buf(),
                source,
            },
        };
        if !dir.exists() {
            create_atomically(dir).map_err(err)?;
        }
        let db = Database::builder(dir)
            .worker_threads(1)
            .cache_size(CACHE_BYTES)
            .max_journaling_size(JOURNAL_BYTES)
            .open()
            .map_err(err)?;
        let meta = db.keyspace("meta", keyspace_options).map_err(err)?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                meta,
                spaces: Mutex::default(),
                durability: config.durability,
                dir: dir.to_path_buf(),
                generation: AtomicU64::new(0),
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn err(&self, source: fjall::Error) -> StateError {
        StateError::Store {
            dir: self.inner.dir.clone(),
            source,
        }
    }

    fn corrupt(&self, keyspace: &str, what: impl Into<String>) -> StateError {
        StateError::Corrupt {
            dir: self.inner.dir.clone(),
            keyspace: keyspace.to_owned(),
            what: what.into(),
        }
    }

    /// The keyspace `name`, opened once. `create: false` and absent: `None`.
    fn space(&self, name: &str, create: bool) -> Result<Option<Keyspace>, StateError> {
        let mut spaces = self
            .inner
            .spaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(k) = spaces.get(name) {
            return Ok(Some(k.clone()));
        }
        if !create && !self.inner.db.keyspace_exists(name) {
            return Ok(None);
        }
        let k = self
            .inner
            .db
            .keyspace(name, keyspace_options)
            .map_err(|e| self.err(e))?;
        spaces.insert(name.to_owned(), k.clone());
        Ok(Some(k))
    }

    /// The stored source progress.
    pub fn progress(&self) -> Result<Progress, StateError> {
        let mut out = Progress::new();
        for guard in self.inner.meta.prefix(b"p") {
            let (k, v) = guard.into_inner().map_err(|e| self.err(e))?;
            let at = parse_progress_key(&k)
                .ok_or_else(|| self.corrupt("meta", "a progress key does not parse"))?;
            let v: [u8; 8] = v[..]
                .try_into()
                .map_err(|_| self.corrupt("meta", "a progress value is not 8 bytes"))?;
            out.insert(at, i64::from_be_bytes(v));
        }
        Ok(out)
    }

    /// The current values of `keys` in a stage's partition (absent or
    /// expired at `now_ms`: `None`).
    pub fn get_many(
        &self,
        stage: &str,
        partition: i32,
        keys: &[Bytes],
        now_ms: i64,
    ) -> Result<Vec<Option<Bytes>>, StateError> {
        Ok(self
            .get_many_expiring(stage, partition, keys, now_ms)?
            .into_iter()
            .map(|found| found.map(|(value, _)| value))
            .collect())
    }

    /// [`get_many`](Self::get_many), with each value's expiry time.
    pub fn get_many_expiring(
        &self,
        stage: &str,
        partition: i32,
        keys: &[Bytes],
        now_ms: i64,
    ) -> Result<Vec<Option<Expiring>>, StateError> {
        let name = state_space(stage, partition);
        let Some(space) = self.space(&name, false)? else {
            return Ok(vec![None; keys.len()]);
        };
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(stored) = space.get(key).map_err(|e| self.err(e))? else {
                out.push(None);
                continue;
            };
            let (value, expires) = decode_value(&stored)
                .ok_or_else(|| self.corrupt(&name, "a value lacks its header"))?;
            if expires.is_some_and(|at| at <= now_ms) {
                out.push(None);
            } else {
                out.push(Some((Bytes::copy_from_slice(value), expires)));
            }
        }
        Ok(out)
    }

    /// Changes whenever the store was changed by something other than the
    /// stages' own commits (a partition forgotten or restored): a stage
    /// drops what it cached of the store when it does.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Tells the stages that the store changed under them (see
    /// [`generation`](Self::generation)).
    pub fn replaced(&self) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The timers of a stage's partition due at `watermark` (at-ms ≤ it), at
    /// most `limit`, earliest first.
    pub fn due_timers(
        &self,
        stage: &str,
        partition: i32,
        watermark: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Bytes)>, StateError> {
        let name = timer_space(stage, partition);
        let Some(space) = self.space(&name, false)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let end = ordered_i64(watermark.saturating_add(1));
        for guard in space.range(..end.as_slice()) {
            if out.len() >= limit {
                break;
            }
            let key = guard.key().map_err(|e| self.err(e))?;
            let at: [u8; 8] = key
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| self.corrupt(&name, "a timer key is shorter than 8 bytes"))?;
            out.push((from_ordered_i64(at), Bytes::copy_from_slice(&key[8..])));
        }
        Ok(out)
    }

    /// Writes `commit` in one atomic batch (synced if `durability = "batch"`).
    pub fn commit(&self, commit: &Commit) -> Result<(), StateError> {
        if commit.is_empty() {
            return Ok(());
        }
        let mode = match self.inner.durability {
            Durability::Batch => Some(PersistMode::SyncData),
            Durability::Interval => None,
        };
        let mut batch = self.inner.db.batch().durability(mode);
        for w in &commit.writes {
            let Some(space) = self.space(&state_space(&w.slot.stage, w.slot.partition), true)?
            else {
                continue;
            };
            match &w.value {
                Some(v) => batch.insert(&space, w.key.to_vec(), encode_value(v, w.expires_ms)),
                None => batch.remove(&space, w.key.to_vec()),
            }
        }
        for t in &commit.timers {
            let Some(space) = self.space(&timer_space(&t.slot.stage, t.slot.partition), true)?
            else {
                continue;
            };
            let k = timer_key(t.at_ms, &t.key);
            if t.set {
                batch.insert(&space, k, Vec::new());
            } else {
                batch.remove(&space, k);
            }
        }
        for (stream, partition, offset) in &commit.progress {
            batch.insert(
                &self.inner.meta,
                progress_key(stream, *partition),
                offset.to_be_bytes().to_vec(),
            );
        }
        for (stage, partition, offset) in &commit.changelog {
            batch.insert(
                &self.inner.meta,
                changelog_key(stage, *partition),
                offset.to_be_bytes().to_vec(),
            );
        }
        batch.commit().map_err(|e| self.err(e))
    }

    /// The offset of the last changelog record of a stage's partition that
    /// the store holds (a restore reads on from the next one).
    pub fn changelog_offset(&self, stage: &str, partition: i32) -> Result<Option<i64>, StateError> {
        let Some(v) = self
            .inner
            .meta
            .get(changelog_key(stage, partition))
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        let v: [u8; 8] = v[..]
            .try_into()
            .map_err(|_| self.corrupt("meta", "a changelog offset is not 8 bytes"))?;
        Ok(Some(i64::from_be_bytes(v)))
    }

    /// Forgets a source partition: the state and timers of these stages in
    /// it, its progress and changelog checkpoints, in one synced batch (a
    /// later assignment restores it from the changelog).
    pub fn forget(
        &self,
        stages: &[Arc<str>],
        stream: &str,
        partition: i32,
    ) -> Result<usize, StateError> {
        let mut batch = self
            .inner
            .db
            .batch()
            .durability(Some(PersistMode::SyncData));
        let mut n = 0;
        for stage in stages {
            for name in [state_space(stage, partition), timer_space(stage, partition)] {
                let Some(space) = self.space(&name, false)? else {
                    continue;
                };
                for guard in space.iter() {
                    let key = guard.key().map_err(|e| self.err(e))?;
                    batch.remove(&space, key);
                    n += 1;
                }
            }
            batch.remove(&self.inner.meta, changelog_key(stage, partition));
        }
        batch.remove(&self.inner.meta, progress_key(stream, partition));
        let done = batch.commit().map_err(|e| self.err(e));
        self.replaced();
        done?;
        Ok(n)
    }

    /// Syncs what was committed to disk.
    pub fn persist(&self) -> Result<(), StateError> {
        self.inner
            .db
            .persist(PersistMode::SyncData)
            .map_err(|e| self.err(e))
    }

    /// The partitions a stage has state in, in order.
    pub fn partitions(&self, stage: &str) -> Vec<i32> {
        self.spaces_of("s", stage)
    }

    /// The partitions a stage has (or had) timers in, in order.
    pub fn timer_partitions(&self, stage: &str) -> Vec<i32> {
        self.spaces_of("t", stage)
    }

    fn spaces_of(&self, kind: &str, stage: &str) -> Vec<i32> {
        let prefix = format!("{kind}.{stage}.");
        let mut out: Vec<i32> = self
            .inner
            .db
            .list_keyspace_names()
            .iter()
            .filter_map(|n| n.strip_prefix(prefix.as_str())?.parse().ok())
            .collect();
        out.sort_unstable();
        out
    }

    /// Up to `limit` live entries of a stage (every partition, in key order
    /// within each), optionally only `key`'s.
    pub fn scan(
        &self,
        stage: &str,
        key: Option<&[u8]>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<Entry>, StateError> {
        let mut out = Vec::new();
        for partition in self.partitions(stage) {
            let name = state_space(stage, partition);
            let Some(space) = self.space(&name, false)? else {
                continue;
            };
            let iter: Box<dyn Iterator<Item = fjall::Guard>> = match key {
                Some(k) => Box::new(space.range(k..=k)),
                None => Box::new(space.iter()),
            };
            for guard in iter {
                if out.len() >= limit {
                    return Ok(out);
                }
                let (k, v) = guard.into_inner().map_err(|e| self.err(e))?;
                let (value, expires) = decode_value(&v)
                    .ok_or_else(|| self.corrupt(&name, "a value lacks its header"))?;
                if expires.is_some_and(|at| at <= now_ms) {
                    continue;
                }
                out.push(Entry {
                    partition,
                    key: Bytes::copy_from_slice(&k),
                    value: Bytes::copy_from_slice(value),
                    expires_ms: expires,
                });
            }
        }
        Ok(out)
    }

    /// Removes up to `limit` entries of `stage` that expired at `now_ms`;
    /// returns how many.
    pub fn sweep_expired(
        &self,
        stage: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<usize, StateError> {
        let mut batch = self.inner.db.batch();
        let mut n = 0;
        for partition in self.partitions(stage) {
            let name = state_space(stage, partition);
            let Some(space) = self.space(&name, false)? else {
                continue;
            };
            for guard in space.iter() {
                if n >= limit {
                    break;
                }
                let (k, v) = guard.into_inner().map_err(|e| self.err(e))?;
                if decode_value(&v).is_some_and(|(_, at)| at.is_some_and(|at| at <= now_ms)) {
                    batch.remove(&space, k);
                    n += 1;
                }
            }
        }
        batch.commit().map_err(|e| self.err(e))?;
        Ok(n)
    }

    /// The live keys of a stage, over its partitions (approximate: LSM
    /// counts, expired entries included until swept), and the disk bytes
    /// of its state keyspaces.
    pub fn approximate_size(&self, stage: &str) -> StateSize {
        self.partitions(stage)
            .into_iter()
            .filter_map(|p| self.space(&state_space(stage, p), false).ok().flatten())
            .fold(StateSize::default(), |size, s| StateSize {
                keys: size.keys + s.approximate_len() as u64,
                bytes: size.bytes + s.disk_space(),
            })
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
