//! How a source or a sink fails: both read or write somewhere (a file, a
//! stream, a broker), so both fail the same two ways.

/// The error of a source or a sink.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// An I/O error, with what was being done (`cannot open the source file
    /// in.jsonl`, `reading stdin (json)`...).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Any other failure, described (a broker's, a consumer thread's...).
    #[error("{0}")]
    Other(String),
}
