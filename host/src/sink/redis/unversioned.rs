//! `version = "none"`: each event written by plain commands, no version and
//! no script. Hash mode: `HSET key field value ...` (the event's fields
//! merged into the hash) and `EXPIRE key ttl` when a TTL is set; string
//! mode: `SET key value [EX ttl]`. A batch is pipelined: pipelines of up
//! to [`PER_PIPELINE`] events, each encoded straight into RESP and written
//! as soon as it is prepared, in order on the sink's one bare connection
//! ([`resp`](super::resp)), the replies read while later pipelines are
//! written and at the end, one per command, so an event the server refuses
//! (a key of another type: `WRONGTYPE`) is known alone. Batches overlap: a
//! batch's last replies are read after the next batch's first pipeline is
//! written, so Redis does not sit idle between two `send`s; the batch's
//! acknowledgements are held until then (or until the pipeline has no
//! batch queued for the sink: [`Sink::settle`](crate::sink::Sink::settle)).
//! A batch written again (the connection broke, a passing error) is
//! followed by the next one written again whole, so the order of writes
//! holds.
//! (Without a script the commands are not atomic: a hash write refused
//! that way still has its `EXPIRE` applied to the key of the other type.)
//!
//! The last writer wins **in arrival order only**: a replay after a crash
//! writes its events again, so a key may briefly hold an older value until
//! the replay reaches its newest event. A version (`"offset"`, `"/ts"`)
//! is what makes replays and reordering safe.

use std::collections::VecDeque;
use std::io;

use std::time::Instant;

use ::redis::RedisError;

use super::resp::{self, Replies, RespConnection};
use super::{RedisMode, RedisSink, Write};
use crate::endpoint::EndpointError;
use crate::event::Event;
use crate::pipeline::AckSet;
use crate::sink::SinkContext;
use crate::sink::retry::RetryConfig;
use crate::sink::upsert::{self, Attempt};

/// Events per pipeline (up to twice as many commands with a TTL in hash
/// mode). The sink prepares the next pipeline while Redis runs this one.
pub(super) const PER_PIPELINE: usize = 128;

/// Appends the commands writing `writes` (`first`: the index of the first
/// in the batch) to `buf`, and each command's write index to `owners`.
fn encode(
    buf: &mut Vec<u8>,
    owners: &mut Vec<usize>,
    (mode, ttl): (RedisMode, Option<&str>),
    writes: &[&Write],
    first: usize,
) {
    for (i, w) in writes.iter().enumerate() {
        let owner = first + i;
        let key = w.key.as_bytes();
        match mode {
            RedisMode::Hash => {
                // An empty object merges nothing; its TTL is renewed.
                if !w.value.is_empty() {
                    resp::array(buf, 2 + w.value.len());
                    resp::arg(buf, b"HSET");
                    resp::arg(buf, key);
                    for part in w.value.iter() {
                        resp::arg(buf, part);
                    }
                    owners.push(owner);
                }
                if let Some(ttl) = ttl {
                    resp::array(buf, 3);
                    resp::arg(buf, b"EXPIRE");
                    resp::arg(buf, key);
                    resp::arg(buf, ttl.as_bytes());
                    owners.push(owner);
                }
            }
            RedisMode::String => {
                let extra = if ttl.is_some() { 2 } else { 0 };
                resp::array(buf, 2 + w.value.len() + extra);
                resp::arg(buf, b"SET");
                resp::arg(buf, key);
                for part in w.value.iter() {
                    resp::arg(buf, part);
                }
                if let Some(ttl) = ttl {
                    resp::arg(buf, b"EX");
                    resp::arg(buf, ttl.as_bytes());
                }
                owners.push(owner);
            }
        }
    }
}

/// Writes `writes` on `connection`: the connection back unless it broke,
/// and the writes the server refused (the first error of each, by index),
/// or the error that stopped the whole batch (the connection, a timeout).
pub(super) async fn run(
    connection: RespConnection,
    mode: RedisMode,
    ttl: Option<u64>,
    writes: &[&Write],
) -> (Option<RespConnection>, Outcome) {
    let mut sending = Sending::new(connection, mode, ttl);
    sending.begin();
    for (c, part) in writes.chunks(PER_PIPELINE).enumerate() {
        sending.push(part, c * PER_PIPELINE).await;
    }
    let outcome = sending.finish_oldest().await;
    (sending.into_connection(), outcome)
}

/// The writes the server refused (the first error of each, by index), or
/// the error that stopped the whole batch.
pub(super) type Outcome = Result<Vec<(usize, RedisError)>, RedisError>;

