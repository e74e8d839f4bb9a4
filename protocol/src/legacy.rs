//! Answers for request versions Weir does not decode but must not meet with a
//! closed connection: Produce v0-2 and Fetch v0-3 (advertised, because
//! librdkafka 2.0 turns compression on only when the ranges reach v0; see
//! `api.rs`), OffsetCommit v0-1 and DescribeConfigs v0 (not advertised, but
//! clients from before ApiVersions send them blindly). Each gets its own API's
//! response, at the request's version, with UNSUPPORTED_VERSION (35) for every
//! partition or resource it named, so the client sees an error code instead of
//! a dropped connection. These versions carry message format v0/v1 records,
//! which Weir does not convert.
//!
//! Pure: bytes in, bytes out, no I/O. Invariant: the parser checks every length
//! against the bytes left before using it, so a frame cannot make it allocate
//! more than a fixed multiple of its own size or read out of bounds.

use bytes::{BufMut, Bytes, BytesMut};

/// Kafka's UNSUPPORTED_VERSION.
pub const UNSUPPORTED_VERSION: i16 = 35;

const PRODUCE: i16 = 0;
const FETCH: i16 = 1;
const OFFSET_COMMIT: i16 = 8;
const DESCRIBE_CONFIGS: i16 = 32;

/// What to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A whole response frame, size prefix included.
    Respond(Bytes),
    /// A Produce with acks=0: the client reads no answer. Kafka closes the
    /// connection after a failed acks=0 produce so that the client notices.
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed legacy {api_key} v{api_version} request: {reason}")]
pub struct LegacyError {
    pub api_key: i16,
    pub api_version: i16,
    pub reason: &'static str,
}

/// Whether `api_key` at `api_version` is one this module answers.
pub fn covers(api_key: i16, api_version: i16) -> bool {
    matches!(
        (api_key, api_version),
        (PRODUCE, 0..=2) | (FETCH, 0..=3) | (OFFSET_COMMIT, 0..=1) | (DESCRIBE_CONFIGS, 0)
    )
}

/// The answer to `frame` (a request without its size prefix, request header
/// v1), which `covers` must accept.
pub fn answer(frame: &[u8]) -> Result<Answer, LegacyError> {
    let mut c = Cursor { bytes: frame, at: 0 };
    let header = (c.i16(), c.i16(), c.i32());
    let (api_key, api_version, correlation_id) = match header {
        (Some(k), Some(v), Some(id)) => (k, v, id),
        _ => return Err(error(-1, -1, "short header")),
    };
    let fail = |reason| error(api_key, api_version, reason);
    c.string().ok_or(fail("client id"))?;
    let mut body = BytesMut::new();
    body.put_i32(correlation_id);
    match api_key {
        PRODUCE => {
            let acks = c.i16().ok_or(fail("acks"))?;
            c.i32().ok_or(fail("timeout"))?;
            let topics = topics(&mut c, |c| {
                c.i32()?;
                c.bytes32()?;
                Some(())
            })
            .ok_or(fail("topics"))?;
            if acks == 0 {
                return Ok(Answer::Close);
            }
            produce_response(&mut body, api_version, &topics);
        }
        FETCH => {
            c.i32().zip(c.i32()).zip(c.i32()).ok_or(fail("fetch limits"))?;
            if api_version >= 3 {
                c.i32().ok_or(fail("max bytes"))?;
            }
            let topics = topics(&mut c, |c| {
                c.i32()?;
                c.i64()?;
                c.i32()?;
                Some(())
            })
            .ok_or(fail("topics"))?;
            fetch_response(&mut body, api_version, &topics);
        }
        OFFSET_COMMIT => {
            c.string().ok_or(fail("group id"))?;
            if api_version >= 1 {
                c.i32().ok_or(fail("generation"))?;
                c.string().ok_or(fail("member id"))?;
            }
            let topics = topics(&mut c, |c| {
                c.i32()?;
                c.i64()?;
                if api_version >= 1 {
                    c.i64()?;
                }
                c.string()?;
                Some(())
            })
            .ok_or(fail("topics"))?;
            offset_commit_response(&mut body, &topics);
        }
        DESCRIBE_CONFIGS => {
            let resources = describe_configs_resources(&mut c).ok_or(fail("resources"))?;
            describe_configs_response(&mut body, &resources);
        }
        _ => return Err(fail("not a legacy version this module answers")),
    }
    let mut frame = BytesMut::with_capacity(4 + body.len());
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    Ok(Answer::Respond(frame.freeze()))
}

fn error(api_key: i16, api_version: i16, reason: &'static str) -> LegacyError {
    LegacyError {
        api_key,
        api_version,
        reason,
    }
}

