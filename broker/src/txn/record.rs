//! The transaction log's records and framing: each record is the whole metadata
//! of one transactional id (last one wins on replay) or its removal. Frame: u32
//! body length, u32 CRC-32C of the body, body; the file starts with `FILE_MAGIC`.
//! Pure code, no I/O. Invariants: a frame is accepted only whole and with a
//! matching CRC (a torn tail ends the scan); a CRC-valid frame that does not
//! decode is corruption and refuses the file; decoding never panics.

use std::collections::{BTreeSet, HashMap};

use super::state::{TxnMetadata, TxnState};

pub const FILE_MAGIC: &[u8; 8] = b"WEIRTXN1";
const FRAME_HEADER_BYTES: usize = 8;
/// Largest body: an id with `PARTITIONS_PER_TXN_MAX` partitions of long names.
pub const RECORD_BYTES_MAX: usize = 64 * 1024 * 1024;

const KIND_STATE: u8 = 1;
const KIND_REMOVE: u8 = 2;

#[derive(Debug, Clone, PartialEq)]
pub enum TxnRecord {
    State { txn_id: String, meta: TxnMetadata },
    Remove { txn_id: String },
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Names are capped at NAME_BYTES_MAX (< u16::MAX) before they get here.
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub fn encode_record(record: &TxnRecord, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    match record {
        TxnRecord::State { txn_id, meta } => {
            out.push(KIND_STATE);
            put_str(out, txn_id);
            out.extend_from_slice(&meta.producer_id.to_be_bytes());
            out.extend_from_slice(&meta.epoch.to_be_bytes());
            out.extend_from_slice(&meta.timeout_ms.to_be_bytes());
            out.push(meta.state.code());
            out.extend_from_slice(&meta.start_ms.to_be_bytes());
            out.extend_from_slice(&meta.update_ms.to_be_bytes());
            out.extend_from_slice(&(meta.partitions.len() as u32).to_be_bytes());
            for (topic, partition) in &meta.partitions {
                put_str(out, topic);
                out.extend_from_slice(&partition.to_be_bytes());
            }
            out.extend_from_slice(&(meta.groups.len() as u32).to_be_bytes());
            for group in &meta.groups {
                put_str(out, group);
            }
        }
        TxnRecord::Remove { txn_id } => {
            out.push(KIND_REMOVE);
            put_str(out, txn_id);
        }
    }
    let body_len = out.len() - start - FRAME_HEADER_BYTES;
    let crc = crc32c::crc32c(&out[start + FRAME_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&(body_len as u32).to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(i64::from_be_bytes)
    }
    fn string(&mut self) -> Option<String> {
        let len = self.i16()? as u16 as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

pub fn decode_record(body: &[u8]) -> Option<TxnRecord> {
    let mut r = Reader { buf: body };
    let kind = r.u8()?;
    let txn_id = r.string()?;
    let record = match kind {
        KIND_STATE => {
            let producer_id = r.i64()?;
            let epoch = r.i16()?;
            let timeout_ms = r.i32()?;
            let state = TxnState::from_code(r.u8()?)?;
            let start_ms = r.i64()?;
            let update_ms = r.i64()?;
            let mut partitions = BTreeSet::new();
            for _ in 0..r.i32()? as u32 {
                partitions.insert((r.string()?, r.i32()?));
            }
            let mut groups = BTreeSet::new();
            for _ in 0..r.i32()? as u32 {
                groups.insert(r.string()?);
            }
            let meta = TxnMetadata {
                producer_id,
                epoch,
                timeout_ms,
                state,
                partitions,
                groups,
                start_ms,
                update_ms,
            };
            TxnRecord::State { txn_id, meta }
        }
        KIND_REMOVE => TxnRecord::Remove { txn_id },
        _ => return None,
    };
    r.buf.is_empty().then_some(record)
}

/// A replayed file: the live ids, how many bytes are valid, whether a torn
/// tail follows them.
#[derive(Debug, Default)]
pub struct Scan {
    pub txns: HashMap<String, TxnMetadata>,
    pub valid_bytes: usize,
    pub torn: bool,
    pub records: usize,
}

/// Replay `image`. Err for a file that is not ours or holds a CRC-valid frame
/// that does not decode (corruption we must not truncate away).
pub fn scan(image: &[u8]) -> Result<Scan, String> {
    let mut out = Scan::default();
    if image.is_empty() {
        return Ok(out);
    }
    if image.len() < FILE_MAGIC.len() {
        out.torn = true;
        return Ok(out);
    }
    if &image[..FILE_MAGIC.len()] != FILE_MAGIC {
        return Err("not a transaction log (bad magic)".into());
    }
    let mut pos = FILE_MAGIC.len();
    while pos < image.len() {
        let rest = &image[pos..];
        if rest.len() < FRAME_HEADER_BYTES {
            out.torn = true;
            break;
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len > RECORD_BYTES_MAX || rest.len() < FRAME_HEADER_BYTES + len {
            out.torn = true;
            break;
        }
        let body = &rest[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len];
        if crc32c::crc32c(body) != crc {
            out.torn = true;
            break;
        }
        match decode_record(body) {
            Some(TxnRecord::State { txn_id, meta }) => {
                out.txns.insert(txn_id, meta);
            }
            Some(TxnRecord::Remove { txn_id }) => {
                out.txns.remove(&txn_id);
            }
            None => return Err(format!("undecodable record at byte {pos}")),
        }
        out.records += 1;
        pos += FRAME_HEADER_BYTES + len;
    }
    out.valid_bytes = pos;
    Ok(out)
}
