//! Mapping Kafka records to table rows, and the COPY text encoding of those rows.
//!
//! Owns the two mappings: raw (every record becomes one row of topic,
//! partition, offset, timestamp, key, value and headers) and JSON (a record's
//! value is a JSON object whose fields fill the columns of the same name; the
//! record key fills the key column). A record that cannot be mapped becomes a
//! `DeadLetter` with the reason: never dropped. Pure; any thread.

use serde_json::Value;
use weir_protocol::records::Record;

/// One raw-mode row: the record as it is.
#[derive(Debug, Clone)]
pub struct RawRow {
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// The headers as a JSON array of `{"key":..,"value":..}` objects.
    pub headers: String,
}

/// One JSON-mode row: the text of every column of the table, in column
/// order (`None` is SQL NULL); PostgreSQL parses each as its column's type.
#[derive(Debug, Clone)]
pub struct JsonRow {
    pub partition: i32,
    pub offset: i64,
    pub values: Vec<Option<String>>,
}

/// A record that could not become a row, with why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

impl DeadLetter {
    pub fn of(partition: i32, record: &Record<'_>, reason: impl Into<String>) -> Self {
        Self {
            partition,
            offset: record.offset,
            reason: reason.into(),
            key: record.key.map(<[u8]>::to_vec),
            value: record.value.map(<[u8]>::to_vec),
        }
    }
}

pub fn raw_row(partition: i32, record: &Record<'_>) -> RawRow {
    RawRow {
        partition,
        offset: record.offset,
        timestamp_ms: record.timestamp_ms,
        key: record.key.map(<[u8]>::to_vec),
        value: record.value.map(<[u8]>::to_vec),
        headers: headers_json(record),
    }
}

/// Headers may repeat a key and hold any bytes: a value that is not UTF-8 is
/// kept as `value_hex`, so nothing is lost.
fn headers_json(record: &Record<'_>) -> String {
    let list: Vec<Value> = record
        .headers
        .iter()
        .map(|(k, v)| {
            let mut o = serde_json::Map::new();
            o.insert(
                "key".into(),
                Value::String(String::from_utf8_lossy(k).into_owned()),
            );
            match v.map(std::str::from_utf8) {
                None => {
                    o.insert("value".into(), Value::Null);
                }
                Some(Ok(s)) => {
                    o.insert("value".into(), Value::String(s.to_string()));
                }
                Some(Err(_)) => {
                    o.insert("value_hex".into(), Value::String(hex(v.unwrap_or_default())));
                }
            }
            Value::Object(o)
        })
        .collect();
    Value::Array(list).to_string()
}

/// The JSON mapping: `columns` are the table's columns, `key_column` the index
/// of the one the record key fills.
#[derive(Debug, Clone)]
pub struct JsonMapping {
    pub columns: Vec<String>,
    pub key_column: usize,
}

impl JsonMapping {
    /// A row, or the reason the record does not map. Fields of the value
    /// that name no column are ignored; columns the value lacks are NULL.
    pub fn map(&self, partition: i32, record: &Record<'_>) -> Result<JsonRow, String> {
        let key = record
            .key
            .ok_or("the record has no key (the key column needs one)")?;
        let key = std::str::from_utf8(key).map_err(|_| "the record key is not UTF-8")?;
        let value = record.value.ok_or("the record has no value (a tombstone)")?;
        let doc: Value = serde_json::from_slice(value).map_err(|e| format!("the value is not JSON: {e}"))?;
        let Value::Object(fields) = doc else {
            return Err("the value is JSON but not an object".into());
        };
        let values = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == self.key_column {
                    return Some(key.to_string());
                }
                match fields.get(c) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(v) => Some(v.to_string()),
                }
            })
            .collect();
        Ok(JsonRow {
            partition,
            offset: record.offset,
            values,
        })
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::new();
    push_hex(&mut s, bytes);
    s
}

/// Append `text` escaped for COPY's text format.
pub fn copy_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Map one record built from `key` and `value` (offset 0) with `m`.
    fn map(m: &JsonMapping, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<JsonRow, String> {
        let mut b = weir_protocol::builder::BatchBuilder::new(weir_protocol::record_batch::Compression::None);
        b.push(1, key, value, &[]);
        let mut out = bytes::BytesMut::new();
        b.finish_into(&mut out).unwrap();
        let mut scratch = Vec::new();
        let mut it = weir_protocol::records::records(&out, &mut scratch, 1 << 20).unwrap();
        m.map(3, &it.next().unwrap().unwrap())
    }

    #[test]
    fn given_copy_special_characters_when_escaped_should_round_trip_in_copy_text() {
        let mut s = String::new();
        copy_text(&mut s, "a\tb\\c\nd");
        assert_eq!(s, "a\\tb\\\\c\\nd");
        assert_eq!(hex(&[0, 255]), "00ff");
    }

    #[test]
    fn given_json_values_when_mapped_should_fill_columns_or_give_a_reason() {
        let m = JsonMapping {
            columns: vec!["id".into(), "n".into(), "tags".into()],
            key_column: 0,
        };
        let row = map(&m, Some(b"k1"), Some(br#"{"n":5,"tags":["x"],"other":1}"#)).unwrap();
        assert_eq!(
            row.values,
            vec![Some("k1".into()), Some("5".into()), Some(r#"["x"]"#.into())]
        );
        assert!(map(&m, None, Some(b"{}")).unwrap_err().contains("no key"));
        assert!(map(&m, Some(b"k"), Some(b"nope"))
            .unwrap_err()
            .contains("not JSON"));
        assert!(map(&m, Some(b"k"), Some(b"[1]"))
            .unwrap_err()
            .contains("not an object"));
    }
}
