//! `version = "none"`: each event written by plain commands, no version and
//! no script. Hash mode: `HSET key field value ...` (the event's fields
//! merged into the hash) and `EXPIRE key ttl` when a TTL is set; string
//! mode: `SET key value [EX ttl]`. A batch is pipelined: pipelines of up
//! to [`PER_PIPELINE`] events, each sent as soon as it is prepared, in
//! order on the one connection ([`Sending`]), then their answers read, one
//! per command, so an event the server refuses (a key of another type:
//! `WRONGTYPE`) is known alone.
//! (Without a script the commands are not atomic: a hash write refused
//! that way still has its `EXPIRE` applied to the key of the other type.)
//!
//! The last writer wins **in arrival order only**: a replay after a crash
//! writes its events again, so a key may briefly hold an older value until
//! the replay reaches its newest event. A version (`"offset"`, `"/ts"`)
//! is what makes replays and reordering safe.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use ::redis::aio::MultiplexedConnection;
use ::redis::{Pipeline, RedisError, RedisResult, Value};

use super::{RedisMode, Write};

/// Events per pipeline (up to twice as many commands with a TTL in hash
/// mode). The sink prepares the next pipeline while Redis runs this one.
pub(super) const PER_PIPELINE: usize = 128;

/// One pipeline and, for each of its commands, the index of its write.
struct Chunk {
    pipe: Pipeline,
    owners: Vec<usize>,
}

/// The pipeline writing `writes` (`first`: the index of the first), if it
/// has a command.
fn chunk(mode: RedisMode, ttl: Option<u64>, writes: &[&Write], first: usize) -> Option<Chunk> {
    let mut pipe = ::redis::pipe();
    pipe.ignore_errors();
    let mut owners = Vec::with_capacity(writes.len() * 2);
    for (i, w) in writes.iter().enumerate() {
        let owner = first + i;
        match mode {
            RedisMode::Hash => {
                // An empty object merges nothing; its TTL is renewed.
                if !w.value.is_empty() {
                    let hset = pipe.cmd("HSET").arg(&w.key);
                    for part in w.value.iter() {
                        hset.arg(part);
                    }
                    owners.push(owner);
                }
                if let Some(ttl) = ttl {
                    pipe.cmd("EXPIRE").arg(&w.key).arg(ttl);
                    owners.push(owner);
                }
            }
            RedisMode::String => {
                let set = pipe.cmd("SET").arg(&w.key);
                for part in w.value.iter() {
                    set.arg(part);
                }
                if let Some(ttl) = ttl {
                    set.arg("EX").arg(ttl);
                }
                owners.push(owner);
            }
        }
    }
    (!owners.is_empty()).then_some(Chunk { pipe, owners })
}

/// Writes `writes` on `connection`: the writes the server refused (the
/// first error of each, by index), or the error that stopped the whole
/// batch (the connection, a timeout).
pub(super) async fn run(
    connection: &MultiplexedConnection,
    mode: RedisMode,
    ttl: Option<u64>,
    writes: &[&Write],
) -> Result<Vec<(usize, RedisError)>, RedisError> {
    let mut sending = Sending::default();
    for (c, part) in writes.chunks(PER_PIPELINE).enumerate() {
        sending
            .push(connection, mode, ttl, part, c * PER_PIPELINE)
            .await;
    }
    sending.finish().await
}

/// A pipeline's answers: for each command, the index of its write and the
/// server's answer.
type Answers = Result<(Vec<usize>, Vec<RedisResult<Value>>), RedisError>;

/// Pipelines sent, in order, their answers yet to be read.
#[derive(Default)]
pub(super) struct Sending {
    sent: Vec<Pin<Box<dyn Future<Output = Answers> + Send>>>,
    answers: Vec<Option<Answers>>,
}

