//! The admin HTTP endpoint (`[admin]` in the pipeline file, off by default):
//! `/metrics` (Prometheus), `/healthz`, `/readyz`, `/status.json` and the live
//! status page at `/`.
//!
//! It is served by `tiny_http` on its own thread: a few small dependencies
//! that compile in seconds, and no coupling to the pipeline's tokio runtime
//! (the server starts before the runtime and before the plugins are
//! compiled, so `/healthz` answers and `/readyz` says "not yet" during
//! start-up, and it can outlive the pipeline for `linger_secs`).

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
}

impl AdminConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        self.socket_addr().map(|_| ())?;
        if self.linger_secs > 3600 {
            return Err(FieldError::new("linger_secs", "must be at most 3600"));
        }
        Ok(())
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
        let addr = config.socket_addr().map_err(AdminError::Config)?;
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

    /// Keeps serving for `linger_secs` (not ready), then stops.
    pub fn finish(mut self) {
        self.set_ready(false);
        if !self.linger.is_zero() {
            tracing::info!(secs = self.linger.as_secs(), "admin endpoint lingering");
            std::thread::sleep(self.linger);
        }
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

fn respond(state: &State, request: tiny_http::Request) {
    let path = request.url().split('?').next().unwrap_or("/").to_string();
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
        };
        assert!(ok.validate().is_ok());
        let bad = AdminConfig {
            address: "localhost".into(),
            ..ok.clone()
        };
        assert_eq!(
            bad.validate().map_err(|e| e.field()),
            Err("address".to_owned())
        );
        let long = AdminConfig {
            linger_secs: 4000,
            ..ok
        };
        assert_eq!(
            long.validate().map_err(|e| e.field()),
            Err("linger_secs".to_owned())
        );
    }
}
