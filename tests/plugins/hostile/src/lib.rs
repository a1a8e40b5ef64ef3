//! Test plugin `hostile`: misbehaves on purpose, so the host's sandbox can be
//! tested with real pipelines.
//!
//! Params: `{"mode": "<mode>", "sleep_ms": 50, "work": 10000}` (`sleep_ms`
//! is optional and used by `slow` only; `work` by `busy` only). An unknown mode or field refuses the plugin at init.
//!
//! The "bomb" modes pass every event through unchanged except the *triggered*
//! ones (a JSON object with `"trigger": true`), on which they misbehave:
//!
//! | mode | on a triggered event |
//! |---|---|
//! | `loop` | spins forever |
//! | `memory` | allocates (and touches) 1 MiB blocks forever |
//! | `recursion` | recurses without bound with large native frames: wasmtime's stack overflow |
//! | `deep-recursion` | recurses without bound with a buffer on the plugin's own (linear-memory) stack: it runs off the bottom of that stack |
//! | `panic` | `panic!("boom on id <id>")` |
//! | `huge-output` | returns the event with a 32 MiB value |
//!
//! The other modes act on every event:
//!
//! | mode | what it does |
//! |---|---|
//! | `slow` | sleeps `sleep_ms` milliseconds, passes the event through |
//! | `busy` | computes `work` rounds of a hash over the value (CPU, no sleep), header `work` = the result |
//! | `panic-init` | panics in `init` (events pass through if it ever runs) |
//! | `fs` | performs the event's `op` (`read`, `write`, `list`, `symlink-read`) on its `path` |
//! | `net` | opens a TCP connection to the event's `addr` |
//! | `env` | reads the environment variable named by the event's `var` |
//! | `stdio` | prints a line to stdout and one to stderr, passes the event through |
//!
//! `fs`, `net` and `env` never fail an event: the outcome is the header
//! `result`, `ok:<detail>` or `err:<detail>`, so a test reads it from the
//! output. For `fs`:
//! - `read`: `ok:<content>` of the file at `path`;
//! - `write`: writes the event's `content` (default `written by hostile`) to
//!   `path`, `ok:<bytes written>`;
//! - `list`: `ok:<number of entries>` of the folder at `path`;
//! - `symlink-read`: reads the symbolic link at `path` (its target goes to the
//!   header `link`, `ok:<target>` or `err:...`), then the file it points to,
//!   `ok:<content>`.

use std::hint::black_box;
use std::time::Duration;

use weir_sdk::serde_json::{Map, Value};
use weir_sdk::{Event, Result};

/// How the plugin misbehaves.
#[derive(serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Triggered events: an infinite loop.
    Loop,
    /// Triggered events: unbounded allocation.
    Memory,
    /// Triggered events: unbounded recursion (stack overflow).
    Recursion,
    /// Triggered events: unbounded recursion that exhausts the plugin's
    /// shadow stack in linear memory (what most recursive Rust code does).
    DeepRecursion,
    /// Triggered events: a panic.
    Panic,
    /// Triggered events: a 32 MiB output value.
    HugeOutput,
    /// Every event: sleep `sleep_ms`.
    Slow,
    /// Every event: `work` rounds of CPU work.
    Busy,
    /// A panic in `init`.
    PanicInit,
    /// Every event: a file-system operation, outcome in header `result`.
    Fs,
    /// Every event: a TCP connection attempt, outcome in header `result`.
    Net,
    /// Every event: an environment variable read, outcome in header `result`.
    Env,
    /// Every event: a line on stdout and one on stderr.
    Stdio,
}

/// The stage params.
#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// What to do.
    pub mode: Mode,
    /// Milliseconds `slow` sleeps per event.
    #[serde(default = "default_sleep_ms")]
    pub sleep_ms: u64,
    /// Rounds of work `busy` does per event.
    #[serde(default = "default_work")]
    pub work: u32,
}

fn default_work() -> u32 {
    10_000
}

fn default_sleep_ms() -> u64 {
    50
}

/// Size of the value `huge-output` returns.
pub const HUGE_OUTPUT_BYTES: usize = 32 << 20;

/// Panics in `panic-init` mode.
#[weir_sdk::init]
fn init(params: Params) -> Result<()> {
    if params.mode == Mode::PanicInit {
        panic!("hostile: panic in init, as asked (mode panic-init)");
    }
    Ok(())
}

