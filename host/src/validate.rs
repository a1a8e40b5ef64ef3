//! What every `validate()` returns: the field at fault and why.
//!
//! A leaf: each component's configuration (limits, grants, breaker, reload,
//! admin, sources, sinks, models) checks itself and names the field relative
//! to its own table; whoever holds that table prepends its position with
//! [`FieldError::within`] / [`FieldError::within_index`]. The pipeline file's
//! loader turns the path into a line number. Nothing is encoded as text and
//! parsed back, so a nested key always renders as TOML writes it
//! (`stages[0].grants.dirs[0].guest`).

use std::ffi::OsStr;
use std::fmt;
use std::ops::RangeInclusive;

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

/// `value` must not be empty ("must not be empty").
pub fn not_empty(field: &str, value: impl AsRef<OsStr>) -> Result<(), FieldError> {
    if value.as_ref().is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    Ok(())
}

/// `value` must hold more than white space ("must not be empty").
pub fn not_blank(field: &str, value: &str) -> Result<(), FieldError> {
    not_empty(field, value.trim())
}

/// A count or duration that 0 would disable ("must be at least 1").
pub fn at_least_one(field: &str, value: u64) -> Result<(), FieldError> {
    if value == 0 {
        return Err(FieldError::new(field, "must be at least 1"));
    }
    Ok(())
}

/// `value` must lie in `range` ("must be between LOW and HIGH, got VALUE").
pub fn in_range<T: PartialOrd + fmt::Display>(
    field: &str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<(), FieldError> {
    if !range.contains(&value) {
        let (low, high) = range.into_inner();
        return Err(FieldError::new(
            field,
            format!("must be between {low} and {high}, got {value}"),
        ));
    }
    Ok(())
}

/// `value` must not exceed `max` ("must be at most MAX, got VALUE").
pub fn at_most<T: PartialOrd + fmt::Display>(
    field: &str,
    value: T,
    max: T,
) -> Result<(), FieldError> {
    if value > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max}, got {value}"),
        ));
    }
    Ok(())
}

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

    #[test]
    fn checks_name_the_field_and_the_bound() {
        assert_eq!(
            not_blank("brokers", " ").map_err(|e| e.to_string()),
            Err("brokers: must not be empty".to_owned())
        );
        assert!(not_empty("path", std::path::Path::new("a")).is_ok());
        assert_eq!(
            at_least_one("max_faults", 0).map_err(|e| e.message),
            Err("must be at least 1".to_owned())
        );
        assert_eq!(
            in_range("max_batch", 0, 1..=256).map_err(|e| e.message),
            Err("must be between 1 and 256, got 0".to_owned())
        );
        assert!(in_range("max_batch", 256, 1..=256).is_ok());
        assert_eq!(
            at_most("max_delay_ms", 5000, 1000).map_err(|e| e.to_string()),
            Err("max_delay_ms: must be at most 1000, got 5000".to_owned())
        );
    }
}