/// Each command's write, and the refused ones as their replies come.
#[derive(Default)]
struct Tally {
    owners: Vec<usize>,
    replied: usize,
    refused: Vec<(usize, RedisError)>,
}

impl Tally {
    fn waiting(&self) -> bool {
        self.replied < self.owners.len()
    }
}

impl Replies for Tally {
    fn reply(&mut self, refused: Option<RedisError>) {
        let owner = self.owners.get(self.replied).copied();
        self.replied += 1;
        if let (Some(e), Some(owner)) = (refused, owner)
            && self.refused.last().is_none_or(|(last, _)| *last != owner)
        {
            self.refused.push((owner, e));
        }
    }
}

/// The tallies of the batches on one connection, oldest first: a reply is
/// the oldest waiting batch's (one more than all of them wait for lands
/// on the newest, whose count then tells it is garbage).
#[derive(Default)]
struct Batches(VecDeque<Tally>);

impl Replies for Batches {
    fn reply(&mut self, refused: Option<RedisError>) {
        let n = self.0.len();
        let at = self
            .0
            .iter()
            .position(Tally::waiting)
            .unwrap_or(n.saturating_sub(1));
        if let Some(tally) = self.0.get_mut(at) {
            tally.reply(refused);
        }
    }
}

/// Batches' pipelines being written, in order, on one connection: a batch
/// is begun, its pipelines pushed, and its replies awaited later — after
/// the next batch's first pipeline is on its way, so Redis does not wait
/// between the two ([`RedisSink::send_unversioned`]).
pub(super) struct Sending {
    connection: Option<RespConnection>,
    /// What broke the connection, until a batch is told.
    broke: Option<RedisError>,
    /// What broke it, once told.
    broken: Option<String>,
    mode: RedisMode,
    ttl: Option<String>,
    buf: Vec<u8>,
    batches: Batches,
}

impl Sending {
    pub(super) fn new(connection: RespConnection, mode: RedisMode, ttl: Option<u64>) -> Self {
        Self {
            connection: Some(connection),
            broke: None,
            broken: None,
            mode,
            ttl: ttl.map(|t| t.to_string()),
            buf: Vec::with_capacity(16 * 1024),
            batches: Batches::default(),
        }
    }

    /// Begins a batch: the pipelines pushed next are its.
    pub(super) fn begin(&mut self) {
        self.batches.0.push_back(Tally::default());
    }

    /// Writes the pipeline of `writes` (at most [`PER_PIPELINE`]; `first`:
    /// the index of the first in the batch) for the batch begun last,
    /// reading the replies that come meanwhile: Redis works on it while
    /// the caller prepares the next. Nothing more is written once the
    /// connection broke (the batches are then retried whole).
    pub(super) async fn push(&mut self, writes: &[&Write], first: usize) {
        let (Some(connection), Some(tally)) = (self.connection.as_mut(), self.batches.0.back_mut())
        else {
            return;
        };
        self.buf.clear();
        let shape = (self.mode, self.ttl.as_deref());
        encode(&mut self.buf, &mut tally.owners, shape, writes, first);
        if let Err(e) = connection.send(&self.buf, &mut self.batches).await {
            self.connection = None;
            self.broke = Some(e);
        }
    }

    /// Reads the rest of the oldest batch's replies (and any of the next
    /// that come with them): how that batch went.
    pub(super) async fn finish_oldest(&mut self) -> Outcome {
        if let (Some(connection), Some(oldest)) = (self.connection.as_mut(), self.batches.0.front())
        {
            let left = oldest.owners.len().saturating_sub(oldest.replied);
            if let Err(e) = connection.wait(left, &mut self.batches).await {
                self.connection = None;
                self.broke = Some(e);
            }
        }
        let tally = self.batches.0.pop_front().unwrap_or_default();
        if self.connection.is_some() && tally.replied > tally.owners.len() {
            self.connection = None;
            self.broke = Some(resp::garbage("more replies than commands"));
        }
        // The first batch the break stopped gets its error; a later one,
        // written on the same connection, is told it broke (an I/O error:
        // retried).
        if let Some(e) = self.broke.take() {
            self.broken = Some(e.to_string());
            return Err(e);
        }
        match &self.broken {
            Some(e) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("the connection broke: {e}"),
            )
            .into()),
            None => Ok(tally.refused),
        }
    }

    /// The connection, unless it broke or a batch still waits for replies.
    pub(super) fn into_connection(self) -> Option<RespConnection> {
        self.connection.filter(|_| self.batches.0.is_empty())
    }
}

