//! A bare RESP connection for the unversioned writes ([`super::unversioned`]):
//! commands encoded straight into one buffer per pipeline, written while the
//! replies of the earlier ones are read, each reply checked in place (an OK
//! or an integer is skipped, an error reply becomes the [`RedisError`] the
//! `redis` crate would have made). No `Cmd`, no `Value`, no task between the
//! sink and the socket: the redis crate's client cost the sink more CPU per
//! write than Redis spends running it (BENCHMARKS.md, "Redis `version =
//! "none"`").
//!
//! The versioned writes keep the crate's multiplexed connection: one script
//! call per batch, where this would save nothing.

use std::io;
use std::time::Duration;

use ::redis::{ConnectionAddr, ConnectionInfo, ErrorKind, RedisError, Value};
use tokio::io::{Interest, Ready};
use tokio::net::{TcpStream, UnixStream};

/// Nesting deeper than this in a reply is refused as garbage (a write's
/// reply is never nested).
const MAX_DEPTH: usize = 8;

/// Appends the header of a RESP array of `n` arguments to `buf`.
pub(super) fn array(buf: &mut Vec<u8>, n: usize) {
    header(buf, b'*', n);
}

/// Appends one argument (a bulk string) to `buf`.
pub(super) fn arg(buf: &mut Vec<u8>, arg: &[u8]) {
    header(buf, b'$', arg.len());
    buf.extend_from_slice(arg);
    buf.extend_from_slice(b"\r\n");
}

/// Appends the RESP array of `args` to `buf`.
fn encode(buf: &mut Vec<u8>, args: &[&[u8]]) {
    array(buf, args.len());
    for a in args {
        arg(buf, a);
    }
}

fn header(buf: &mut Vec<u8>, kind: u8, n: usize) {
    buf.push(kind);
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    buf.extend_from_slice(b"\r\n");
}

/// One complete reply at the start of `buf`: its length, and whether it is
/// an error. `Ok(None)`: not all of it has arrived.
fn reply(buf: &[u8], depth: usize) -> Result<Option<(usize, bool)>, RedisError> {
    let Some(end) = memchr::memchr(b'\n', buf) else {
        return Ok(None);
    };
    let line_len = end + 1;
    if end == 0 || buf[end - 1] != b'\r' {
        return Err(garbage("a reply line without CRLF"));
    }
    let body = &buf[1..end - 1];
    match buf[0] {
        b'+' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some((line_len, false))),
        b'-' => Ok(Some((line_len, true))),
        b'!' => bulk(buf, body, line_len).map(|r| r.map(|(n, _)| (n, true))),
        b'$' | b'=' => bulk(buf, body, line_len),
        kind @ (b'*' | b'~' | b'>' | b'%') => {
            let Some(count) = count(body)? else {
                return Ok(Some((line_len, false)));
            };
            if depth >= MAX_DEPTH {
                return Err(garbage("a reply nested too deep"));
            }
            let count = if kind == b'%' { count * 2 } else { count };
            let mut at = line_len;
            for _ in 0..count {
                match reply(&buf[at..], depth + 1)? {
                    Some((n, _)) => at += n,
                    None => return Ok(None),
                }
            }
            Ok(Some((at, false)))
        }
        _ => Err(garbage("an unknown reply type")),
    }
}

/// A bulk reply whose header line (`line_len` bytes) says `body`.
fn bulk(buf: &[u8], body: &[u8], line_len: usize) -> Result<Option<(usize, bool)>, RedisError> {
    let Some(len) = count(body)? else {
        return Ok(Some((line_len, false)));
    };
    let total = line_len + len + 2;
    if buf.len() < total {
        return Ok(None);
    }
    if &buf[total - 2..total] != b"\r\n" {
        return Err(garbage("a bulk reply without CRLF"));
    }
    Ok(Some((total, false)))
}

/// A length or count: `None` for `-1` (a null).
fn count(body: &[u8]) -> Result<Option<usize>, RedisError> {
    if body == b"-1" {
        return Ok(None);
    }
    std::str::from_utf8(body)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| *n <= 512 << 20)
        .map(Some)
        .ok_or_else(|| garbage("a bad length"))
}

