//! `version = "none"`: each event written by plain commands, no version and
//! no script. Hash mode: `HSET key field value ...` (the event's fields
//! merged into the hash) and `EXPIRE key ttl` when a TTL is set; string
//! mode: `SET key value [EX ttl]`. A batch is pipelined: pipelines of up
//! to [`PER_PIPELINE`] events, all sent at once and in order on the one
//! connection, then their answers read, one per command, so an event the
//! server refuses (a key of another type: `WRONGTYPE`) is known alone.
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
/// mode).
pub(super) const PER_PIPELINE: usize = 256;

/// One pipeline and, for each of its commands, the index of its write.
struct Chunk {
    pipe: Pipeline,
    owners: Vec<usize>,
}

/// The pipelines writing `writes`.
fn chunks(mode: RedisMode, ttl: Option<u64>, writes: &[&Write]) -> Vec<Chunk> {
    let mut out = Vec::with_capacity(writes.len().div_ceil(PER_PIPELINE));
    for (c, part) in writes.chunks(PER_PIPELINE).enumerate() {
        let mut pipe = ::redis::pipe();
        pipe.ignore_errors();
        let mut owners = Vec::with_capacity(part.len() * 2);
        for (i, w) in part.iter().enumerate() {
            let owner = c * PER_PIPELINE + i;
            match mode {
                RedisMode::Hash => {
                    // An empty object merges nothing; its TTL is renewed.
                    if !w.value.is_empty() {
                        let hset = pipe.cmd("HSET").arg(&w.key);
                        for part in &w.value {
                            hset.arg(&part[..]);
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
                    for part in &w.value {
                        set.arg(&part[..]);
                    }
                    if let Some(ttl) = ttl {
                        set.arg("EX").arg(ttl);
                    }
                    owners.push(owner);
                }
            }
        }
        if !owners.is_empty() {
            out.push(Chunk { pipe, owners });
        }
    }
    out
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
    let chunks = chunks(mode, ttl, writes);
    let sent = chunks.into_iter().map(|Chunk { pipe, owners }| {
        let mut connection = connection.clone();
        async move {
            let answers: Vec<RedisResult<Value>> = pipe.query_async(&mut connection).await?;
            Ok::<_, RedisError>((owners, answers))
        }
    });
    let mut refused: Vec<(usize, RedisError)> = Vec::new();
    for answer in in_order(sent.collect()).await {
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

/// Runs `futures` together, first polling each in the order given (a
/// pipeline is queued on the connection at its first poll, so the
/// pipelines reach the server in that order), and returns their outputs in
/// that order.
async fn in_order<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
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
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(key: &str, value: &[&str]) -> Write {
        Write {
            key: key.into(),
            version: 0,
            value: value.iter().map(|v| v.as_bytes().to_vec()).collect(),
        }
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
        assert_eq!(
            in_order(vec![slow(30, 1), slow(0, 2), slow(10, 3)]).await,
            [1, 2, 3]
        );
    }
}
