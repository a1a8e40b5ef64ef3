//! Where this weir's files are: the source tree it was built from (the SDKs,
//! the WIT contract, the scripts) and the per-user cache.

use std::path::{Path, PathBuf};

use crate::plugin::ArtifactCache;

/// This weir's source tree (the SDKs, the WIT and the scripts live there).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The per-user cache folder: `$XDG_CACHE_HOME/weir`, else `~/.cache/weir`.
pub fn user_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("weir")
}

/// The per-user cache of compiled plugins used by the CLI.
pub fn user_cache() -> ArtifactCache {
    ArtifactCache::new(user_cache_dir())
}