/// A batch whose replies are still coming, on the connection the next
/// batch is written on: its acknowledgements are held until they came.
pub(super) struct Waiting {
    sending: Sending,
    writes: Vec<(Write, Event)>,
    acks: AckSet,
    started: Instant,
}

/// The batch before, its replies not all read: its writes, acks and start.
type Previous = (Vec<(Write, Event)>, AckSet, Instant);

impl RedisSink {
    /// Prepares and sends `events`, each pipeline as soon as it is
    /// prepared (Redis runs one while the next is prepared), on the
    /// connection of the batch before if its replies are still coming:
    /// that one is completed once this one's first pipeline is on its way,
    /// so Redis never waits for the sink between two batches. This batch
    /// is left waiting in turn (completed by the next batch or by
    /// [`settle`](crate::sink::Sink::settle)); retried by [`upsert`] if it
    /// cannot be written on this connection.
    pub(super) async fn send_unversioned(
        &mut self,
        context: &SinkContext,
        retry: &RetryConfig,
        events: Vec<Event>,
        acks: AckSet,
    ) -> Result<(), EndpointError> {
        if events.is_empty() {
            // Nothing to write; the batch before, if any, stays waiting.
            return Ok(());
        }
        let started = Instant::now();
        let (mode, ttl) = (self.config.mode, self.config.ttl_secs);
        // `sending` is `None` when no connection could be made (`unreachable`)
        // or when the batch before is retried (this one is then retried whole,
        // after it).
        let (mut sending, mut previous, unreachable) = match self.waiting.take() {
            Some(w) => (Some(w.sending), Some((w.writes, w.acks, w.started)), None),
            None => match self.bare().await {
                Ok(c) => (Some(Sending::new(c, mode, ttl)), None, None),
                Err(e) => (None, None, Some(e)),
            },
        };
        if let Some(s) = &mut sending {
            s.begin();
        }
        let mut writes = Vec::with_capacity(events.len());
        let mut events = events.into_iter();
        loop {
            let part: Vec<Event> = events.by_ref().take(PER_PIPELINE).collect();
            if part.is_empty() {
                break;
            }
            let first = writes.len();
            writes
                .extend(upsert::prepare(context, "redis", part, &acks, |e| self.prepare(e)).await);
            if let Some(s) = &mut sending {
                let part: Vec<&Write> = writes[first..].iter().map(|(w, _)| w).collect();
                s.push(&part, first).await;
            }
            // Once this batch's first pipeline is on its way (the events
            // are not empty: the first round always gets here).
            if let Some(before) = previous.take()
                && let Err(e) = self.complete(context, retry, before, &mut sending).await
            {
                acks.fail();
                return Err(e);
            }
        }
        match sending {
            Some(sending) => {
                self.waiting = Some(Waiting {
                    sending,
                    writes,
                    acks,
                    started,
                });
                Ok(())
            }
            None => {
                let first = unreachable.map(|e| (Attempt::Unreachable(e.to_string()), started));
                upsert::write_batch_after(self, context, ("redis", retry), writes, &acks, first)
                    .await
            }
        }
    }

    /// Completes the batch before, whose replies come on `sending` after
    /// the ones read so far. If it is to be written again (the connection
    /// broke, the server answered with a passing error), `sending` is
    /// given up: the batch being sent, partly written after it, is then
    /// written again whole after it, so the last writer stays the last.
    async fn complete(
        &mut self,
        context: &SinkContext,
        retry: &RetryConfig,
        (writes, acks, started): Previous,
        sending: &mut Option<Sending>,
    ) -> Result<(), EndpointError> {
        let outcome = match sending.as_mut() {
            Some(s) => s.finish_oldest().await,
            None => Err(io::Error::from(io::ErrorKind::ConnectionAborted).into()),
        };
        let attempt = self.outcome(outcome);
        if !matches!(attempt, Attempt::Written | Attempt::Partly(_)) {
            *sending = None;
        }
        let first = Some((attempt, started));
        upsert::write_batch_after(self, context, ("redis", retry), writes, &acks, first).await
    }