pub(super) fn garbage(what: &'static str) -> RedisError {
    RedisError::from((
        ErrorKind::Parse,
        "Redis sent what is not RESP",
        what.to_owned(),
    ))
}

/// The error an error reply (its whole text) stands for, as the `redis`
/// crate reads it (so the sink classifies it the same way).
fn server_error(text: &[u8]) -> RedisError {
    match ::redis::parse_redis_value(text) {
        Ok(Value::ServerError(e)) => e.into(),
        Ok(_) => garbage("an error reply that is not one"),
        Err(e) => e,
    }
}

/// Where each reply goes: told, in order, whether each command was refused.
pub(super) trait Replies {
    fn reply(&mut self, refused: Option<RedisError>);
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write(buf),
            Stream::Unix(s) => s.try_write(buf),
        }
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_read(buf),
            Stream::Unix(s) => s.try_read(buf),
        }
    }

    async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        match self {
            Stream::Tcp(s) => s.ready(interest).await,
            Stream::Unix(s) => s.ready(interest).await,
        }
    }
}

/// One connection to Redis, authenticated and on its database.
pub(super) struct RespConnection {
    stream: Stream,
    /// Bytes read, replies not yet taken from `read[start..]`.
    read: Vec<u8>,
    start: usize,
    /// The longest wait for the server to take or answer anything.
    timeout: Duration,
}

