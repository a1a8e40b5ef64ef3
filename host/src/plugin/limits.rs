//! Per-stage resource limits of a plugin instance, and how they are
//! enforced: the store's [`Limiter`] (memory, tables, instances; it records a
//! refused memory growth, so a fault is recognised by a flag, not by its
//! message) and the epoch deadline counted in [`EPOCH_TICK`]s.

use std::time::Duration;

use serde::Deserialize;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

use crate::validate::{self, FieldError};

/// How often the engine's epoch advances; a call's time limit is counted in
/// these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

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

    /// `max_batch_ms` in epoch ticks, rounded up (at least one).
    pub fn deadline_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_millis().max(1) as u64;
        self.max_batch_ms.div_ceil(tick).max(1)
    }

    /// The limiter of one instance's store.
    pub(crate) fn limiter(&self) -> Limiter {
        Limiter {
            limits: StoreLimitsBuilder::new()
                .memory_size(self.max_memory_bytes())
                .instances(self.max_instances as usize)
                .tables(self.max_tables as usize)
                .memories(8)
                .table_elements(1 << 20)
                .trap_on_grow_failure(true)
                .build(),
            memory_bytes: 0,
            memory_refused: false,
        }
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        validate::at_least_one("max_memory_mib", u64::from(self.max_memory_mib))?;
        validate::at_least_one("max_batch_ms", self.max_batch_ms)?;
        validate::at_least_one("max_instances", u64::from(self.max_instances))?;
        validate::at_least_one("max_tables", u64::from(self.max_tables))?;
        validate::at_least_one("max_output_mib", u64::from(self.max_output_mib))
    }
}

/// A store's resource limiter: wasmtime's `StoreLimits` for the limits
/// themselves, plus the linear memory the instance holds (for the memory
/// metric) and whether a memory growth was refused (the call's fault is then
/// "out of memory").
pub struct Limiter {
    limits: StoreLimits,
    memory_bytes: usize,
    memory_refused: bool,
}

impl Limiter {
    /// Linear memory the instance holds, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    /// Whether a memory growth was refused since the last call; clears it.
    pub fn take_memory_refused(&mut self) -> bool {
        std::mem::take(&mut self.memory_refused)
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum);
        match allowed {
            Ok(true) => self.memory_bytes = self.memory_bytes.saturating_add(desired - current),
            Ok(false) | Err(_) => self.memory_refused = true,
        }
        allowed
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_refused = true;
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_whole_ticks() {
        let at = |ms| LimitsConfig {
            max_batch_ms: ms,
            ..LimitsConfig::default()
        };
        assert_eq!(at(1).deadline_ticks(), 1);
        assert_eq!(at(10).deadline_ticks(), 1);
        assert_eq!(at(11).deadline_ticks(), 2);
        assert_eq!(at(5_000).deadline_ticks(), 500);
    }

    #[test]
    fn a_refused_growth_sets_the_flag_once() {
        let limits = LimitsConfig {
            max_memory_mib: 1,
            ..LimitsConfig::default()
        };
        let mut limiter = limits.limiter();
        assert!(matches!(limiter.memory_growing(0, 1 << 16, None), Ok(true)));
        assert_eq!(limiter.memory_bytes(), 1 << 16);
        assert!(!limiter.take_memory_refused());
        assert!(limiter.memory_growing(1 << 16, 2 << 20, None).is_err());
        assert_eq!(
            limiter.memory_bytes(),
            1 << 16,
            "a refused growth holds nothing"
        );
        assert!(limiter.take_memory_refused());
        assert!(!limiter.take_memory_refused(), "taken");
    }
}
