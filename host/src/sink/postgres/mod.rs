//! The `postgres` sink: each event upserted as a row of a table, e.g. the
//! application's latest decision per card.
//!
//! A batch is one transaction of one statement:
//! `INSERT ... SELECT ... FROM jsonb_populate_recordset(...) ON CONFLICT
//! (key) DO UPDATE ... WHERE t.version < EXCLUDED.version`, so a replayed or
//! late event never overwrites a newer row and a crash between two batches
//! leaves the table as if each event had been written once. Connections come
//! from a pool (made anew when broken); connection errors are retried with
//! backoff and jitter, with the pipeline slowed down meanwhile. A batch the
//! database refuses for its data (a value of the wrong type, a constraint)
//! is written row by row, and the refused rows go to the dead letters with
//! the database's message.

mod sql;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use serde::Deserialize;
use tokio_postgres::NoTls;

use super::retry::RetryConfig;
use super::secret::Secret;
use super::template::{Version, validate_pointer};
use super::upsert::{self, Attempt, Upsert};
use super::{Sink, SinkBatch, SinkContext};
use crate::endpoint::EndpointError;
use crate::event::Event;
use crate::validate::{self, FieldError};

/// `type = "postgres"`.
///
/// ```toml
/// [outputs.decisions]
/// type = "postgres"
/// url = "postgres://weir@127.0.0.1:5432/app"
/// password = "env:PGPASSWORD"
/// table = "card_scores"
/// key = "card_id"                              # or ["a", "b"]
/// columns = { card_id = "/card_id", score = "/score" }
/// version = "/ts"                              # or "offset" (default)
/// create_table = true
/// types = { score = "double precision" }       # for create_table
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkConfig {
    /// `postgres://user@host:port/db` or `host=... user=... dbname=...`,
    /// without a password (see `password`).
    pub url: String,
    /// The password: `"env:NAME"` reads it from the environment.
    pub password: Option<Secret>,
    /// The table, `name` or `schema.name` (lower-case identifiers).
    pub table: String,
    /// The key column(s): the table's primary key or a unique index.
    pub key: Keys,
    /// Column → JSON pointer into the event's value. Key columns must be
    /// here; a missing non-key field is written as NULL.
    pub columns: BTreeMap<String, String>,
    /// What orders writes of one key: `"offset"` (default; the source
    /// offset) or an integer field such as `"/ts"`.
    #[serde(default = "offset")]
    pub version: Version,
    /// The column holding the version (a `bigint`; default `version`).
    #[serde(default = "version_column")]
    pub version_column: String,
    /// Create the table if it does not exist (default `false`): the columns
    /// with their `types` (default `text`), the version `bigint`, the key as
    /// the primary key.
    #[serde(default)]
    pub create_table: bool,
    /// SQL types of the columns for `create_table` (`score = "double
    /// precision"`).
    #[serde(default)]
    pub types: BTreeMap<String, String>,
    /// Connections in the pool (default 2).
    #[serde(default = "pool_size")]
    pub pool_size: usize,
    /// Timeout of connecting and of waiting for a connection (default
    /// 5000 ms).
    #[serde(default = "timeout_ms")]
    pub timeout_ms: u64,
    /// Retries (`[outputs.<name>.retry]`): unbounded by default.
    #[serde(default)]
    pub retry: RetryConfig,
}

/// One key column or several.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Keys {
    One(String),
    Many(Vec<String>),
}

impl Keys {
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Keys::One(k) => vec![k.as_str()],
            Keys::Many(ks) => ks.iter().map(String::as_str).collect(),
        }
    }
}

fn offset() -> Version {
    Version::Offset
}

fn version_column() -> String {
    "version".into()
}

fn pool_size() -> usize {
    2
}

fn timeout_ms() -> u64 {
    5000
}

impl PostgresSinkConfig {
    fn pg_config(&self) -> Result<tokio_postgres::Config, FieldError> {
        let mut config = tokio_postgres::Config::from_str(&self.url).map_err(|e| {
            FieldError::new("url", format!("not a PostgreSQL connection string ({e})"))
        })?;
        if config.get_password().is_some() {
            return Err(FieldError::new(
                "url",
                "must not hold a password: use `password = \"env:NAME\"`",
            ));
        }
        if let Some(password) = &self.password {
            password.validate("password")?;
            config.password(
                password
                    .reveal()
                    .map_err(|e| FieldError::new("password", e))?,
            );
        }
        config.connect_timeout(Duration::from_millis(self.timeout_ms));
        config.application_name("weir");
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        validate::not_blank("url", &self.url)?;
        self.pg_config()?;
        sql::validate_table("table", &self.table)?;
        let keys = self.key.columns();
        if keys.is_empty() {
            return Err(FieldError::new("key", "needs at least one column"));
        }
        if self.columns.is_empty() {
            return Err(FieldError::new("columns", "needs at least one column"));
        }
        for (column, pointer) in &self.columns {
            sql::validate_identifier(column)
                .map_err(|m| FieldError::new(column, m).within("columns"))?;
            validate_pointer(column, pointer).map_err(|e| e.within("columns"))?;
        }
        for k in &keys {
            if !self.columns.contains_key(*k) {
                return Err(FieldError::new(
                    "key",
                    format!("the key column {k:?} is not in `columns`"),
                ));
            }
        }
        sql::validate_identifier(&self.version_column)
            .map_err(|m| FieldError::new("version_column", m))?;
        if self.columns.contains_key(&self.version_column) {
            return Err(FieldError::new(
                "version_column",
                format!(
                    "{:?} is also in `columns`: the sink writes the version itself",
                    self.version_column
                ),
            ));
        }
        if let Version::Pointer(p) = &self.version {
            validate_pointer("version", p)?;
        }
        for (column, ty) in &self.types {
            if !self.columns.contains_key(column) {
                return Err(FieldError::new(column, "not in `columns`").within("types"));
            }
            sql::validate_type(ty).map_err(|m| FieldError::new(column, m).within("types"))?;
        }
        validate::in_range("pool_size", self.pool_size, 1..=64)?;
        self.retry.validate_with_timeout(self.timeout_ms, 600_000)
    }

