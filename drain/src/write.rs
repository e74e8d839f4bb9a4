//! The write path inside one transaction: COPY or multi-row INSERT of a
//! batch's rows, the one-row-at-a-time fallback that finds rejected rows, and
//! the dead letters.
//!
//! Called by `sink` only, inside its transaction. Invariants: rows go in the
//! order of the batch (per partition, offset order), so a bigserial id in the
//! table follows offset order; one INSERT statement carries at most
//! `INSERT_ROWS_MAX` rows (PostgreSQL allows 65535 parameters).
//!
//! COPY vs multi-row INSERT, measured with `measure_copy_vs_insert`
//! (drain/tests/drain.rs; release build, 100,000 raw records, batch 5000,
//! local PostgreSQL 15, a shared 2-vCPU machine at load 14), rows/s inside
//! transactions, three alternating rounds: binary COPY 41,684 / 32,637 /
//! 30,731, INSERT 19,724 / 24,808 / 18,242. COPY won every round, so it is
//! the default (raw mode uses binary COPY; JSON mode text COPY, since
//! PostgreSQL parses each column from text). Text COPY of raw rows (bytea as
//! hex) had tied with INSERT; see docs/peak-shaving.md.

use std::collections::HashMap;
use std::io::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use postgres::types::ToSql;
use postgres::Transaction;

use crate::rows::{copy_text, DeadLetter, JsonRow, RawRow};
use crate::sink::{Batch, Method, Mode};

/// Rows per INSERT statement: 7 raw columns x 1000 = 7000 parameters.
const INSERT_ROWS_MAX: usize = 1000;
/// COPY data is sent in pieces of about this size.
const COPY_CHUNK_BYTES: usize = 1 << 20;

const RAW_COLUMNS: &str = r#"topic, partition, "offset", ts, key, value, headers"#;

/// Where a transaction writes.
pub struct Target<'a> {
    pub table: &'a str,
    pub topic: &'a str,
    pub group: &'a str,
    pub mode: &'a Mode,
}

/// The raw table: an insertion id and a DB-side insertion time, so a reader
/// can check insertion order and the committed rate.
pub fn raw_table_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, topic text NOT NULL, \
         partition int NOT NULL, \"offset\" bigint NOT NULL, ts timestamptz, key bytea, \
         value bytea, headers jsonb, inserted_at timestamptz NOT NULL DEFAULT clock_timestamp())"
    )
}

pub fn rows(
    tx: &mut Transaction<'_>,
    t: &Target<'_>,
    method: Method,
    batch: &Batch,
    statements: &mut HashMap<usize, postgres::Statement>,
) -> Result<(), postgres::Error> {
    match (t.mode, method) {
        (Mode::Raw, Method::Copy) => copy_raw(tx, t, &batch.raw),
        (Mode::Raw, Method::Insert) => insert_raw(tx, t, &batch.raw, statements),
        (Mode::Json { .. }, Method::Copy) => copy_json(tx, t, &batch.json),
        (Mode::Json { upsert, .. }, Method::Insert) if *upsert => {
            insert_json(tx, t, &last_per_key(t, &batch.json), statements)
        }
        (Mode::Json { .. }, Method::Insert) => {
            let all: Vec<&JsonRow> = batch.json.iter().collect();
            insert_json(tx, t, &all, statements)
        }
    }
}

/// Raw rows as binary COPY: no text escaping, bytea without hex doubling.
fn copy_raw(tx: &mut Transaction<'_>, t: &Target<'_>, rows: &[RawRow]) -> Result<(), postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut w = tx.copy_in(&format!(
        "COPY {} ({RAW_COLUMNS}) FROM STDIN (FORMAT binary)",
        t.table
    ))?;
    let mut buf: Vec<u8> = Vec::with_capacity(COPY_CHUNK_BYTES + 4096);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes()); // flags
    buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for r in rows {
        buf.extend_from_slice(&7i16.to_be_bytes());
        binary_field(&mut buf, Some(t.topic.as_bytes()));
        binary_field(&mut buf, Some(&r.partition.to_be_bytes()));
        binary_field(&mut buf, Some(&r.offset.to_be_bytes()));
        binary_field(&mut buf, Some(&timestamptz_binary(r.timestamp_ms).to_be_bytes()));
        binary_field(&mut buf, r.key.as_deref());
        binary_field(&mut buf, r.value.as_deref());
        // jsonb's binary form: version 1, then the text.
        let len = i32::try_from(r.headers.len() + 1).unwrap_or(i32::MAX);
        buf.extend_from_slice(&len.to_be_bytes());
        buf.push(1);
        buf.extend_from_slice(r.headers.as_bytes());
        if buf.len() >= COPY_CHUNK_BYTES {
            w.write_all(&buf).map_err(io_to_pg)?;
            buf.clear();
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    w.write_all(&buf).map_err(io_to_pg)?;
    w.finish()?;
    Ok(())
}

/// One binary COPY field: its length (-1 for NULL), then its bytes.
fn binary_field(buf: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(v) => {
            buf.extend_from_slice(&i32::try_from(v.len()).unwrap_or(i32::MAX).to_be_bytes());
            buf.extend_from_slice(v);
        }
    }
}

