//! Errors in a pipeline file, located by file, line and field path.
//!
//! Two kinds of problems are reported: what `toml`/`serde` reject while
//! deserializing (syntax, unknown fields, wrong types) and what
//! [`PipelineConfig::validate`](super::PipelineConfig::validate) rejects
//! (duplicate stage names, missing default output...). Both end up as a
//! [`ConfigError::Invalid`] whose message reads
//! `pipeline.toml:12: stages[1].plugin: <what is wrong>`.

use std::ops::Range;
use std::path::PathBuf;

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use crate::validate::PathSegment;

/// An error loading a pipeline file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid pipeline: syntax, shape or semantics.
    #[error("{}", render_invalid(file.as_ref(), *line, *column, field, message))]
    Invalid {
        /// The pipeline file, when loaded from one.
        file: Option<PathBuf>,
        /// 1-based line of the offending key or table, when known.
        line: Option<usize>,
        /// 1-based column, for syntax errors.
        column: Option<usize>,
        /// The field path (`stages[1].plugin`); empty for syntax errors.
        field: String,
        message: String,
    },
}

impl ConfigError {
    /// The field path the error is about (empty when it is not about a field).
    pub fn field(&self) -> &str {
        match self {
            ConfigError::Read { .. } => "",
            ConfigError::Invalid { field, .. } => field,
        }
    }

    /// The 1-based line the error is about, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Invalid { line, .. } => *line,
        }
    }
}

fn render_invalid(
    file: Option<&PathBuf>,
    line: Option<usize>,
    column: Option<usize>,
    field: &str,
    message: &str,
) -> String {
    let mut out = String::new();
    match (file, line) {
        (Some(file), Some(line)) => out.push_str(&format!("{}:{line}", file.display())),
        (Some(file), None) => out.push_str(&file.display().to_string()),
        (None, Some(line)) => out.push_str(&format!("line {line}")),
        (None, None) => {}
    }
    if let (Some(column), Some(_)) = (column, line) {
        out.push_str(&format!(":{column}"));
    }
    if !out.is_empty() {
        out.push_str(": ");
    }
    if !field.is_empty() {
        out.push_str(field);
        out.push_str(": ");
    }
    out.push_str(message);
    out
}

/// The parsed document with the positions of every key and value: maps the
/// spans of `toml` errors to field paths and field paths to lines.
pub(crate) struct Document<'a> {
    pub(crate) root: Spanned<DeTable<'a>>,
    line_starts: Vec<usize>,
}

impl<'a> Document<'a> {
    pub(crate) fn parse(src: &'a str) -> Result<Self, toml::de::Error> {
        let root = DeTable::parse(src)?;
        Ok(Self {
            root,
            line_starts: line_starts(src),
        })
    }

    /// 1-based line and column of a byte offset.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.line_starts, offset)
    }

    /// The table at `path` (an empty path: the root), with its span.
    pub(crate) fn table_at(&self, path: &[PathSegment]) -> Option<Spanned<DeTable<'a>>> {
        if path.is_empty() {
            return Some(self.root.clone());
        }
        let mut nodes = walk(&self.root, path);
        if nodes.len() != path.len() {
            return None;
        }
        let (_, value) = nodes.pop()?;
        match value.get_ref() {
            DeValue::Table(t) => Some(Spanned::new(value.span(), t.clone())),
            _ => None,
        }
    }

    /// The line of the field at `path`, or of its deepest ancestor present in
    /// the file (a missing `outputs.default` is reported at `[outputs...]`).
    pub(crate) fn line_of(&self, path: &[PathSegment]) -> Option<usize> {
        let nodes = walk(&self.root, path);
        let (span, _) = nodes.last()?;
        Some(self.line_col(span.start).0)
    }

    /// The path of the key or value whose span is exactly `span` (`toml`
    /// reports errors at a key, a value or a table header).
    pub(crate) fn path_at(&self, span: &Range<usize>) -> Option<Vec<PathSegment>> {
        let mut path = Vec::new();
        if find_table(self.root.get_ref(), span, &mut path) {
            Some(path)
        } else {
            None
        }
    }
}

/// Follows `path` from the root: for each segment found, the span that locates
/// it (the key's span for a key, the element's for an index) and the value.
fn walk<'d, 'a>(
    root: &'d Spanned<DeTable<'a>>,
    path: &[PathSegment],
) -> Vec<(Range<usize>, &'d Spanned<DeValue<'a>>)> {
    let mut out = Vec::new();
    let mut table: Option<&'d DeTable<'a>> = Some(root.get_ref());
    let mut array: Option<&'d DeArray<'a>> = None;
    for seg in path {
        let found = match (seg, table, array) {
            (PathSegment::Key(key), Some(t), _) => {
                t.get_key_value(key.as_str()).map(|(k, v)| (k.span(), v))
            }
            (PathSegment::Index(i), _, Some(a)) => a.get(*i).map(|v| (v.span(), v)),
            _ => None,
        };
        let Some((span, value)) = found else { break };
        out.push((span, value));
        table = None;
        array = None;
        match value.get_ref() {
            DeValue::Table(t) => table = Some(t),
            DeValue::Array(a) => array = Some(a),
            _ => {}
        }
    }
    out
}

fn find_table(table: &DeTable<'_>, span: &Range<usize>, path: &mut Vec<PathSegment>) -> bool {
    for (key, value) in table.iter() {
        path.push(PathSegment::Key(key.get_ref().to_string()));
        if key.span() == *span || value.span() == *span || find_value(value.get_ref(), span, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn find_value(value: &DeValue<'_>, span: &Range<usize>, path: &mut Vec<PathSegment>) -> bool {
    match value {
        DeValue::Table(t) => find_table(t, span, path),
        DeValue::Array(a) => {
            for (i, elem) in a.iter().enumerate() {
                path.push(PathSegment::Index(i));
                if elem.span() == *span || find_value(elem.get_ref(), span, path) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}

/// 1-based line and column of a byte offset in `src`.
pub(crate) fn line_col_in(src: &str, offset: usize) -> (usize, usize) {
    line_col(&line_starts(src), offset)
}

fn line_starts(src: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(src.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

fn line_col(starts: &[usize], offset: usize) -> (usize, usize) {
    let line = starts.partition_point(|&s| s <= offset).max(1);
    let start = starts.get(line - 1).copied().unwrap_or(0);
    (line, offset.saturating_sub(start) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> PathSegment {
        PathSegment::Key(k.into())
    }

    #[test]
    fn lines_of_paths_and_spans() {
        let src = "name = 'x'\n[source]\ntype = 'file'\n[[stages]]\nname = 'a'\n[[stages]]\nname = 'b'\n[outputs.alerts]\ntype = 'stdout'\n";
        let doc = Document::parse(src).expect("parses");
        assert_eq!(doc.line_of(&[key("name")]), Some(1));
        assert_eq!(doc.line_of(&[key("source"), key("type")]), Some(3));
        let p = [key("stages"), PathSegment::Index(1), key("name")];
        assert_eq!(doc.line_of(&p), Some(7));
        // Missing: the deepest ancestor present.
        assert_eq!(doc.line_of(&[key("outputs"), key("default")]), Some(8));
        assert_eq!(doc.line_of(&[key("nothing")]), None);
        let start = src.rfind("name = 'b'").expect("second name");
        let span = start..start + 4;
        assert_eq!(doc.path_at(&span), Some(p.to_vec()));
        assert_eq!(doc.line_col(span.start), (7, 1));
    }
}