/// A topic name (raw bytes, as sent) and the partition indexes under it.
type Topics<'a> = Vec<(&'a [u8], Vec<i32>)>;

/// `[name, [partition i32, rest...]]`, where `rest` skips what follows each
/// partition index; returns the names and indexes.
fn topics<'a>(c: &mut Cursor<'a>, rest: impl Fn(&mut Cursor<'a>) -> Option<()>) -> Option<Topics<'a>> {
    // Each topic takes at least 6 bytes (name length, partition count) and each
    // partition at least 4, so the counts are bounded by the frame's size.
    let count = c.array_len(6)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let name = c.string()?.unwrap_or_default();
        let partitions = c.array_len(4)?;
        let mut indexes = Vec::with_capacity(partitions);
        for _ in 0..partitions {
            let at = c.at;
            indexes.push(c.i32()?);
            c.at = at;
            rest(c)?;
        }
        out.push((name, indexes));
    }
    Some(out)
}

fn describe_configs_resources<'a>(c: &mut Cursor<'a>) -> Option<Vec<(i8, &'a [u8])>> {
    let count = c.array_len(7)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let kind = c.i8()?;
        let name = c.string()?.unwrap_or_default();
        // Nullable array of config names: -1 is null.
        let names = c.i32()?;
        for _ in 0..names.max(0) {
            c.string()?;
        }
        out.push((kind, name));
    }
    Some(out)
}

fn put_string(out: &mut BytesMut, s: &[u8]) {
    out.put_i16(s.len() as i16);
    out.extend_from_slice(s);
}

fn produce_response(out: &mut BytesMut, version: i16, topics: &Topics<'_>) {
    out.put_i32(topics.len() as i32);
    for (name, partitions) in topics {
        put_string(out, name);
        out.put_i32(partitions.len() as i32);
        for &p in partitions {
            out.put_i32(p);
            out.put_i16(UNSUPPORTED_VERSION);
            out.put_i64(-1); // base offset
            if version >= 2 {
                out.put_i64(-1); // log append time
            }
        }
    }
    if version >= 1 {
        out.put_i32(0); // throttle time
    }
}

fn fetch_response(out: &mut BytesMut, version: i16, topics: &Topics<'_>) {
    if version >= 1 {
        out.put_i32(0); // throttle time
    }
    out.put_i32(topics.len() as i32);
    for (name, partitions) in topics {
        put_string(out, name);
        out.put_i32(partitions.len() as i32);
        for &p in partitions {
            out.put_i32(p);
            out.put_i16(UNSUPPORTED_VERSION);
            out.put_i64(-1); // high watermark
            out.put_i32(0); // no records
        }
    }
}

fn offset_commit_response(out: &mut BytesMut, topics: &Topics<'_>) {
    out.put_i32(topics.len() as i32);
    for (name, partitions) in topics {
        put_string(out, name);
        out.put_i32(partitions.len() as i32);
        for &p in partitions {
            out.put_i32(p);
            out.put_i16(UNSUPPORTED_VERSION);
        }
    }
}

