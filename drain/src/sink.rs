//! The PostgreSQL side: connection, the drain's own tables, the stored
//! offsets, and the transaction that writes one batch.
//!
//! Owned by the drain's main thread. Invariants: rows of a batch and the
//! advance of their partitions' `next_offset` commit in one transaction or
//! not at all; an advance is conditional on the `next_offset` the drain read
//! (a drain that lost a partition to another one is fenced: its transaction
//! rolls back); a record that fails to map, or that PostgreSQL rejects, is
//! written to `weir_drain_dead_letters` in that same transaction.

use std::collections::HashMap;
use std::time::Duration;

use postgres::{Client, Config, NoTls};

use crate::rows::{DeadLetter, JsonMapping, JsonRow, RawRow};
use crate::write;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS weir_drain_offsets (
    "group" text NOT NULL, topic text NOT NULL, partition int NOT NULL,
    next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY ("group", topic, partition));
CREATE TABLE IF NOT EXISTS weir_drain_dead_letters (
    id bigserial PRIMARY KEY, "group" text NOT NULL, topic text NOT NULL,
    partition int NOT NULL, "offset" bigint NOT NULL, reason text NOT NULL,
    key bytea, value bytea, at timestamptz NOT NULL DEFAULT now());
"#;

/// How rows reach the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Copy,
    Insert,
}

/// What the target table looks like to the drain.
#[derive(Debug, Clone)]
pub enum Mode {
    Raw,
    Json {
        mapping: JsonMapping,
        /// `format_type` of each mapped column, for INSERT's casts.
        types: Vec<String>,
        upsert: bool,
    },
}

/// Everything a transaction carries: rows, dead letters, and per partition
/// (partition, the `next_offset` read, the new one).
#[derive(Debug, Default)]
pub struct Batch {
    pub raw: Vec<RawRow>,
    pub json: Vec<JsonRow>,
    pub dead: Vec<DeadLetter>,
    pub advance: Vec<(i32, i64, i64)>,
}

impl Batch {
    pub fn rows(&self) -> usize {
        self.raw.len() + self.json.len()
    }
}

/// A transaction's end.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed, with this many rows turned into dead letters by PostgreSQL.
    Committed { rejected: usize },
    /// Rolled back: these partitions' stored offsets moved under us.
    Fenced(Vec<i32>),
}

pub struct Sink {
    config: Config,
    client: Client,
    pub table: String,
    pub group: String,
    pub topic: String,
    pub mode: Mode,
    pub method: Method,
    /// Prepared multi-row INSERTs by row count (valid for this connection).
    pub(crate) statements: HashMap<usize, postgres::Statement>,
}

/// A one-line reason for a failed connection: the server's message, or the
/// I/O error under the driver's generic one.
pub fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    match std::error::Error::source(e) {
        Some(s) => format!("{e}: {s}"),
        None => e.to_string(),
    }
}

/// True for errors about the data of a row (SQLSTATE classes 22 and 23):
/// the row goes to the dead letters, the rest of the batch goes on.
pub fn is_row_error(e: &postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("23"))
}

/// True for errors a retry cannot fix: the table or a column is missing, a
/// permission is lacking (SQLSTATE classes 42 and 28).
pub fn is_fatal(e: &postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| c.code().starts_with("42") || c.code().starts_with("28"))
}

