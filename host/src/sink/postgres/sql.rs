//! The statements of the postgres sink, built once from its config.
//! Identifiers are checked (lower-case letters, digits, `_`) and quoted.

use super::PostgresSinkConfig;
use crate::validate::FieldError;

pub struct Statements {
    pub create: String,
    pub upsert: String,
}

fn quote(ident: &str) -> String {
    format!("\"{ident}\"")
}

fn quote_table(table: &str) -> String {
    table.split('.').map(quote).collect::<Vec<_>>().join(".")
}

impl Statements {
    pub fn new(c: &PostgresSinkConfig) -> Self {
        let table = quote_table(&c.table);
        let version = quote(&c.version_column);
        let keys: Vec<&str> = c.key.columns();
        let columns: Vec<String> = c.columns.keys().map(|k| quote(k)).collect();
        let key_list = keys.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
        let mut defs: Vec<String> = c
            .columns
            .keys()
            .map(|col| {
                let ty = c.types.get(col).map_or("text", String::as_str);
                let not_null = if keys.contains(&col.as_str()) {
                    " NOT NULL"
                } else {
                    ""
                };
                format!("{} {ty}{not_null}", quote(col))
            })
            .collect();
        defs.push(format!("{version} bigint NOT NULL"));
        defs.push(format!("PRIMARY KEY ({key_list})"));
        let create = format!("CREATE TABLE IF NOT EXISTS {table} ({})", defs.join(", "));
        let all = format!("{}, {version}", columns.join(", "));
        let mut sets: Vec<String> = c
            .columns
            .keys()
            .filter(|col| !keys.contains(&col.as_str()))
            .map(|col| format!("{0} = EXCLUDED.{0}", quote(col)))
            .collect();
        sets.push(format!("{version} = EXCLUDED.{version}"));
        let upsert = format!(
            "INSERT INTO {table} AS t ({all}) \
             SELECT {all} FROM jsonb_populate_recordset(NULL::{table}, $1::text::jsonb) \
             ON CONFLICT ({key_list}) DO UPDATE SET {} \
             WHERE t.{version} < EXCLUDED.{version}",
            sets.join(", ")
        );
        Self { create, upsert }
    }
}

/// A lower-case SQL identifier.
pub fn validate_identifier(ident: &str) -> Result<(), String> {
    let mut chars = ident.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if first_ok
        && ident.len() <= 63
        && ident
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(())
    } else {
        Err(format!(
            "{ident:?} is not a lower-case SQL identifier (a-z, 0-9, _; at most 63)"
        ))
    }
}

/// `name` or `schema.name`.
pub fn validate_table(field: &str, table: &str) -> Result<(), FieldError> {
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() > 2 {
        return Err(FieldError::new(field, "use `name` or `schema.name`"));
    }
    for p in parts {
        validate_identifier(p).map_err(|m| FieldError::new(field, m))?;
    }
    Ok(())
}

/// A column type for `create_table`: words, digits, spaces, `(`, `)`, `,`,
/// `[`, `]` (no quotes or semicolons).
pub fn validate_type(ty: &str) -> Result<(), String> {
    let ok = !ty.trim().is_empty()
        && ty
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " _(),[]".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("{ty:?} is not a plain SQL type name"))
    }
}
