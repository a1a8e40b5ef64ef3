//! `weir:plugin/log`: plugin log lines go to the host's log, tagged with the
//! stage and the plugin.

use crate::plugin::StoreState;
use crate::plugin::{wit_log, wit2_log};

/// Longest plugin log line kept; a longer one is cut (a plugin must not be
/// able to flood the host's log with one call).
const MAX_LINE: usize = 8 * 1024;

/// The level of a plugin log line (both contract versions have the same).
#[derive(Clone, Copy)]
enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

macro_rules! log_host {
    ($wit:ident) => {
        impl $wit::Host for StoreState {
            fn log(&mut self, level: $wit::Level, message: String) {
                let level = match level {
                    $wit::Level::Trace => Level::Trace,
                    $wit::Level::Debug => Level::Debug,
                    $wit::Level::Info => Level::Info,
                    $wit::Level::Warn => Level::Warn,
                    $wit::Level::Error => Level::Error,
                };
                self.log_line(level, message);
            }
        }
    };
}

log_host!(wit_log);
log_host!(wit2_log);

impl StoreState {
    fn log_line(&mut self, level: Level, mut message: String) {
        if message.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let (stage, plugin) = (&*self.stage, &*self.plugin);
        match level {
            Level::Trace => tracing::trace!(target: "weir::plugin", stage, plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "weir::plugin", stage, plugin, "{message}"),
            Level::Info => tracing::info!(target: "weir::plugin", stage, plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "weir::plugin", stage, plugin, "{message}"),
            Level::Error => tracing::error!(target: "weir::plugin", stage, plugin, "{message}"),
        }
    }
}
