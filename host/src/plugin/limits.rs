//! Per-stage resource limits of a plugin instance.

use std::time::Duration;

use serde::Deserialize;

use crate::validate::FieldError;

/// Resource limits of one stage's plugin instance (the `[stages.limits]`
/// table). Every field has a default that is safe for untrusted code.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest linear memory the plugin may grow to, in MiB. Growing past it
    /// traps the call (the batch's events are isolated, the host is fine).
    pub max_memory_mib: u32,
    /// CPU time one `process` call may take, in milliseconds (wall-clock,
    /// checked by epoch interruption every 10 ms). A call over it traps.
    pub max_batch_ms: u64,
    /// Largest total of output bytes (values, keys, headers) for one batch.
    pub max_output_mib: u32,
    /// Most core instances and tables a plugin may create (a component
    /// usually needs a handful).
    pub max_instances: u32,
    pub max_tables: u32,
    /// Fuel (roughly, WebAssembly instructions) one `process` call may burn;
    /// 0 = off. A deterministic CPU limit, at a cost (see BENCHMARKS.md);
    /// the time limit above is always on.
    pub fuel: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_memory_mib: 256,
            max_batch_ms: 5_000,
            max_output_mib: 64,
            fuel: 0,
            max_instances: 32,
            max_tables: 32,
        }
    }
}

impl LimitsConfig {
    pub fn max_memory_bytes(&self) -> usize {
        (self.max_memory_mib as usize) << 20
    }

    pub fn max_output_bytes(&self) -> usize {
        (self.max_output_mib as usize) << 20
    }

    pub fn batch_deadline(&self) -> Duration {
        Duration::from_millis(self.max_batch_ms)
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        let at_least_one = [
            ("max_memory_mib", u64::from(self.max_memory_mib)),
            ("max_batch_ms", self.max_batch_ms),
            ("max_instances", u64::from(self.max_instances)),
            ("max_tables", u64::from(self.max_tables)),
            ("max_output_mib", u64::from(self.max_output_mib)),
        ];
        match at_least_one.iter().find(|(_, v)| *v == 0) {
            Some((field, _)) => Err(FieldError::new(field, "must be at least 1")),
            None => Ok(()),
        }
    }
}
