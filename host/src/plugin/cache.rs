//! On-disk cache of compiled plugins.
//!
//! Compiling a component takes 50-120 ms for a small Rust plugin (seconds for a
//! Python one); loading the serialized artifact takes well under a millisecond.
//! Entries are keyed by the SHA-256 of the `.wasm` bytes and by the engine's
//! compatibility hash (wasmtime version and every setting that changes code),
//! so a cache shared by differently configured hosts never mixes artifacts.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A `Hasher` over SHA-256, so the engine's compatibility hash is stable
/// across processes (std's `DefaultHasher` is not guaranteed to be).
struct StableHasher(Sha256);

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The content hash of a plugin: its version, as shown in provenance headers.
pub fn content_hash(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

fn engine_key(engine: &Engine) -> String {
    let mut hasher = StableHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Where compiled artifacts live.
#[derive(Clone, Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
}

/// Whether a load came from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
    /// No cache configured, or it could not be written (logged).
    Bypassed,
}

impl ArtifactCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_for(&self, engine: &Engine, hash: &str) -> PathBuf {
        self.dir
            .join(engine_key(engine))
            .join(format!("{hash}.cwasm"))
    }

    /// The compiled component for `wasm`, from the cache or freshly compiled
    /// (then stored). `hash` is `content_hash(wasm)`.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        hash: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.path_for(engine, hash);
        if path.is_file() {
            // SAFETY: the file was written by `store` below from
            // `Component::serialize` of this same engine configuration (the
            // directory is keyed by the engine's compatibility hash, the name
            // by the source's content hash), into the host's own cache folder.
            // Wasmtime still checks the header, version and settings.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "cached plugin artifact unusable; recompiling");
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        let outcome = match self.store(&component, &path) {
            Ok(()) => CacheOutcome::Miss,
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "could not write the compiled plugin cache");
                CacheOutcome::Bypassed
            }
        };
        Ok((component, outcome))
    }

    fn store(&self, component: &Component, path: &Path) -> std::io::Result<()> {
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        let dir = path
            .parent()
            .ok_or_else(|| std::io::Error::other("cache path has no parent"))?;
        std::fs::create_dir_all(dir)?;
        // Write to a temporary file and rename, so a concurrent or crashed
        // writer never leaves a truncated artifact under the final name.
        let tmp = tempfile_in(dir)?;
        let written = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            // A full disk: do not leave the partial file taking its room.
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

fn tempfile_in(dir: &Path) -> std::io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!(".tmp-{}-{n}", std::process::id())))
}