/// Passes events through, misbehaving as `params.mode` says.
#[weir_sdk::map]
pub fn hostile(mut ev: Event, params: &Params) -> Result<Event> {
    let fields = json_fields(&ev);
    let triggered = fields
        .as_ref()
        .is_some_and(|f| f.get("trigger") == Some(&Value::Bool(true)));
    let id = fields
        .as_ref()
        .and_then(|f| f.get("id"))
        .map_or_else(|| "?".to_owned(), Value::to_string);
    match params.mode {
        Mode::Loop if triggered => spin_forever(),
        Mode::Memory if triggered => hoard_memory_forever(),
        Mode::Recursion if triggered => {
            let depth = recurse(black_box(0));
            // Never reached: the recursion has no end.
            ev.set_header("depth", depth.to_string());
        }
        Mode::DeepRecursion if triggered => {
            let depth = recurse_in_memory(black_box(0));
            // Never reached: the recursion has no end.
            ev.set_header("depth", depth.to_string());
        }
        Mode::Panic if triggered => panic!("boom on id {id}"),
        Mode::HugeOutput if triggered => ev.set_value(vec![b'x'; HUGE_OUTPUT_BYTES]),
        Mode::Slow => std::thread::sleep(Duration::from_millis(params.sleep_ms)),
        Mode::Busy => {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for _ in 0..params.work {
                for &b in ev.value() {
                    h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
                h = black_box(h);
            }
            ev.set_header("work", h.to_string());
        }
        Mode::Fs => {
            let outcome = match &fields {
                Some(f) => fs_op(f, &mut ev),
                None => Err("event value is not a JSON object".to_owned()),
            };
            ev.set_header("result", render(outcome));
        }
        Mode::Net => {
            let outcome = string_field(fields.as_ref(), "addr").and_then(|addr| {
                std::net::TcpStream::connect(addr.as_str())
                    .map(|stream| match stream.peer_addr() {
                        Ok(peer) => format!("connected to {peer}"),
                        Err(_) => "connected".to_owned(),
                    })
                    .map_err(io_error)
            });
            ev.set_header("result", render(outcome));
        }
        Mode::Env => {
            let outcome = string_field(fields.as_ref(), "var").and_then(|var| {
                std::env::var(&var).map_err(|e| match e {
                    std::env::VarError::NotPresent => "absent".to_owned(),
                    std::env::VarError::NotUnicode(_) => "not unicode".to_owned(),
                })
            });
            ev.set_header("result", render(outcome));
        }
        Mode::Stdio => {
            println!("stdout line {id}");
            eprintln!("stderr line {id}");
        }
        _ => {}
    }
    Ok(ev)
}

/// The event's value as a JSON object, if it is one.
fn json_fields(ev: &Event) -> Option<Map<String, Value>> {
    match ev.json::<Value>() {
        Ok(Value::Object(fields)) => Some(fields),
        _ => None,
    }
}

fn string_field(fields: Option<&Map<String, Value>>, name: &str) -> Result<String, String> {
    fields
        .and_then(|f| f.get(name))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("the event has no string field `{name}`"))
}

fn io_error(e: std::io::Error) -> String {
    format!("{:?}: {e}", e.kind())
}

fn render(outcome: Result<String, String>) -> String {
    match outcome {
        Ok(detail) => format!("ok:{detail}"),
        Err(detail) => format!("err:{detail}"),
    }
}

/// Performs the event's file-system `op` on its `path`.
fn fs_op(fields: &Map<String, Value>, ev: &mut Event) -> Result<String, String> {
    let op = string_field(Some(fields), "op")?;
    let path = string_field(Some(fields), "path")?;
    match op.as_str() {
        "read" => std::fs::read_to_string(&path).map_err(io_error),
        "write" => {
            let content = fields
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or("written by hostile");
            std::fs::write(&path, content)
                .map(|()| content.len().to_string())
                .map_err(io_error)
        }
        "list" => std::fs::read_dir(&path)
            .map(|entries| entries.count().to_string())
            .map_err(io_error),
        "symlink-read" => {
            let link = std::fs::read_link(&path)
                .map(|target| target.display().to_string())
                .map_err(io_error);
            ev.set_header("link", render(link));
            std::fs::read_to_string(&path).map_err(io_error)
        }
        other => Err(format!(
            "unknown op {other:?}: expected read, write, list or symlink-read"
        )),
    }
}