/// A Kafka timestamp (ms since 1970) as timestamptz's binary form:
/// microseconds since 2000-01-01 00:00:00 UTC.
fn timestamptz_binary(ms: i64) -> i64 {
    const PG_EPOCH_MS: i64 = 946_684_800_000;
    ms.saturating_sub(PG_EPOCH_MS).saturating_mul(1000)
}

fn copy_json(tx: &mut Transaction<'_>, t: &Target<'_>, rows: &[JsonRow]) -> Result<(), postgres::Error> {
    let Mode::Json { mapping, .. } = t.mode else {
        unreachable!("copy_json is called in JSON mode only")
    };
    if rows.is_empty() {
        return Ok(());
    }
    let columns = quoted_columns(&mapping.columns);
    let mut w = tx.copy_in(&format!("COPY {} ({columns}) FROM STDIN", t.table))?;
    let mut buf = String::with_capacity(COPY_CHUNK_BYTES + 4096);
    for r in rows {
        for (i, v) in r.values.iter().enumerate() {
            if i > 0 {
                buf.push('\t');
            }
            match v {
                None => buf.push_str("\\N"),
                Some(s) => copy_text(&mut buf, s),
            }
        }
        buf.push('\n');
        if buf.len() >= COPY_CHUNK_BYTES {
            w.write_all(buf.as_bytes()).map_err(io_to_pg)?;
            buf.clear();
        }
    }
    w.write_all(buf.as_bytes()).map_err(io_to_pg)?;
    w.finish()?;
    Ok(())
}

/// A COPY write error is the connection's: surface it as the driver's error
/// by finishing nothing more (the transaction is dropped, which rolls back).
fn io_to_pg(e: std::io::Error) -> postgres::Error {
    match e.into_inner().map(|inner| inner.downcast::<postgres::Error>()) {
        Some(Ok(pg)) => *pg,
        _ => unreachable!("CopyInWriter only fails with postgres::Error"),
    }
}

fn quoted_columns(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `VALUES ($1, ...), (...)` for `rows` rows of `cols` placeholders, each
/// written by `cell(column, placeholder)`.
fn values_list(rows: usize, cols: usize, cell: impl Fn(usize, usize) -> String) -> String {
    let mut s = String::from("VALUES ");
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push_str(&cell(c, r * cols + c + 1));
        }
        s.push(')');
    }
    s
}

fn insert_raw(
    tx: &mut Transaction<'_>,
    t: &Target<'_>,
    rows: &[RawRow],
    statements: &mut HashMap<usize, postgres::Statement>,
) -> Result<(), postgres::Error> {
    let topic = t.topic.to_string();
    for chunk in rows.chunks(INSERT_ROWS_MAX) {
        let stmt = match statements.get(&chunk.len()) {
            Some(s) => s.clone(),
            None => {
                let values = values_list(chunk.len(), 7, |c, n| match c {
                    6 => format!("${n}::text::jsonb"),
                    _ => format!("${n}"),
                });
                let s = tx.prepare(&format!("INSERT INTO {} ({RAW_COLUMNS}) {values}", t.table))?;
                statements.insert(chunk.len(), s.clone());
                s
            }
        };
        let times: Vec<std::time::SystemTime> = chunk
            .iter()
            .map(|r| match u64::try_from(r.timestamp_ms) {
                Ok(ms) => UNIX_EPOCH + Duration::from_millis(ms),
                Err(_) => UNIX_EPOCH - Duration::from_millis(r.timestamp_ms.unsigned_abs()),
            })
            .collect();
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(chunk.len() * 7);
        for (r, at) in chunk.iter().zip(&times) {
            params.extend_from_slice(&[&topic, &r.partition, &r.offset, at, &r.key, &r.value, &r.headers]);
        }
        tx.execute(&stmt, &params)?;
    }
    Ok(())
}

/// In upsert mode the last record of a key in a batch wins, as it would
/// across batches (one INSERT .. ON CONFLICT cannot touch a row twice).
fn last_per_key<'a>(t: &Target<'_>, rows: &'a [JsonRow]) -> Vec<&'a JsonRow> {
    let Mode::Json { mapping, .. } = t.mode else {
        return Vec::new();
    };
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        last.insert(r.values[mapping.key_column].as_deref().unwrap_or_default(), i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| &rows[i]).collect()
}