fn describe_configs_response(out: &mut BytesMut, resources: &[(i8, &[u8])]) {
    const MESSAGE: &[u8] = b"DescribeConfigs v0 is not supported: use v1 or later";
    out.put_i32(0); // throttle time
    out.put_i32(resources.len() as i32);
    for (kind, name) in resources {
        out.put_i16(UNSUPPORTED_VERSION);
        put_string(out, MESSAGE);
        out.put_i8(*kind);
        put_string(out, name);
        out.put_i32(0); // no configs
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn i8(&mut self) -> Option<i8> {
        Some(self.take(1)?[0] as i8)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A nullable string (i16 length, -1 for null).
    fn string(&mut self) -> Option<Option<&'a [u8]>> {
        match self.i16()? {
            -1 => Some(None),
            n if n >= 0 => Some(Some(self.take(n as usize)?)),
            _ => None,
        }
    }

    /// Nullable bytes with an i32 length, skipped.
    fn bytes32(&mut self) -> Option<()> {
        match self.i32()? {
            -1 => Some(()),
            n if n >= 0 => self.take(n as usize).map(|_| ()),
            _ => None,
        }
    }

    /// An array length whose elements take at least `min_element_bytes` each:
    /// refused if the bytes left cannot hold that many.
    fn array_len(&mut self, min_element_bytes: usize) -> Option<usize> {
        let n = usize::try_from(self.i32()?).ok()?;
        let left = self.bytes.len() - self.at;
        (n.checked_mul(min_element_bytes)? <= left).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(out: &mut BytesMut, key: i16, version: i16, correlation_id: i32) {
        out.put_i16(key);
        out.put_i16(version);
        out.put_i32(correlation_id);
        put_string(out, b"old-client");
    }

    fn produce(version: i16, acks: i16) -> BytesMut {
        let mut f = BytesMut::new();
        header(&mut f, PRODUCE, version, 7);
        f.put_i16(acks);
        f.put_i32(1_000);
        f.put_i32(1);
        put_string(&mut f, b"t");
        f.put_i32(2);
        for p in [0, 3] {
            f.put_i32(p);
            f.put_i32(5);
            f.extend_from_slice(b"xxxxx");
        }
        f
    }

    fn respond(frame: &[u8]) -> Bytes {
        match answer(frame).unwrap() {
            Answer::Respond(b) => b,
            Answer::Close => panic!("expected a response"),
        }
    }

    #[test]
    fn given_a_produce_v2_when_answered_should_list_each_partition_with_unsupported_version() {
        let r = respond(&produce(2, 1));
        let mut want = BytesMut::new();
        want.put_i32(7);
        want.put_i32(1);
        put_string(&mut want, b"t");
        want.put_i32(2);
        for p in [0, 3] {
            want.put_i32(p);
            want.put_i16(35);
            want.put_i64(-1);
            want.put_i64(-1);
        }
        want.put_i32(0);
        assert_eq!(&r[4..], &want[..]);
        assert_eq!(
            i32::from_be_bytes(r[..4].try_into().unwrap()) as usize,
            r.len() - 4
        );
    }

    #[test]
    fn given_a_produce_with_acks_0_should_close() {
        assert_eq!(answer(&produce(0, 0)), Ok(Answer::Close));
    }

    #[test]
    fn given_a_fetch_v3_when_answered_should_put_throttle_first_and_empty_records() {
        let mut f = BytesMut::new();
        header(&mut f, FETCH, 3, 9);
        f.put_i32(-1);
        f.put_i32(500);
        f.put_i32(1);
        f.put_i32(1 << 20);
        f.put_i32(1);
        put_string(&mut f, b"t");
        f.put_i32(1);
        f.put_i32(4);
        f.put_i64(10);
        f.put_i32(1 << 20);
        let r = respond(&f);
        let mut want = BytesMut::new();
        want.put_i32(9);
        want.put_i32(0);
        want.put_i32(1);
        put_string(&mut want, b"t");
        want.put_i32(1);
        want.put_i32(4);
        want.put_i16(35);
        want.put_i64(-1);
        want.put_i32(0);
        assert_eq!(&r[4..], &want[..]);
    }

    #[test]
    fn given_an_offset_commit_v1_and_a_describe_configs_v0_should_answer_per_partition_and_resource() {
        let mut f = BytesMut::new();
        header(&mut f, OFFSET_COMMIT, 1, 3);
        put_string(&mut f, b"g");
        f.put_i32(5);
        put_string(&mut f, b"m");
        f.put_i32(1);
        put_string(&mut f, b"t");
        f.put_i32(1);
        f.put_i32(2);
        f.put_i64(100);
        f.put_i64(-1);
        f.put_i16(-1);
        let r = respond(&f);
        assert_eq!(&r[4..8], &3i32.to_be_bytes());
        assert_eq!(&r[r.len() - 6..], &[0, 0, 0, 2, 0, 35]);

        let mut f = BytesMut::new();
        header(&mut f, DESCRIBE_CONFIGS, 0, 4);
        f.put_i32(1);
        f.put_i8(2);
        put_string(&mut f, b"t");
        f.put_i32(-1);
        let r = respond(&f);
        assert_eq!(&r[4..8], &4i32.to_be_bytes());
        assert_eq!(&r[16..18], &35i16.to_be_bytes(), "after throttle and the count");
    }

    #[test]
    fn given_truncated_or_lying_frames_should_refuse_without_panicking() {
        let full = produce(1, 1);
        for cut in 0..full.len() {
            assert!(answer(&full[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = BytesMut::new();
        header(&mut huge, PRODUCE, 0, 1);
        huge.put_i16(1);
        huge.put_i32(0);
        huge.put_i32(i32::MAX);
        assert!(answer(&huge).is_err(), "a count the frame cannot hold");
    }

    #[test]
    fn given_versions_should_cover_exactly_the_undecoded_ones() {
        assert!(covers(PRODUCE, 2) && !covers(PRODUCE, 3));
        assert!(covers(FETCH, 3) && !covers(FETCH, 4));
        assert!(covers(OFFSET_COMMIT, 1) && !covers(OFFSET_COMMIT, 2));
        assert!(covers(DESCRIBE_CONFIGS, 0) && !covers(DESCRIBE_CONFIGS, 1));
        assert!(!covers(3, 0));
    }
}
