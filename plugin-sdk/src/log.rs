//! Logging into the host's log (tagged there with the stage and plugin name).
//!
//! ```ignore
//! use weir_sdk::log;
//! log::info!("threshold is {}", params.threshold);
//! log::warn!("skipping event at offset {}", ev.position().offset());
//! ```
//!
//! Messages are formatted in the plugin and sent to the host whatever its log
//! level, so keep per-event logging out of hot paths. Outside WebAssembly (native
//! unit tests) messages go to standard error.

use std::fmt;

/// A log level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very verbose diagnostics.
    Trace,
    /// Diagnostics.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    /// The level's name in lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Sends a message to the host's log.
pub fn log(level: Level, message: &str) {
    imp::log(level, message);
}

#[doc(hidden)]
pub fn __log_fmt(level: Level, args: fmt::Arguments<'_>) {
    match args.as_str() {
        Some(message) => log(level, message),
        None => log(level, &args.to_string()),
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::__private::bindings::weir::plugin::log as wit;

    pub(super) fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => wit::Level::Trace,
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        };
        wit::log(level, message);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Level;

    pub(super) fn log(level: Level, message: &str) {
        eprintln!("[{}] {message}", level.as_str());
    }
}

/// Logs at level `trace`, with `format!` arguments.
#[macro_export]
#[doc(hidden)]
macro_rules! __weir_log_trace {
    ($($arg:tt)+) => { $crate::log::__log_fmt($crate::log::Level::Trace, ::core::format_args!($($arg)+)) };
}

/// Logs at level `debug`, with `format!` arguments.
#[macro_export]
#[doc(hidden)]
macro_rules! __weir_log_debug {
    ($($arg:tt)+) => { $crate::log::__log_fmt($crate::log::Level::Debug, ::core::format_args!($($arg)+)) };
}

/// Logs at level `info`, with `format!` arguments.
#[macro_export]
#[doc(hidden)]
macro_rules! __weir_log_info {
    ($($arg:tt)+) => { $crate::log::__log_fmt($crate::log::Level::Info, ::core::format_args!($($arg)+)) };
}

/// Logs at level `warn`, with `format!` arguments.
#[macro_export]
#[doc(hidden)]
macro_rules! __weir_log_warn {
    ($($arg:tt)+) => { $crate::log::__log_fmt($crate::log::Level::Warn, ::core::format_args!($($arg)+)) };
}

/// Logs at level `error`, with `format!` arguments.
#[macro_export]
#[doc(hidden)]
macro_rules! __weir_log_error {
    ($($arg:tt)+) => { $crate::log::__log_fmt($crate::log::Level::Error, ::core::format_args!($($arg)+)) };
}

#[doc(inline)]
pub use crate::__weir_log_debug as debug;
#[doc(inline)]
pub use crate::__weir_log_error as error;
#[doc(inline)]
pub use crate::__weir_log_info as info;
#[doc(inline)]
pub use crate::__weir_log_trace as trace;
#[doc(inline)]
pub use crate::__weir_log_warn as warn;

/// Wall-clock time from the host, milliseconds since the Unix epoch.
/// (Outside WebAssembly, the system clock.)
pub fn now_ms() -> i64 {
    #[cfg(target_arch = "wasm32")]
    {
        crate::__private::bindings::weir::plugin::clock::now_ms()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn macros_expand_natively() {
        let n = 3;
        crate::log::trace!("t {n}");
        crate::log::debug!("d");
        crate::log::info!("i {}", n);
        crate::log::warn!("w");
        crate::log::error!("e {n:?}");
        assert!(crate::log::now_ms() > 1_600_000_000_000);
        assert_eq!(super::Level::Warn.as_str(), "warn");
    }
}