impl RespConnection {
    /// Connects to `info` (TCP or a Unix socket), then `AUTH` and `SELECT`
    /// as it says; `timeout` bounds each wait.
    pub(super) async fn connect(
        info: &ConnectionInfo,
        timeout: Duration,
    ) -> Result<Self, RedisError> {
        let stream = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let s = within(timeout, TcpStream::connect((host.as_str(), *port))).await??;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
            ConnectionAddr::Unix(path) => {
                Stream::Unix(within(timeout, UnixStream::connect(path)).await??)
            }
            _ => {
                return Err(RedisError::from((
                    ErrorKind::InvalidClientConfig,
                    "TLS is not built into weir's redis sink",
                )));
            }
        };
        let mut c = RespConnection {
            stream,
            read: Vec::with_capacity(16 * 1024),
            start: 0,
            timeout,
        };
        let settings = info.redis_settings();
        let mut hello = Vec::new();
        let mut commands = Vec::new();
        if let Some(password) = settings.password() {
            match settings.username() {
                Some(user) => encode(&mut hello, &[b"AUTH", user.as_bytes(), password.as_bytes()]),
                None => encode(&mut hello, &[b"AUTH", password.as_bytes()]),
            }
            commands.push("AUTH");
        }
        if settings.db() != 0 {
            let db = settings.db().to_string();
            encode(&mut hello, &[b"SELECT", db.as_bytes()]);
            commands.push("SELECT");
        }
        if !commands.is_empty() {
            let mut answers = Handshake(Vec::new());
            c.send(&hello, &mut answers).await?;
            c.wait(commands.len(), &mut answers).await?;
            if answers.0.len() > commands.len() {
                return Err(garbage("more replies than commands"));
            }
            for (command, answer) in commands.iter().zip(answers.0) {
                if let Some(e) = answer {
                    return Err(RedisError::from((
                        ErrorKind::AuthenticationFailed,
                        "Redis refused the connection's setup",
                        format!("{command}: {}", e.detail().unwrap_or(&e.to_string())),
                    )));
                }
            }
        }
        Ok(c)
    }

    /// Writes `bytes`, reading (into `replies`) whatever replies arrive while
    /// the socket is full: the number of replies read.
    pub(super) async fn send(
        &mut self,
        bytes: &[u8],
        replies: &mut impl Replies,
    ) -> Result<usize, RedisError> {
        let (mut at, mut read) = (0, 0);
        while at < bytes.len() {
            match self.stream.try_write(&bytes[at..]) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let ready = within(
                        self.timeout,
                        self.stream.ready(Interest::READABLE | Interest::WRITABLE),
                    )
                    .await??;
                    if ready.is_readable() {
                        read += self.read_some(replies)?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(read)
    }

    /// Reads until `n` more replies have come (or more: those of later
    /// commands that came with them).
    pub(super) async fn wait(
        &mut self,
        n: usize,
        replies: &mut impl Replies,
    ) -> Result<(), RedisError> {
        let mut read = 0;
        while read < n {
            read += self.take(replies)?;
            if read >= n {
                break;
            }
            within(self.timeout, self.stream.ready(Interest::READABLE)).await??;
            read += self.read_some(replies)?;
        }
        Ok(())
    }

    /// Reads what the socket holds and takes the replies complete in it.
    fn read_some(&mut self, replies: &mut impl Replies) -> Result<usize, RedisError> {
        if self.start > 0 {
            self.read.drain(..self.start);
            self.start = 0;
        }
        let len = self.read.len();
        if self.read.capacity() - len < 4096 {
            self.read.reserve(16 * 1024);
        }
        self.read.resize(self.read.capacity(), 0);
        let got = self.stream.try_read(&mut self.read[len..]);
        self.read.truncate(len + *got.as_ref().unwrap_or(&0));
        match got {
            Ok(0) => Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(_) => self.take(replies),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes the replies complete in the buffer.
    fn take(&mut self, replies: &mut impl Replies) -> Result<usize, RedisError> {
        let mut n = 0;
        while let Some((len, error)) = reply(&self.read[self.start..], 0)? {
            let text = &self.read[self.start..self.start + len];
            replies.reply(error.then(|| server_error(text)));
            self.start += len;
            n += 1;
        }
        Ok(n)
    }
}

/// The handshake's answers.
struct Handshake(Vec<Option<RedisError>>);

impl Replies for Handshake {
    fn reply(&mut self, refused: Option<RedisError>) {
        self.0.push(refused);
    }
}

/// `future` within `timeout`: a timeout is an I/O error the sink retries.
async fn within<F: Future>(timeout: Duration, future: F) -> io::Result<F::Output> {
    tokio::time::timeout(timeout, future)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "Redis did not answer in time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(buf: &[u8]) -> Result<Option<(usize, bool)>, RedisError> {
        reply(buf, 0)
    }

    #[test]
    fn replies_are_measured_whole_or_not_at_all() {
        assert_eq!(parsed(b"+OK\r\n:1").ok().flatten(), Some((5, false)));
        assert_eq!(parsed(b":12\r\n").ok().flatten(), Some((5, false)));
        assert_eq!(parsed(b"-WRONGTYPE x\r\n").ok().flatten(), Some((14, true)));
        assert_eq!(parsed(b"$3\r\nabc\r\n+").ok().flatten(), Some((9, false)));
        assert_eq!(parsed(b"$-1\r\n").ok().flatten(), Some((5, false)));
        assert_eq!(
            parsed(b"*2\r\n:1\r\n$1\r\nx\r\n").ok().flatten(),
            Some((15, false))
        );
        assert_eq!(parsed(b"*-1\r\n").ok().flatten(), Some((5, false)));
        for partial in [
            &b""[..],
            b"+OK",
            b"+OK\r",
            b"$3\r\nab",
            b"$3\r\nabc\r",
            b"*2\r\n:1\r\n",
        ] {
            assert!(matches!(parsed(partial), Ok(None)), "{partial:?}");
        }
        for bad in [
            &b"?x\r\n"[..],
            b"+OK\n",
            b"$x\r\n",
            b"$3\r\nabcd\r\n",
            b"\n",
        ] {
            assert!(parsed(bad).is_err(), "{bad:?}");
        }
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1) + ":1\r\n";
        assert!(parsed(deep.as_bytes()).is_err());
    }

    #[test]
    fn error_replies_become_the_crates_errors() {
        let e =
            server_error(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
        assert_eq!(e.code(), Some("WRONGTYPE"));
        let e = server_error(b"-LOADING Redis is loading the dataset in memory\r\n");
        assert_eq!(e.code(), Some("LOADING"));
    }

    #[test]
    fn commands_are_encoded_as_resp_arrays() {
        let mut buf = Vec::new();
        encode(&mut buf, &[b"SET", b"k", b""]);
        assert_eq!(buf, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }
}
