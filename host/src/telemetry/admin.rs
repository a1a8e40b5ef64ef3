//! The admin HTTP endpoint (`[admin]` in the pipeline file, off by default):
//! `/metrics` (Prometheus), `/healthz`, `/readyz`, `/status.json` and the live
//! status page at `/`.
//!
//! It is served by `tiny_http` on its own thread: a few small dependencies
//! that compile in seconds, and no coupling to the pipeline's tokio runtime
//! (the server starts before the runtime and before the plugins are
//! compiled, so `/healthz` answers and `/readyz` says "not yet" during
//! start-up, and it can outlive the pipeline for `linger_secs`).
//!
//! Who may ask: with `token` set, every request needs `Authorization: Bearer
//! <token>` (401 otherwise), except `/metrics`, `/healthz` and `/readyz` when
//! `public_metrics = true`. Listening on anything but loopback requires a
//! token. A request that would change state (any method but GET/HEAD) needs
//! the token even on loopback, and is refused (403) when none is set.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::metrics::{Live, Metrics};
use super::status::StatusDoc;
use crate::validate::FieldError;

/// `[admin]`: the admin HTTP endpoint.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `host:port` to listen on, e.g. `"127.0.0.1:9898"` (port 0: any free
    /// port, logged at start). Required.
    pub address: String,
    /// After the pipeline finished (input exhausted or signal), keep serving
    /// this many seconds so a scraper collects the final numbers (`/readyz`
    /// answers 503 meanwhile). Default 0.
    #[serde(default)]
    pub linger_secs: u64,
    /// The bearer token requests must carry: `"env:NAME"` reads it from the
    /// environment variable `NAME` at start-up (recommended), anything else
    /// is the token itself. Required when `address` is not a loopback
    /// address. Never logged or shown.
    #[serde(default)]
    pub token: Option<TokenSetting>,
    /// `/metrics`, `/healthz` and `/readyz` answer without the token (for
    /// scrapers and probes that cannot send one). Default false.
    #[serde(default)]
    pub public_metrics: bool,
}

/// `[admin] token` as written (`env:NAME` or the token); its `Debug` shows
/// only the variable's name.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct TokenSetting(pub String);

impl std::fmt::Debug for TokenSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.strip_prefix("env:") {
            Some(var) => write!(f, "env:{var}"),
            None => f.write_str("<redacted>"),
        }
    }
}

/// The admin token, resolved; its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Compares in time independent of where the first difference is.
    fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        let mut diff = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }
}

