//! `weir:plugin/log`: plugin log lines go to the host's log, tagged with the
//! stage and the plugin.

use crate::plugin::StoreState;
use crate::plugin::wit_log::{Host, Level};

/// Longest plugin log line kept; a longer one is cut (a plugin must not be
/// able to flood the host's log with one call).
const MAX_LINE: usize = 8 * 1024;

impl Host for StoreState {
    fn log(&mut self, level: Level, mut message: String) {
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