/// Quote `name` or `schema.name` as SQL identifiers.
pub fn quote_table(name: &str) -> String {
    name.split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

pub fn parse_dsn(dsn: &str) -> Result<Config, String> {
    let mut config: Config = dsn.parse().map_err(|e| format!("bad --dsn: {e}"))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    Ok(config)
}

impl Sink {
    /// Connect, create the drain's own tables, and check (or create, raw mode
    /// with `create_table`) the target table. Every error is one line.
    pub fn open(
        config: Config,
        table: &str,
        group: &str,
        topic: &str,
        options: &Options,
    ) -> Result<Self, String> {
        let mut client = config
            .connect(NoTls)
            .map_err(|e| format!("cannot connect to PostgreSQL: {}", describe(&e)))?;
        let fail = |e: postgres::Error| format!("PostgreSQL: {}", describe(&e));
        let mut tx = client.transaction().map_err(fail)?;
        // Two drains starting together would race on CREATE TABLE IF NOT EXISTS.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('weir-drain schema'))", &[])
            .map_err(fail)?;
        tx.batch_execute(SCHEMA).map_err(fail)?;
        let exists: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .map_err(fail)?
            .get(0);
        let may_create = options.create_table && !options.json;
        if !exists && !may_create {
            tx.rollback().map_err(fail)?;
            return Err(if options.json {
                format!("table {table} does not exist: create it first (JSON mode maps value fields to its columns)")
            } else {
                format!("table {table} does not exist: pass --create-table to create it")
            });
        }
        if !exists {
            tx.batch_execute(&write::raw_table_ddl(&quote_table(table)))
                .map_err(fail)?;
        }
        let mode = if options.json {
            json_mode(&mut tx, table, options)?
        } else {
            Mode::Raw
        };
        tx.commit().map_err(fail)?;
        let method = if matches!(mode, Mode::Json { upsert: true, .. }) {
            Method::Insert // COPY cannot upsert
        } else {
            options.method
        };
        Ok(Self {
            config,
            client,
            table: quote_table(table),
            group: group.to_string(),
            topic: topic.to_string(),
            mode,
            method,
            statements: HashMap::new(),
        })
    }

    /// Replace a broken connection; on failure the caller backs off and retries.
    pub fn reconnect(&mut self) -> Result<(), postgres::Error> {
        self.statements.clear();
        self.client = self.config.connect(NoTls)?;
        Ok(())
    }

    /// The stored `next_offset` of each of `partitions` that has one.
    pub fn read_offsets(&mut self, partitions: &[i32]) -> Result<HashMap<i32, i64>, postgres::Error> {
        let rows = self.client.query(
            "SELECT partition, next_offset FROM weir_drain_offsets \
             WHERE \"group\" = $1 AND topic = $2 AND partition = ANY($3)",
            &[&self.group, &self.topic, &partitions],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Store `start` as `partition`'s offset unless another drain stored one
    /// first; returns the stored one.
    pub fn init_offset(&mut self, partition: i32, start: i64) -> Result<i64, postgres::Error> {
        self.client.execute(
            "INSERT INTO weir_drain_offsets (\"group\", topic, partition, next_offset) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&self.group, &self.topic, &partition, &start],
        )?;
        let row = self.client.query_one(
            "SELECT next_offset FROM weir_drain_offsets WHERE \"group\" = $1 AND topic = $2 AND partition = $3",
            &[&self.group, &self.topic, &partition],
        )?;
        Ok(row.get(0))
    }

    /// Write `batch` in one transaction (see the module invariants). Rows
    /// PostgreSQL rejects (JSON mode) are retried one by one, each under a
    /// savepoint, and the rejected ones become dead letters.
    pub fn write(&mut self, batch: &Batch) -> Result<Outcome, postgres::Error> {
        match self.write_once(batch, false) {
            Err(e) if is_row_error(&e) && !batch.json.is_empty() => self.write_once(batch, true),
            r => r,
        }
    }

    fn write_once(&mut self, batch: &Batch, row_by_row: bool) -> Result<Outcome, postgres::Error> {
        let mut statements = std::mem::take(&mut self.statements);
        let mut tx = self.client.transaction()?;
        let ctx = write::Target {
            table: &self.table,
            topic: &self.topic,
            group: &self.group,
            mode: &self.mode,
        };
        let mut rejected = Vec::new();
        let written = if row_by_row {
            write::json_rows_one_by_one(&mut tx, &ctx, &batch.json, &mut rejected)
        } else {
            write::rows(&mut tx, &ctx, self.method, batch, &mut statements)
        };
        self.statements = statements;
        written?;
        write::dead_letters(&mut tx, &ctx, batch.dead.iter().chain(&rejected))?;
        let fenced = advance(&mut tx, &self.group, &self.topic, &batch.advance)?;
        if !fenced.is_empty() {
            tx.rollback()?;
            return Ok(Outcome::Fenced(fenced));
        }
        tx.commit()?;
        Ok(Outcome::Committed {
            rejected: rejected.len(),
        })
    }
}

/// Conditional advances; the partitions whose stored offset was not the
/// expected one.
fn advance(
    tx: &mut postgres::Transaction<'_>,
    group: &str,
    topic: &str,
    advances: &[(i32, i64, i64)],
) -> Result<Vec<i32>, postgres::Error> {
    let stmt = tx.prepare(
        "UPDATE weir_drain_offsets SET next_offset = $4, updated_at = now() \
         WHERE \"group\" = $1 AND topic = $2 AND partition = $3 AND next_offset = $5",
    )?;
    let mut fenced = Vec::new();
    for (partition, expected, next) in advances {
        if tx.execute(&stmt, &[&group, &topic, partition, next, expected])? != 1 {
            fenced.push(*partition);
        }
    }
    Ok(fenced)
}

/// Options `Sink::open` needs from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub json: bool,
    pub create_table: bool,
    pub upsert: bool,
    pub key_column: Option<String>,
    pub method: Method,
}

/// Read the table's columns and key for JSON mode. Columns with a default
/// (a bigserial id, an insertion time) are left to it.
fn json_mode(tx: &mut postgres::Transaction<'_>, table: &str, options: &Options) -> Result<Mode, String> {
    let fail = |e: postgres::Error| format!("PostgreSQL: {}", describe(&e));
    let columns: Vec<(String, String, bool)> = tx
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), \
                    a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' \
             FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 \
             AND NOT a.attisdropped ORDER BY a.attnum",
            &[&table],
        )
        .map_err(fail)?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let primary: Vec<String> = tx
        .query(
            "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a \
             ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = to_regclass($1) AND i.indisprimary",
            &[&table],
        )
        .map_err(fail)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let key = match (&options.key_column, primary.as_slice()) {
        (Some(k), _) => k.clone(),
        (None, [only]) => only.clone(),
        (None, _) => {
            return Err(format!(
                "table {table} has no single-column primary key: name the key column with --key-column"
            ))
        }
    };
    let mapped: Vec<&(String, String, bool)> = columns
        .iter()
        .filter(|(name, _, has_default)| !has_default || *name == key)
        .collect();
    let key_column = mapped
        .iter()
        .position(|(name, _, _)| *name == key)
        .ok_or_else(|| format!("table {table} has no column {key}"))?;
    Ok(Mode::Json {
        mapping: JsonMapping {
            columns: mapped.iter().map(|c| c.0.clone()).collect(),
            key_column,
        },
        types: mapped.iter().map(|c| c.1.clone()).collect(),
        upsert: options.upsert,
    })
}