    /// Completes the batch left waiting, if any, and keeps its connection.
    pub(super) async fn settle_unversioned(&mut self) -> Result<(), EndpointError> {
        let Some(Waiting {
            mut sending,
            writes,
            acks,
            started,
        }) = self.waiting.take()
        else {
            return Ok(());
        };
        let context = SinkContext::attached(&mut self.context, "redis");
        let retry = self.config.retry.clone();
        let outcome = sending.finish_oldest().await;
        self.bare = sending.into_connection();
        let attempt = self.outcome(outcome);
        let first = Some((attempt, started));
        upsert::write_batch_after(self, &context, ("redis", &retry), writes, &acks, first).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(key: &str, value: &[&str]) -> Write {
        Write {
            key: key.into(),
            version: 0,
            value: {
                let mut parts = super::super::Parts::default();
                for v in value {
                    parts.push(v.as_bytes());
                }
                parts
            },
        }
    }

    /// The commands writing `writes`, as text (CRLF as spaces), and each
    /// command's write.
    fn encoded(mode: RedisMode, ttl: Option<&str>, writes: &[&Write]) -> (String, Vec<usize>) {
        let (mut buf, mut owners) = (Vec::new(), Vec::new());
        for (c, part) in writes.chunks(PER_PIPELINE).enumerate() {
            encode(&mut buf, &mut owners, (mode, ttl), part, c * PER_PIPELINE);
        }
        (String::from_utf8_lossy(&buf).replace("\r\n", " "), owners)
    }

    #[test]
    fn commands_per_mode_and_ttl() {
        let (a, empty) = (write("k:a", &["f", "1", "g", "x"]), write("k:e", &[]));
        let (text, owners) = encoded(RedisMode::Hash, Some("60"), &[&a, &empty]);
        assert_eq!(owners, [0, 0, 1]);
        assert_eq!(
            text,
            "*6 $4 HSET $3 k:a $1 f $1 1 $1 g $1 x *3 $6 EXPIRE $3 k:a $2 60 \
             *3 $6 EXPIRE $3 k:e $2 60 "
        );
        assert_eq!(encoded(RedisMode::Hash, None, &[&empty]).1, [0usize; 0]);

        let s = write("k:s", &["{\"a\":1}"]);
        let (text, owners) = encoded(RedisMode::String, Some("5"), &[&s]);
        assert_eq!(owners, [0]);
        assert_eq!(text, "*5 $3 SET $3 k:s $7 {\"a\":1} $2 EX $1 5 ");
        let (text, _) = encoded(RedisMode::String, None, &[&s]);
        assert_eq!(text, "*3 $3 SET $3 k:s $7 {\"a\":1} ");
    }

    #[test]
    fn a_batch_is_cut_into_pipelines_in_order() {
        let all: Vec<Write> = (0..PER_PIPELINE * 2 + 1)
            .map(|i| write(&format!("k:{i}"), &["v"]))
            .collect();
        let refs: Vec<&Write> = all.iter().collect();
        let (_, owners) = encoded(RedisMode::String, None, &refs);
        assert_eq!(owners, (0..PER_PIPELINE * 2 + 1).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_error_of_each_write_is_kept() {
        let mut tally = Tally {
            owners: vec![0, 0, 1, 2, 2],
            ..Tally::default()
        };
        let e = || Some(RedisError::from((::redis::ErrorKind::Client, "x")));
        for refused in [e(), e(), None, None, e()] {
            tally.reply(refused);
        }
        let refused: Vec<usize> = tally.refused.iter().map(|(i, _)| *i).collect();
        assert_eq!(refused, [0, 2]);
    }

    #[test]
    fn a_reply_goes_to_the_oldest_batch_waiting() {
        let mut batches = Batches::default();
        for owners in [vec![0, 1], vec![0]] {
            batches.0.push_back(Tally {
                owners,
                ..Tally::default()
            });
        }
        let e = || Some(RedisError::from((::redis::ErrorKind::Client, "x")));
        for refused in [None, e(), e(), None] {
            batches.reply(refused);
        }
        let (a, b) = (&batches.0[0], &batches.0[1]);
        assert_eq!(
            (a.replied, b.replied),
            (2, 2),
            "the extra reply lands on the newest"
        );
        assert_eq!(a.refused.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1]);
        assert_eq!(b.refused.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0]);
    }

    /// What the test server does to its first connection at command `n`
    /// (from 0): close it (`Cut`), or answer `-LOADING` and not run it.
    #[derive(Clone, Copy)]
    enum Fault {
        Cut(usize),
        Loading(usize),
    }

    /// A RESP server that keeps `SET key value` in a map (in the order it
    /// reads them), each command answered `+OK` but for `fault` on the
    /// first connection.
    async fn faulty_server(
        fault: Fault,
    ) -> (
        u16,
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Vec<u8>, Vec<u8>>>>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let map = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let kept = map.clone();
        tokio::spawn(async move {
            let mut connections = 0;
            while let Ok((mut socket, _)) = listener.accept().await {
                connections += 1;
                let fault = (connections == 1).then_some(fault);
                let map = kept.clone();
                tokio::spawn(async move {
                    let (mut buf, mut chunk, mut done) = (Vec::new(), vec![0; 64 * 1024], 0);
                    loop {
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let mut replies = Vec::new();
                        while let Some((args, used)) = command(&buf) {
                            buf.drain(..used);
                            done += 1;
                            match fault {
                                Some(Fault::Cut(n)) if done > n => return,
                                Some(Fault::Loading(n)) if done == n + 1 => {
                                    replies.extend_from_slice(b"-LOADING Redis is loading\r\n");
                                    continue;
                                }
                                _ => {}
                            }
                            if let [set, key, value, ..] = &args[..] {
                                assert_eq!(set, b"SET");
                                map.lock().expect("map").insert(key.clone(), value.clone());
                            }
                            replies.extend_from_slice(b"+OK\r\n");
                        }
                        if socket.write_all(&replies).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, map)
    }

    /// One whole RESP array of bulk strings at the start of `buf`, and its
    /// length.
    fn command(buf: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
        fn line(buf: &[u8], at: usize) -> Option<(usize, usize)> {
            let end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
            let n = std::str::from_utf8(&buf[at + 1..end]).ok()?.parse().ok()?;
            Some((n, end + 2))
        }
        let (n, mut at) = line(buf, 0)?;
        let mut args = Vec::with_capacity(n);
        for _ in 0..n {
            let (len, start) = line(buf, at)?;
            args.push(buf.get(start..start + len)?.to_vec());
            at = start + len + 2;
        }
        (buf.len() >= at).then_some((args, at))
    }

    /// Batches go out back to back, each one's replies read while the next
    /// is written. The connection closes with two batches in flight (or
    /// with the last batch waiting for `flush`), or Redis answers a passing
    /// error to one write of the older batch after the newer one's first
    /// pipeline went out: the older batch is written again, then the newer
    /// one whole, so each key ends at its last value and nothing is lost.
    #[tokio::test]
    async fn a_batch_written_again_keeps_each_last_value() {
        let (per_batch, batches) = (300, 12);
        let faults = [
            Fault::Cut(per_batch * (batches - 2) + 150),
            Fault::Cut(per_batch * (batches - 1) + 200),
            Fault::Loading(per_batch * (batches - 2) + 150),
        ];
        for fault in faults {
            let (port, map) = faulty_server(fault).await;
            let last = send_batches(port, per_batch, batches).await;
            let map = map.lock().expect("map").clone();
            let n = match fault {
                Fault::Cut(n) | Fault::Loading(n) => n,
            };
            assert_eq!(map.len(), last.len(), "fault at {n}");
            let older: Vec<_> = last
                .iter()
                .filter(|(k, v)| map.get(*k) != Some(v))
                .collect();
            assert!(
                older.is_empty(),
                "fault at {n}: {} keys hold an older value",
                older.len()
            );
        }
    }

    /// Sends `batches` batches of `per_batch` string writes of 400 keys
    /// through a sink on `port`, then flushes: each key's last value.
    async fn send_batches(
        port: u16,
        per_batch: usize,
        batches: usize,
    ) -> std::collections::HashMap<Vec<u8>, Vec<u8>> {
        use crate::sink::{Sink, SinkBatch};
        // More keys than a batch has events: a key's last write may be in
        // the batch before the last.
        let keys = 400;
        let config: super::super::RedisSinkConfig = toml::from_str(&format!(
            "url = \"redis://127.0.0.1:{port}/\"\nkey = \"{{/k}}\"\nmode = \"string\"\n\
             version = \"none\"\ntimeout_ms = 2000\n\
             retry = {{ initial_backoff_ms = 5, max_backoff_ms = 20, max_retries = 20 }}\n"
        ))
        .expect("config");
        let mut sink = config.build().expect("build");
        let mut last = std::collections::HashMap::new();
        for b in 0..batches {
            let events: Vec<Event> = (0..per_batch)
                .map(|i| {
                    let n = b * per_batch + i;
                    let key = format!("k{}", n % keys);
                    let value = format!("{{\"k\":\"{key}\",\"n\":{n}}}");
                    last.insert(key.into_bytes(), value.clone().into_bytes());
                    let at = crate::event::Position::new("s".into(), 0, n as i64);
                    Event::new(value.into_bytes(), 0, at)
                })
                .collect();
            let acks = AckSet::default();
            sink.send(SinkBatch { events, acks }).await.expect("send");
        }
        sink.flush().await.expect("flush");
        last
    }
}
