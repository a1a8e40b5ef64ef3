//! A small real HTTP/1.1 server for the http sink's tests: it records every
//! request and answers as told (200, a status with a body and `Retry-After`,
//! stalled: requests are held unanswered until released, or down: nothing
//! listens on its port). (`host/benches/sinks.rs` uses this
//! file too.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the receiver answers the next requests.
#[derive(Clone, Debug)]
pub enum Answer {
    Ok,
    /// `status`, an optional `Retry-After` (seconds), a body.
    Status(u16, Option<u64>, String),
}

#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body's JSON values (a JSON array, NDJSON or one value).
    pub fn values(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8_lossy(&self.body);
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Array(a)) => a,
            Ok(v) => vec![v],
            Err(_) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).expect("an NDJSON line"))
                .collect(),
        }
    }
}

struct State {
    /// Answers for the next requests, in order; then `fallback`.
    script: Vec<Answer>,
    fallback: Answer,
    received: Vec<Received>,
}

pub struct Receiver {
    pub port: u16,
    state: Arc<Mutex<State>>,
    /// While set, requests are read and held, unanswered.
    stall: Arc<AtomicBool>,
    /// Requests held unanswered right now.
    held: Arc<std::sync::atomic::AtomicUsize>,
    running: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

impl Receiver {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut r = Self {
            port,
            state: Arc::new(Mutex::new(State {
                script: Vec::new(),
                fallback: Answer::Ok,
                received: Vec::new(),
            })),
            stall: Arc::default(),
            held: Arc::default(),
            running: None,
        };
        r.up();
        r
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers the next requests with `answers`, then with `fallback`.
    pub fn answer(&self, answers: Vec<Answer>, fallback: Answer) {
        let mut s = self.state.lock().expect("state");
        s.script = answers;
        s.fallback = fallback;
    }

    /// Holds the next requests unanswered (`true`) until released
    /// (`false`); a request is recorded in [`Receiver::received`] when it is
    /// answered.
    pub fn stall(&self, stall: bool) {
        self.stall.store(stall, Ordering::SeqCst);
    }

    /// The switch [`Receiver::stall`] sets, for a thread that toggles it.
    pub fn stall_switch(&self) -> Arc<AtomicBool> {
        self.stall.clone()
    }

    /// Requests held unanswered right now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("state").received.clone()
    }

    /// Listens (again) on its port.
    pub fn up(&mut self) {
        assert!(self.running.is_none(), "receiver already up");
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let hold = Hold {
            stall: self.stall.clone(),
            held: self.held.clone(),
        };
        let (state, flag) = (self.state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (state, flag, hold) = (state.clone(), flag.clone(), hold.clone());
                std::thread::spawn(move || serve(conn, &state, &flag, &hold));
            }
        });
        self.running = Some((stop, thread));
    }

    /// Stops listening and drops open connections: the endpoint is down.
    pub fn down(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            let _ = thread.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}

/// The stall switch and the count of requests it holds.
#[derive(Clone)]
struct Hold {
    stall: Arc<AtomicBool>,
    held: Arc<std::sync::atomic::AtomicUsize>,
}

impl Hold {
    /// Waits while stalled; `false` if the receiver went down meanwhile.
    fn wait(&self, down: &AtomicBool) -> bool {
        if !self.stall.load(Ordering::SeqCst) {
            return true;
        }
        self.held.fetch_add(1, Ordering::SeqCst);
        while self.stall.load(Ordering::SeqCst) && !down.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.held.fetch_sub(1, Ordering::SeqCst);
        !down.load(Ordering::SeqCst)
    }
}

/// One connection: requests until it closes (keep-alive), or the receiver
/// goes down.
fn serve(conn: TcpStream, state: &Mutex<State>, down: &AtomicBool, hold: &Hold) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut writer = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if down.load(Ordering::SeqCst) {
                    return;
                }
                continue;
            }
            Err(_) => return,
        }
        if line.trim().is_empty() {
            continue;
        }
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        let mut got = 0;
        while got < len {
            match reader.read(&mut body[got..]) {
                Ok(0) => return,
                Ok(n) => got += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
        if !hold.wait(down) || down.load(Ordering::SeqCst) {
            return; // gone: the client sees the connection close
        }
        let answer = {
            let mut s = state.lock().expect("state");
            let answer = if s.script.is_empty() {
                s.fallback.clone()
            } else {
                s.script.remove(0)
            };
            let status = match &answer {
                Answer::Ok => 200,
                Answer::Status(code, ..) => *code,
            };
            s.received.push(Received {
                at: Instant::now(),
                headers,
                body,
                status,
            });
            answer
        };
        let (status, retry_after, text) = match answer {
            Answer::Ok => (200, None, "ok".to_owned()),
            Answer::Status(code, retry, text) => (code, retry, text),
        };
        let mut response = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n",
            text.len()
        );
        if let Some(secs) = retry_after {
            response.push_str(&format!("Retry-After: {secs}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&text);
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