    /// Creates the pool; it connects at the first batch.
    pub fn build(&self) -> Result<PostgresSink, EndpointError> {
        let pg = super::checked("postgres", self.validate(), || self.pg_config())?;
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let timeout = Duration::from_millis(self.timeout_ms);
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .build()
            .map_err(|e| EndpointError::Other(format!("postgres sink: {e}")))?;
        Ok(PostgresSink {
            describe: format!("postgres table {}", self.table),
            pool,
            statements: sql::Statements::new(self),
            table_ready: !self.create_table,
            config: self.clone(),
            context: None,
        })
    }
}

/// A running PostgreSQL sink.
pub struct PostgresSink {
    describe: String,
    pool: Pool,
    statements: sql::Statements,
    /// Whether `create_table` (if asked) has run.
    table_ready: bool,
    config: PostgresSinkConfig,
    context: Option<SinkContext>,
}

/// One event as a row: its key (for deduplication) and its JSON object.
pub(super) struct Row {
    key: String,
    version: i64,
    json: serde_json::Map<String, serde_json::Value>,
}

impl PostgresSink {
    fn row(&self, event: &Event) -> Result<Row, String> {
        let value: serde_json::Value = serde_json::from_slice(&event.value)
            .map_err(|e| format!("the value is not JSON ({e})"))?;
        let version = self.config.version.of(event, Some(&value))?;
        let mut json = serde_json::Map::new();
        let mut key = String::new();
        for (column, pointer) in &self.config.columns {
            let v = value.pointer(pointer).cloned();
            json.insert(column.clone(), v.clone().unwrap_or(serde_json::Value::Null));
            if self.config.key.columns().contains(&column.as_str()) {
                let v = v
                    .filter(|v| !v.is_null())
                    .ok_or_else(|| format!("the key column {column} has no value at {pointer}"))?;
                key.push_str(&v.to_string());
                key.push('\u{1f}');
            }
        }
        json.insert(
            self.config.version_column.clone(),
            serde_json::Value::from(version),
        );
        Ok(Row { key, version, json })
    }

    /// One statement in one transaction.
    async fn execute(&mut self, rows_json: &str) -> Result<u64, PoolError> {
        let mut client = self.pool.get().await?;
        if !self.table_ready {
            client.batch_execute(&self.statements.create).await?;
            self.table_ready = true;
        }
        let tx = client.transaction().await?;
        let statement = tx.prepare_cached(&self.statements.upsert).await?;
        let n = tx.execute(&statement, &[&rows_json]).await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// SQLSTATE classes of a server that cannot serve now: connection
/// exceptions (08), too many connections (53300), shutting down or starting
/// up (57P01-57P03).
fn unreachable_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "53300" | "57P01" | "57P02" | "57P03")
}

#[async_trait]
impl Upsert for PostgresSink {
    type Item = Row;
    const SERVER: &'static str = "PostgreSQL";

    async fn attempt(&mut self, rows: &[&Row]) -> Attempt {
        let json = serde_json::Value::Array(
            rows.iter()
                .map(|r| serde_json::Value::Object(r.json.clone()))
                .collect(),
        )
        .to_string();
        let e = match self.execute(&json).await {
            Ok(_) => return Attempt::Written,
            Err(e) => e,
        };
        let db = match &e {
            PoolError::Backend(b) => b.as_db_error(),
            _ => None,
        };
        let Some(db) = db else {
            return Attempt::Unreachable(e.to_string());
        };
        let code = db.code().code();
        let message = format!("{} ({code})", db.message());
        if code.starts_with("22") || code.starts_with("23") {
            Attempt::Refused(message)
        } else if unreachable_code(code) {
            Attempt::Unreachable(message)
        } else {
            Attempt::Passing(message)
        }
    }
}

#[async_trait]
impl Sink for PostgresSink {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn attach(&mut self, context: SinkContext) {
        // Not ready until the database answers: probe in the background.
        let pool = self.pool.clone();
        context.probe_until_up("PostgreSQL", self.config.retry.clone(), move || {
            let pool = pool.clone();
            async move { pool.get().await.map(drop) }
        });
        self.context = Some(context);
    }

    async fn send(&mut self, batch: SinkBatch) -> Result<(), EndpointError> {
        let SinkBatch { events, acks } = batch;
        let context = SinkContext::attached(&mut self.context, "postgres");
        let prepared = upsert::prepare(&context, "postgres", events, &acks, |e| self.row(e)).await;
        // One row per key (the newest; the first of equal versions): a
        // statement may not update a row twice.
        let mut rows: Vec<(Row, Event)> = Vec::with_capacity(prepared.len());
        let mut by_key: HashMap<String, usize> = HashMap::new();
        for (row, event) in prepared {
            match by_key.get(&row.key) {
                Some(&i) if rows[i].0.version >= row.version => {}
                Some(&i) => rows[i] = (row, event),
                None => {
                    by_key.insert(row.key.clone(), rows.len());
                    rows.push((row, event));
                }
            }
        }
        let retry = self.config.retry.clone();
        upsert::write_batch(self, &context, ("postgres", &retry), rows, &acks).await
    }

    async fn flush(&mut self) -> Result<(), EndpointError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