fn insert_json(
    tx: &mut Transaction<'_>,
    t: &Target<'_>,
    rows: &[&JsonRow],
    statements: &mut HashMap<usize, postgres::Statement>,
) -> Result<(), postgres::Error> {
    let Mode::Json {
        mapping,
        types,
        upsert,
    } = t.mode
    else {
        unreachable!("insert_json is called in JSON mode only")
    };
    let cols = mapping.columns.len();
    let per_statement = (INSERT_ROWS_MAX * 7 / cols.max(1)).clamp(1, INSERT_ROWS_MAX);
    for chunk in rows.chunks(per_statement) {
        let stmt = match statements.get(&chunk.len()) {
            Some(s) => s.clone(),
            None => {
                let values = values_list(chunk.len(), cols, |c, n| format!("${n}::text::{}", types[c]));
                let sql = format!(
                    "INSERT INTO {} ({}) {values}{}",
                    t.table,
                    quoted_columns(&mapping.columns),
                    if *upsert {
                        on_conflict(&mapping.columns, mapping.key_column)
                    } else {
                        String::new()
                    }
                );
                let s = tx.prepare(&sql)?;
                statements.insert(chunk.len(), s.clone());
                s
            }
        };
        let params: Vec<&(dyn ToSql + Sync)> = chunk
            .iter()
            .flat_map(|r| r.values.iter().map(|v| v as &(dyn ToSql + Sync)))
            .collect();
        tx.execute(&stmt, &params)?;
    }
    Ok(())
}

fn on_conflict(columns: &[String], key_column: usize) -> String {
    let key = quoted_columns(&columns[key_column..=key_column]);
    let set: Vec<String> = columns
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != key_column)
        .map(|(_, c)| {
            let q = quoted_columns(std::slice::from_ref(c));
            format!("{q} = EXCLUDED.{q}")
        })
        .collect();
    if set.is_empty() {
        format!(" ON CONFLICT ({key}) DO NOTHING")
    } else {
        format!(" ON CONFLICT ({key}) DO UPDATE SET {}", set.join(", "))
    }
}

/// Insert each row under its own savepoint; a row PostgreSQL rejects is
/// rolled back alone and comes back in `rejected` with the server's reason.
pub fn json_rows_one_by_one(
    tx: &mut Transaction<'_>,
    t: &Target<'_>,
    rows: &[JsonRow],
    rejected: &mut Vec<DeadLetter>,
) -> Result<(), postgres::Error> {
    let mut statements = HashMap::new();
    for r in rows {
        let mut sp = tx.savepoint("weir_drain_row")?;
        match insert_json(&mut sp, t, &[r], &mut statements) {
            Ok(()) => sp.commit()?,
            Err(e) if crate::sink::is_row_error(&e) => {
                sp.rollback()?;
                statements.clear();
                rejected.push(DeadLetter {
                    partition: r.partition,
                    offset: r.offset,
                    reason: format!("PostgreSQL rejected the row: {}", crate::sink::describe(&e)),
                    key: None,
                    value: Some(row_text(r).into_bytes()),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A rejected row's mapped values, for its dead letter.
fn row_text(r: &JsonRow) -> String {
    serde_json::Value::Array(
        r.values
            .iter()
            .map(|v| {
                v.clone()
                    .map_or(serde_json::Value::Null, serde_json::Value::String)
            })
            .collect(),
    )
    .to_string()
}

pub fn dead_letters<'a>(
    tx: &mut Transaction<'_>,
    t: &Target<'_>,
    letters: impl Iterator<Item = &'a DeadLetter>,
) -> Result<(), postgres::Error> {
    let mut stmt = None;
    for d in letters {
        let s = match &stmt {
            Some(s) => s,
            None => stmt.insert(tx.prepare(
                "INSERT INTO weir_drain_dead_letters (\"group\", topic, partition, \"offset\", reason, key, value) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )?),
        };
        tx.execute(
            s,
            &[
                &t.group,
                &t.topic,
                &d.partition,
                &d.offset,
                &d.reason,
                &d.key,
                &d.value,
            ],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_kafka_millis_when_converted_should_count_microseconds_from_2000() {
        assert_eq!(timestamptz_binary(946_684_800_000), 0);
        assert_eq!(timestamptz_binary(946_684_800_001), 1000);
        assert_eq!(timestamptz_binary(0), -946_684_800_000_000);
    }

    #[test]
    fn given_rows_and_columns_when_listed_should_number_placeholders_in_order() {
        assert_eq!(
            values_list(2, 2, |_, n| format!("${n}")),
            "VALUES ($1, $2), ($3, $4)"
        );
    }
}
