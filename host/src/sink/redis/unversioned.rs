//! `version = "none"`: each event written by plain commands, no version and
//! no script. Hash mode: `HSET key field value ...` (the event's fields
//! merged into the hash) and `EXPIRE key ttl` when a TTL is set; string
//! mode: `SET key value [EX ttl]`. A batch is pipelined: pipelines of up
//! to [`PER_PIPELINE`] events, each encoded straight into RESP and written
//! as soon as it is prepared, in order on the sink's one bare connection
//! ([`resp`](super::resp)), the replies read while later pipelines are
//! written and at the end, one per command, so an event the server refuses
//! (a key of another type: `WRONGTYPE`) is known alone.
//! (Without a script the commands are not atomic: a hash write refused
//! that way still has its `EXPIRE` applied to the key of the other type.)
//!
//! The last writer wins **in arrival order only**: a replay after a crash
//! writes its events again, so a key may briefly hold an older value until
//! the replay reaches its newest event. A version (`"offset"`, `"/ts"`)
//! is what makes replays and reordering safe.

use ::redis::RedisError;

use super::resp::{self, Replies, RespConnection};
use super::{RedisMode, Write};

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
    for (c, part) in writes.chunks(PER_PIPELINE).enumerate() {
        sending.push(part, c * PER_PIPELINE).await;
    }
    sending.finish().await
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

/// A batch's pipelines being written, in order, on one connection.
pub(super) struct Sending {
    connection: Option<RespConnection>,
    /// What broke the connection, if it broke.
    broke: Option<RedisError>,
    mode: RedisMode,
    ttl: Option<String>,
    buf: Vec<u8>,
    tally: Tally,
}

impl Sending {
    pub(super) fn new(connection: RespConnection, mode: RedisMode, ttl: Option<u64>) -> Self {
        Self {
            connection: Some(connection),
            broke: None,
            mode,
            ttl: ttl.map(|t| t.to_string()),
            buf: Vec::with_capacity(16 * 1024),
            tally: Tally::default(),
        }
    }

    /// Writes the pipeline of `writes` (at most [`PER_PIPELINE`]; `first`:
    /// the index of the first in the batch), reading the replies that come
    /// meanwhile: Redis works on it while the caller prepares the next.
    /// Nothing more is written once the connection broke (the batch is
    /// then retried whole).
    pub(super) async fn push(&mut self, writes: &[&Write], first: usize) {
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        self.buf.clear();
        let shape = (self.mode, self.ttl.as_deref());
        encode(&mut self.buf, &mut self.tally.owners, shape, writes, first);
        if let Err(e) = connection.send(&self.buf, &mut self.tally).await {
            self.connection = None;
            self.broke = Some(e);
        }
    }

    /// Reads the rest of the replies: the connection back unless it broke,
    /// and how the batch went.
    pub(super) async fn finish(mut self) -> (Option<RespConnection>, Outcome) {
        if let Some(connection) = self.connection.as_mut() {
            let left = self.tally.owners.len().saturating_sub(self.tally.replied);
            if let Err(e) = connection.wait(left, &mut self.tally).await {
                self.connection = None;
                self.broke = Some(e);
            }
        }
        match self.broke {
            Some(e) => (None, Err(e)),
            None => (self.connection, Ok(self.tally.refused)),
        }
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
}