/// Spins until the host interrupts the call.
fn spin_forever() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Allocates 1 MiB blocks, writing to every page of each, until the host
/// refuses to grow the memory.
fn hoard_memory_forever() -> ! {
    const BLOCK: usize = 1 << 20;
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; BLOCK];
        for (i, byte) in block.iter_mut().enumerate().step_by(4096) {
            *byte = i as u8 | 1;
        }
        hoard.push(black_box(block));
        black_box(&hoard);
    }
}

/// Recurses without end. Every frame keeps several values alive across the
/// recursive call, so the frames are large on the (native) call stack.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let a = black_box(depth.wrapping_mul(3));
    let b = black_box(depth.wrapping_add(7));
    let c = black_box(depth ^ 0x5555);
    let d = black_box(depth.rotate_left(9));
    let deeper = if black_box(true) {
        recurse(black_box(depth + 1))
    } else {
        0
    };
    black_box(deeper.wrapping_add(a).wrapping_add(b) ^ c ^ d)
}

/// Recurses without end, each frame holding a buffer whose address escapes,
/// so it lives on the plugin's stack in linear memory (1 MiB), which runs out
/// long before wasmtime's native stack does.
#[inline(never)]
fn recurse_in_memory(depth: u64) -> u64 {
    let mut buf = [0u8; 4096];
    buf[(depth % 4096) as usize] = depth as u8;
    black_box(&mut buf);
    let deeper = if black_box(true) {
        recurse_in_memory(black_box(depth + 1))
    } else {
        0
    };
    deeper.wrapping_add(u64::from(buf[black_box(7)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> std::result::Result<Params, String> {
        weir_sdk::serde_json::from_str(json).map_err(|e| e.to_string())
    }

    fn mode(mode: Mode) -> Params {
        Params {
            mode,
            sleep_ms: 1,
            work: 1,
        }
    }

    #[test]
    fn params_parse() {
        let p = params(r#"{"mode": "loop"}"#).unwrap();
        assert_eq!(p.mode, Mode::Loop);
        assert_eq!(p.sleep_ms, 50);
        let p = params(r#"{"mode": "slow", "sleep_ms": 20}"#).unwrap();
        assert_eq!((p.mode, p.sleep_ms), (Mode::Slow, 20));
        for (name, expected) in [
            ("memory", Mode::Memory),
            ("recursion", Mode::Recursion),
            ("deep-recursion", Mode::DeepRecursion),
            ("panic", Mode::Panic),
            ("huge-output", Mode::HugeOutput),
            ("panic-init", Mode::PanicInit),
            ("fs", Mode::Fs),
            ("net", Mode::Net),
            ("env", Mode::Env),
            ("stdio", Mode::Stdio),
        ] {
            let p = params(&format!(r#"{{"mode": "{name}"}}"#)).unwrap();
            assert_eq!(p.mode, expected, "{name}");
        }
    }

    #[test]
    fn bad_params_are_refused() {
        let err = params(r#"{"mode": "explode"}"#).unwrap_err();
        assert!(err.contains("unknown variant `explode`"), "{err}");
        let err = params(r#"{"mode": "loop", "speed": 3}"#).unwrap_err();
        assert!(err.contains("unknown field `speed`"), "{err}");
        let err = params("{}").unwrap_err();
        assert!(err.contains("missing field `mode`"), "{err}");
    }

    #[test]
    fn init_passes_unless_panic_init() {
        assert!(init(mode(Mode::Loop)).is_ok());
        assert!(init(mode(Mode::Fs)).is_ok());
        let panicked = std::panic::catch_unwind(|| init(mode(Mode::PanicInit)));
        assert!(panicked.is_err());
    }

    #[test]
    fn untriggered_events_pass_through_unchanged() {
        let values = [
            r#"{"id": 1}"#,
            r#"{"id": 2, "trigger": false}"#,
            r#"{"id": 3, "trigger": "yes"}"#,
            "not json",
            "[true]",
        ];
        for m in [
            Mode::Loop,
            Mode::Memory,
            Mode::Recursion,
            Mode::Panic,
            Mode::HugeOutput,
            Mode::PanicInit,
            Mode::Slow,
            Mode::Stdio,
        ] {
            for value in values {
                let ev = Event::new(value).with_header("h", "v");
                let out = hostile(ev.clone(), &mode(m)).unwrap();
                assert_eq!(out, ev, "{m:?} changed {value}");
            }
        }
    }

    #[test]
    fn triggered_panic_names_the_id() {
        let panicked = std::panic::catch_unwind(|| {
            hostile(
                Event::new(r#"{"id": 517, "trigger": true}"#),
                &mode(Mode::Panic),
            )
        });
        let payload = panicked.unwrap_err();
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert_eq!(message, "boom on id 517");
    }

    #[test]
    fn triggered_huge_output_is_32_mib() {
        let out = hostile(
            Event::new(r#"{"id": 1, "trigger": true}"#),
            &mode(Mode::HugeOutput),
        )
        .unwrap();
        assert_eq!(out.value().len(), HUGE_OUTPUT_BYTES);
    }

    #[test]
    fn slow_sleeps() {
        let started = std::time::Instant::now();
        let p = Params {
            mode: Mode::Slow,
            sleep_ms: 30,
            work: 1,
        };
        hostile(Event::new(r#"{"id": 1}"#), &p).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    fn result(m: Mode, value: &Value) -> String {
        let ev = Event::from_json(value).unwrap();
        let out = hostile(ev, &mode(m)).unwrap();
        out.header_str("result").expect("result header").to_owned()
    }

    #[test]
    fn fs_reports_outcomes_in_a_header() {
        use weir_sdk::serde_json::json;
        let dir = std::env::temp_dir().join(format!("hostile-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f.txt");
        let file_path = file.to_str().unwrap();

        let written = result(
            Mode::Fs,
            &json!({"op": "write", "path": file_path, "content": "hello"}),
        );
        assert_eq!(written, "ok:5");
        assert_eq!(
            result(Mode::Fs, &json!({"op": "read", "path": file_path})),
            "ok:hello"
        );
        assert_eq!(
            result(
                Mode::Fs,
                &json!({"op": "list", "path": dir.to_str().unwrap()})
            ),
            "ok:1"
        );
        let missing = result(
            Mode::Fs,
            &json!({"op": "read", "path": dir.join("nope").to_str().unwrap()}),
        );
        assert!(missing.starts_with("err:NotFound"), "{missing}");
        let not_a_link = hostile(
            Event::from_json(&json!({"op": "symlink-read", "path": file_path})).unwrap(),
            &mode(Mode::Fs),
        )
        .unwrap();
        assert!(not_a_link.header_str("link").unwrap().starts_with("err:"));
        assert_eq!(not_a_link.header_str("result"), Some("ok:hello"));
        let unknown = result(Mode::Fs, &json!({"op": "chmod", "path": file_path}));
        assert!(unknown.starts_with("err:unknown op"), "{unknown}");
        assert!(result(Mode::Fs, &json!({"op": "read"})).starts_with("err:"));
        std::fs::remove_dir_all(&dir).unwrap();

        let ev = hostile(Event::new("not json"), &mode(Mode::Fs)).unwrap();
        assert_eq!(
            ev.header_str("result"),
            Some("err:event value is not a JSON object")
        );
    }

    #[test]
    fn env_reports_outcomes_in_a_header() {
        use weir_sdk::serde_json::json;
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            result(Mode::Env, &json!({"var": "PATH"})),
            format!("ok:{path}")
        );
        assert_eq!(
            result(Mode::Env, &json!({"var": "HOSTILE_SURELY_NOT_SET_1234"})),
            "err:absent"
        );
        assert!(result(Mode::Env, &json!({"id": 1})).starts_with("err:the event has no"));
    }

    #[test]
    fn net_reports_outcomes_in_a_header() {
        use weir_sdk::serde_json::json;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let ok = result(Mode::Net, &json!({"addr": addr}));
        assert_eq!(ok, format!("ok:connected to {addr}"));
        let bad = result(Mode::Net, &json!({"addr": "not an address"}));
        assert!(bad.starts_with("err:"), "{bad}");
    }
}
