//! Zigzag varints as RecordBatch v2 records use them (protobuf encoding).
//! Pure functions; any shard. Decoding never reads past the slice and refuses
//! encodings longer than the type allows, so hostile bytes cannot loop or panic.

/// Longest zigzag varint for an i32 (5 x 7 bits >= 32).
pub const VARINT_BYTES_MAX: usize = 5;
/// Longest zigzag varlong for an i64 (10 x 7 bits >= 64).
pub const VARLONG_BYTES_MAX: usize = 10;

/// Decode an unsigned LEB128 of at most `bytes_max` bytes from `bytes[*position..]`.
#[inline]
fn read_unsigned(bytes: &[u8], position: &mut usize, bytes_max: usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..bytes_max {
        let byte = *bytes.get(*position + i)?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *position += i + 1;
            return Some(value);
        }
    }
    None
}

/// Read a zigzag varint (i32); `None` if truncated or overlong.
#[inline]
pub fn read_varint(bytes: &[u8], position: &mut usize) -> Option<i32> {
    let mut end = *position;
    let raw = u32::try_from(read_unsigned(bytes, &mut end, VARINT_BYTES_MAX)?).ok()?;
    *position = end;
    Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Read a zigzag varlong (i64); `None` if truncated or overlong.
#[inline]
pub fn read_varlong(bytes: &[u8], position: &mut usize) -> Option<i64> {
    let raw = read_unsigned(bytes, position, VARLONG_BYTES_MAX)?;
    Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn zigzag32(value: i32) -> u64 {
    u64::from(((value << 1) ^ (value >> 31)) as u32)
}

fn zigzag64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unsigned_len(mut raw: u64) -> usize {
    let mut len = 1;
    while raw >= 0x80 {
        raw >>= 7;
        len += 1;
    }
    len
}

fn put_unsigned(out: &mut Vec<u8>, mut raw: u64) {
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// Encoded size of `value` as a zigzag varint.
pub fn varint_len(value: i32) -> usize {
    unsigned_len(zigzag32(value))
}

/// Encoded size of `value` as a zigzag varlong.
pub fn varlong_len(value: i64) -> usize {
    unsigned_len(zigzag64(value))
}

pub fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_unsigned(out, zigzag32(value));
}

pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    put_unsigned(out, zigzag64(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_edge_values_when_round_tripped_should_match_and_report_their_length() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            let mut p = 0;
            assert_eq!(read_varint(&out, &mut p), Some(v));
            assert_eq!(p, out.len());
        }
        for v in [0, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(out.len(), varlong_len(v));
            let mut p = 0;
            assert_eq!(read_varlong(&out, &mut p), Some(v));
        }
    }

    #[test]
    fn given_overlong_or_truncated_input_when_read_should_return_none() {
        let mut p = 0;
        assert_eq!(read_varint(&[0xff; 6], &mut p), None);
        assert_eq!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x7f], &mut p), None);
        assert_eq!(read_varlong(&[0x80], &mut p), None);
        assert_eq!(p, 0);
    }
}
