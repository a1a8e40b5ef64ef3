//! What every `validate()` returns: the field at fault and why.
//!
//! A leaf: each component's configuration (limits, grants, breaker, reload,
//! admin, sources, sinks, models) checks itself and names the field relative
//! to its own table; whoever holds that table prepends its position with
//! [`FieldError::within`] / [`FieldError::within_index`]. The pipeline file's
//! loader turns the path into a line number. Nothing is encoded as text and
//! parsed back, so a nested key always renders as TOML writes it
//! (`stages[0].grants.dirs[0].guest`).

use std::fmt;

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSegment {
    /// A table key.
    Key(String),
    /// An array element.
    Index(usize),
}

/// A problem with one field of the configuration, found by a `validate()`.
/// The path is relative to the struct that reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Where the field is, outermost first.
    pub path: Vec<PathSegment>,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// An error about the field `key` (an empty key: the struct itself).
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        let path = if key.is_empty() {
            Vec::new()
        } else {
            vec![PathSegment::Key(key.to_owned())]
        };
        Self {
            path,
            message: message.into(),
        }
    }

    /// An error about element `index` of the array `key` (`dirs[0]`).
    pub fn at_index(key: &str, index: usize, message: impl Into<String>) -> Self {
        Self::new("", message).within_index(index).within(key)
    }

    /// The error, seen from the table that holds the reporting one under `key`.
    pub fn within(mut self, key: &str) -> Self {
        self.path.insert(0, PathSegment::Key(key.to_owned()));
        self
    }

    /// The error, seen from the array that holds the reporting table at `index`.
    pub fn within_index(mut self, index: usize) -> Self {
        self.path.insert(0, PathSegment::Index(index));
        self
    }

    /// The path as written in messages: `stages[1].params.fields`.
    pub fn field(&self) -> String {
        render_path(&self.path)
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field(), self.message)
    }
}

impl std::error::Error for FieldError {}

/// A path as TOML writes it: bare keys where they may be bare, quoted ones
/// otherwise, `[i]` for array elements.
fn render_path(path: &[PathSegment]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSegment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if bare {
                    out.push_str(key);
                } else {
                    out.push_str(&format!("{key:?}"));
                }
            }
            PathSegment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_toml() {
        let e = FieldError::new("plugin", "bad")
            .within_index(1)
            .within("stages");
        assert_eq!(e.field(), "stages[1].plugin");
        let e = FieldError::new("a.b", "bad").within("outputs");
        assert_eq!(e.field(), "outputs.\"a.b\"");
        let e = FieldError::new("guest", "bad")
            .within_index(0)
            .within("dirs")
            .within("grants")
            .within_index(0)
            .within("stages");
        assert_eq!(e.field(), "stages[0].grants.dirs[0].guest");
        assert_eq!(FieldError::at_index("env", 2, "bad").field(), "env[2]");
    }
}