impl AdminConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        let addr = self.socket_addr()?;
        if self.linger_secs > 3600 {
            return Err(FieldError::new("linger_secs", "must be at most 3600"));
        }
        let token = self.resolve_token()?;
        if token.is_none() && !addr.ip().is_loopback() {
            return Err(FieldError::new(
                "token",
                format!(
                    "required when listening on {} (not a loopback address): set \
                     token = \"env:WEIR_ADMIN_TOKEN\" and export that variable, or \
                     listen on 127.0.0.1",
                    self.address
                ),
            ));
        }
        Ok(())
    }

    /// The token, read from the environment for `env:NAME`.
    fn resolve_token(&self) -> Result<Option<Token>, FieldError> {
        let Some(TokenSetting(raw)) = &self.token else {
            return Ok(None);
        };
        let value = match raw.strip_prefix("env:") {
            Some(var) => std::env::var(var).map_err(|_| {
                FieldError::new(
                    "token",
                    format!("the environment variable `{var}` is not set"),
                )
            })?,
            None => raw.clone(),
        };
        if value.trim().len() < 16 {
            return Err(FieldError::new(
                "token",
                "must be at least 16 characters (a random string)",
            ));
        }
        Ok(Some(Token(value.trim().to_owned())))
    }

    fn socket_addr(&self) -> Result<SocketAddr, FieldError> {
        self.address.parse().map_err(|e| {
            FieldError::new(
                "address",
                format!("`{}` is not host:port ({e})", self.address),
            )
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin.address: cannot listen on {address}: {reason}")]
    Bind { address: String, reason: String },
    #[error("admin.{0}")]
    Config(FieldError),
    #[error("cannot start the admin thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// What the server reads; filled in as the pipeline comes up.
struct State {
    token: Option<Token>,
    public_metrics: bool,
    started: Instant,
    ready: AtomicBool,
    metrics: OnceLock<Metrics>,
    live: OnceLock<Live>,
}

/// Flips `/readyz`.
#[derive(Clone)]
pub struct Readiness(Arc<State>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        if self.0.ready.swap(ready, Relaxed) != ready {
            tracing::info!(ready, "readiness changed");
        }
    }
}

/// A running admin server; stops when dropped.
pub struct Admin {
    state: Arc<State>,
    server: Arc<tiny_http::Server>,
    address: SocketAddr,
    linger: Duration,
    thread: Option<std::thread::JoinHandle<()>>,
}

const PAGE: &str = include_str!("page/index.html");

impl Admin {
    /// Listens and serves on a thread of its own; not ready until
    /// [`Admin::set_ready`].
    pub fn start(config: &AdminConfig) -> Result<Self, AdminError> {
        config.validate().map_err(AdminError::Config)?;
        let addr = config.socket_addr().map_err(AdminError::Config)?;
        let token = config.resolve_token().map_err(AdminError::Config)?;
        let server = tiny_http::Server::http(addr).map_err(|e| AdminError::Bind {
            address: config.address.clone(),
            reason: e.to_string(),
        })?;
        let address = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| AdminError::Bind {
                address: config.address.clone(),
                reason: "not an IP socket".into(),
            })?;
        let server = Arc::new(server);
        let state = Arc::new(State {
            token,
            public_metrics: config.public_metrics,
            started: Instant::now(),
            ready: AtomicBool::new(false),
            metrics: OnceLock::new(),
            live: OnceLock::new(),
        });
        let thread = {
            let (server, state) = (server.clone(), state.clone());
            std::thread::Builder::new()
                .name("weir-admin".into())
                .spawn(move || {
                    for request in server.incoming_requests() {
                        respond(&state, request);
                    }
                })?
        };
        tracing::info!(address = %address, "admin endpoint listening (/metrics /healthz /readyz /status.json /)");
        Ok(Self {
            state,
            server,
            address,
            linger: Duration::from_secs(config.linger_secs),
            thread: Some(thread),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves `metrics` and the status built from `live` from now on (once).
    pub fn publish(&self, metrics: Metrics, live: Live) {
        let _ = self.state.metrics.set(metrics);
        let _ = self.state.live.set(live);
    }

    pub fn set_ready(&self, ready: bool) {
        self.readiness().set(ready);
    }

    /// A handle that flips `/readyz` (cheap to clone, `Send`).
    pub fn readiness(&self) -> Readiness {
        Readiness(self.state.clone())
    }

    /// How long the endpoint should stay up after the pipeline ended
    /// (`linger_secs`); the caller waits, so that a signal can cut it short.
    pub fn linger(&self) -> Duration {
        self.linger
    }

    /// Not ready, then stops serving.
    pub fn finish(mut self) {
        self.set_ready(false);
        self.stop();
    }

    fn stop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.stop();
    }
}

fn header(name: &str, value: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

/// Whether `request` may be answered: `Err((status, message))` if not.
fn authorize(state: &State, request: &tiny_http::Request, path: &str) -> Result<(), (u16, String)> {
    let reading = matches!(
        request.method(),
        tiny_http::Method::Get | tiny_http::Method::Head
    );
    let Some(token) = &state.token else {
        return if reading {
            Ok(())
        } else {
            Err((403, "state-changing requests need [admin] token\n".into()))
        };
    };
    // The page itself is static (it fetches /status.json with the token).
    if reading && matches!(path, "/" | "/index.html") {
        return Ok(());
    }
    if reading && state.public_metrics && matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return Ok(());
    }
    let presented = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .and_then(|h| h.value.as_str().strip_prefix("Bearer "));
    match presented {
        Some(p) if token.matches(p.trim()) => Ok(()),
        _ => Err((
            401,
            "unauthorized: send Authorization: Bearer <admin token>\n".into(),
        )),
    }
}

fn respond(state: &State, request: tiny_http::Request) {
    let path = request.url().split('?').next().unwrap_or("/").to_string();
    if let Err((code, body)) = authorize(state, &request, &path) {
        let mut response = tiny_http::Response::from_string(body).with_status_code(code);
        if code == 401
            && let Some(h) = header("WWW-Authenticate", "Bearer")
        {
            response.add_header(h);
        }
        if let Err(e) = request.respond(response) {
            tracing::debug!(error = %e, path, "admin response not sent");
        }
        return;
    }
    let (code, content_type, body): (u16, &str, String) = match (request.method(), path.as_str()) {
        (tiny_http::Method::Get, "/healthz") => (200, "text/plain", "ok\n".into()),
        (tiny_http::Method::Get, "/readyz") => {
            if state.ready.load(Relaxed) {
                (200, "text/plain", "ready\n".into())
            } else {
                (503, "text/plain", "not ready\n".into())
            }
        }
        (tiny_http::Method::Get, "/metrics") => match state.metrics.get().map(Metrics::encode) {
            Some(Ok(text)) => (
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            ),
            Some(Err(_)) => (500, "text/plain", "encoding the metrics failed\n".into()),
            None => (503, "text/plain", "starting\n".into()),
        },
        (tiny_http::Method::Get, "/status.json") => match state.live.get() {
            Some(live) => {
                let doc = StatusDoc::build(
                    live,
                    state.ready.load(Relaxed),
                    state.started.elapsed().as_secs_f64(),
                );
                match serde_json::to_string(&doc) {
                    Ok(json) => (200, "application/json", json),
                    Err(e) => (500, "text/plain", format!("{e}\n")),
                }
            }
            None => (503, "application/json", r#"{"starting":true}"#.into()),
        },
        (tiny_http::Method::Get, "/") | (tiny_http::Method::Get, "/index.html") => {
            (200, "text/html; charset=utf-8", PAGE.into())
        }
        _ => (404, "text/plain", "not found\n".into()),
    };
    let mut response = tiny_http::Response::from_string(body).with_status_code(code);
    for h in [
        header("Content-Type", content_type),
        header("Cache-Control", "no-store"),
    ]
    .into_iter()
    .flatten()
    {
        response.add_header(h);
    }
    if let Err(e) = request.respond(response) {
        tracing::debug!(error = %e, path, "admin response not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_field() {
        let ok = AdminConfig {
            address: "127.0.0.1:0".into(),
            linger_secs: 0,
            token: None,
            public_metrics: false,
        };
        assert!(ok.validate().is_ok());
        let token = |t: &str| Some(TokenSetting(t.into()));
        let refused = [
            (
                "address",
                AdminConfig {
                    address: "localhost".into(),
                    ..ok.clone()
                },
            ),
            (
                "linger_secs",
                AdminConfig {
                    linger_secs: 4000,
                    ..ok.clone()
                },
            ),
            (
                "token",
                AdminConfig {
                    address: "0.0.0.0:0".into(),
                    ..ok.clone()
                },
            ),
            (
                "token",
                AdminConfig {
                    token: token("abc"),
                    ..ok.clone()
                },
            ),
        ];
        for (field, config) in refused {
            assert_eq!(
                config.validate().map_err(|e| e.field()),
                Err(field.to_owned())
            );
        }
        let unset = AdminConfig {
            token: token("env:WEIR_TEST_SURELY_UNSET_VARIABLE"),
            ..ok.clone()
        };
        let err = unset.validate().expect_err("unset");
        assert!(err.to_string().contains("WEIR_TEST_SURELY_UNSET_VARIABLE"));
        let guarded = AdminConfig {
            address: "0.0.0.0:0".into(),
            token: token("a-long-enough-random-token"),
            ..ok
        };
        assert!(guarded.validate().is_ok());
        assert!(!format!("{:?}", guarded.resolve_token()).contains("a-long-enough"));
        assert!(!format!("{guarded:?}").contains("a-long-enough"));
    }

    #[test]
    fn tokens_compare_whole() {
        let t = Token("0123456789abcdef".into());
        assert!(t.matches("0123456789abcdef"));
        assert!(!t.matches("0123456789abcde"));
        assert!(!t.matches("0123456789abcdefX"));
        assert!(!t.matches(""));
    }
}