impl Sending {
    /// Sends the pipeline writing `writes` (at most [`PER_PIPELINE`];
    /// `first`: the index of the first in the batch): it is queued on the
    /// connection when this returns, so the server works on it while the
    /// caller prepares the next.
    pub(super) async fn push(
        &mut self,
        connection: &MultiplexedConnection,
        mode: RedisMode,
        ttl: Option<u64>,
        writes: &[&Write],
        first: usize,
    ) {
        let Some(Chunk { pipe, owners }) = chunk(mode, ttl, writes, first) else {
            return;
        };
        let mut connection = connection.clone();
        let mut sent: Pin<Box<dyn Future<Output = Answers> + Send>> = Box::pin(async move {
            let answers: Vec<RedisResult<Value>> = pipe.query_async(&mut connection).await?;
            Ok((owners, answers))
        });
        // The first poll queues the pipeline (in order: the queue is fair).
        let answer = std::future::poll_fn(|cx| match sent.as_mut().poll(cx) {
            Poll::Ready(answer) => Poll::Ready(Some(answer)),
            Poll::Pending => Poll::Ready(None),
        })
        .await;
        self.sent.push(sent);
        self.answers.push(answer);
    }

    /// Reads every answer: the writes the server refused (the first error
    /// of each, by index), or the error that stopped the whole batch (the
    /// connection, a timeout).
    pub(super) async fn finish(mut self) -> Result<Vec<(usize, RedisError)>, RedisError> {
        join_in_order(&mut self.sent, &mut self.answers).await;
        let mut refused: Vec<(usize, RedisError)> = Vec::new();
        for answer in self.answers.into_iter().flatten() {
            let (owners, answers) = answer?;
            for (owner, answer) in owners.into_iter().zip(answers) {
                if let Err(e) = answer
                    && refused.last().is_none_or(|(last, _)| *last != owner)
                {
                    refused.push((owner, e));
                }
            }
        }
        Ok(refused)
    }
}

/// Polls each of `futures` whose output is not in `outputs` yet, in order,
/// until all are done.
async fn join_in_order<F: Future + ?Sized>(
    futures: &mut [Pin<Box<F>>],
    outputs: &mut [Option<F::Output>],
) {
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
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

    fn chunks(mode: RedisMode, ttl: Option<u64>, writes: &[&Write]) -> Vec<Chunk> {
        writes
            .chunks(PER_PIPELINE)
            .enumerate()
            .filter_map(|(c, part)| chunk(mode, ttl, part, c * PER_PIPELINE))
            .collect()
    }

    fn packed(chunk: &Chunk) -> String {
        String::from_utf8_lossy(&chunk.pipe.get_packed_pipeline()).replace("\r\n", " ")
    }

    #[test]
    fn commands_per_mode_and_ttl() {
        let (a, empty) = (write("k:a", &["f", "1", "g", "x"]), write("k:e", &[]));
        let hash = chunks(RedisMode::Hash, Some(60), &[&a, &empty]);
        assert_eq!(hash.len(), 1);
        assert_eq!(hash[0].owners, [0, 0, 1]);
        let text = packed(&hash[0]);
        assert!(text.contains("HSET $3 k:a $1 f $1 1 $1 g $1 x"), "{text}");
        assert!(text.contains("EXPIRE $3 k:e $2 60"), "{text}");
        assert!(!text.contains("HSET $3 k:e"), "{text}");
        assert!(chunks(RedisMode::Hash, None, &[&empty]).is_empty());

        let s = write("k:s", &["{\"a\":1}"]);
        let string = chunks(RedisMode::String, Some(5), &[&s]);
        assert_eq!(string[0].owners, [0]);
        assert!(packed(&string[0]).contains("SET $3 k:s $7 {\"a\":1} $2 EX $1 5"));
    }

    #[test]
    fn a_batch_is_cut_into_pipelines_in_order() {
        let all: Vec<Write> = (0..PER_PIPELINE * 2 + 1)
            .map(|i| write(&format!("k:{i}"), &["v"]))
            .collect();
        let refs: Vec<&Write> = all.iter().collect();
        let got = chunks(RedisMode::String, None, &refs);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].owners.first(), Some(&PER_PIPELINE));
        assert_eq!(got[2].owners, [PER_PIPELINE * 2]);
    }

    #[tokio::test]
    async fn outputs_come_back_in_order() {
        let slow = |ms: u64, v: u32| async move {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            v
        };
        let mut futures = vec![
            Box::pin(slow(30, 1)),
            Box::pin(slow(0, 2)),
            Box::pin(slow(10, 3)),
        ];
        let mut outputs = vec![None, None, Some(7)];
        join_in_order(&mut futures, &mut outputs).await;
        assert_eq!(
            outputs,
            [Some(1), Some(2), Some(7)],
            "the done one not polled again"
        );
    }
}
