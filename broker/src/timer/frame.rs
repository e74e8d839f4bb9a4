//! The timer store's journal records (docs/format.md, "Timer store"): ADD (a
//! delayed batch and its records' due times), FIRE (an intent: these records
//! are about to be appended to a partition at this producer sequence) and DONE
//! (a FIRE resolved: appended, or cancelled and pending again). Pure codecs.

pub const ADD: u8 = 1;
pub const FIRE: u8 = 2;
pub const DONE: u8 = 3;

/// A decoded frame; slices borrow the payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Add {
        id: u64,
        topic: &'a str,
        partition: i32,
        /// Big-endian i64 due times, one per record of `batch`.
        dues: &'a [u8],
        /// Offset of the batch bytes within the payload.
        batch_at: usize,
    },
    Fire {
        id: u64,
        topic: &'a str,
        partition: i32,
        base_sequence: i32,
        /// (entry id u64, record index u32) big-endian pairs, in append order.
        items: &'a [u8],
    },
    Done {
        fire: u64,
        appended: bool,
    },
}

pub const ITEM_BYTES: usize = 12;

fn head(kind: u8, id: u64, topic: &str, partition: i32, out: &mut Vec<u8>) {
    out.push(kind);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    out.extend_from_slice(topic.as_bytes());
}

/// ADD: returns the offset of the batch within the payload.
pub fn encode_add(
    id: u64,
    topic: &str,
    partition: i32,
    dues: &[i64],
    batch: &[u8],
    out: &mut Vec<u8>,
) -> usize {
    out.reserve(32 + topic.len() + dues.len() * 8 + batch.len());
    head(ADD, id, topic, partition, out);
    out.extend_from_slice(&(dues.len() as u32).to_be_bytes());
    for d in dues {
        out.extend_from_slice(&d.to_be_bytes());
    }
    let at = out.len();
    out.extend_from_slice(batch);
    at
}

pub fn encode_fire(
    id: u64,
    topic: &str,
    partition: i32,
    base_sequence: i32,
    items: &[(u64, u32)],
    out: &mut Vec<u8>,
) {
    head(FIRE, id, topic, partition, out);
    out.extend_from_slice(&base_sequence.to_be_bytes());
    out.extend_from_slice(&(items.len() as u32).to_be_bytes());
    for (entry, index) in items {
        out.extend_from_slice(&entry.to_be_bytes());
        out.extend_from_slice(&index.to_be_bytes());
    }
}

pub fn encode_done(fire: u64, appended: bool) -> Vec<u8> {
    let mut out = vec![DONE];
    out.extend_from_slice(&fire.to_be_bytes());
    out.push(u8::from(appended));
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn topic(&mut self) -> Option<&'a str> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().ok()?);
        std::str::from_utf8(self.take(len as usize)?).ok()
    }
}

/// Decode a payload; `None` for one this version cannot read.
pub fn decode(payload: &[u8]) -> Option<Frame<'_>> {
    let mut r = Reader {
        bytes: payload,
        at: 1,
    };
    match *payload.first()? {
        ADD => {
            let id = r.u64()?;
            let partition = r.i32()?;
            let topic = r.topic()?;
            let n = r.u32()? as usize;
            let dues = r.take(n.checked_mul(8)?)?;
            Some(Frame::Add {
                id,
                topic,
                partition,
                dues,
                batch_at: r.at,
            })
        }
        FIRE => {
            let id = r.u64()?;
            let partition = r.i32()?;
            let topic = r.topic()?;
            let base_sequence = r.i32()?;
            let n = r.u32()? as usize;
            let items = r.take(n.checked_mul(ITEM_BYTES)?)?;
            Some(Frame::Fire {
                id,
                topic,
                partition,
                base_sequence,
                items,
            })
        }
        DONE => {
            let fire = r.u64()?;
            let appended = *r.take(1)?.first()? == 1;
            Some(Frame::Done { fire, appended })
        }
        _ => None,
    }
}

/// The due times of an ADD.
pub fn dues(bytes: &[u8]) -> impl Iterator<Item = i64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|c| i64::from_be_bytes(c.try_into().expect("8 bytes")))
}

/// The (entry, record index) pairs of a FIRE.
pub fn items(bytes: &[u8]) -> impl Iterator<Item = (u64, u32)> + '_ {
    bytes.chunks_exact(ITEM_BYTES).map(|c| {
        (
            u64::from_be_bytes(c[..8].try_into().expect("8 bytes")),
            u32::from_be_bytes(c[8..].try_into().expect("4 bytes")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut add = Vec::new();
        let at = encode_add(7, "t", 3, &[10, 20], b"BATCH", &mut add);
        let Some(Frame::Add {
            id,
            topic,
            partition,
            dues: d,
            batch_at,
        }) = decode(&add)
        else {
            panic!("add")
        };
        assert_eq!((id, topic, partition, batch_at), (7, "t", 3, at));
        assert_eq!(dues(d).collect::<Vec<_>>(), vec![10, 20]);
        assert_eq!(&add[batch_at..], b"BATCH");
        let mut fire = Vec::new();
        encode_fire(9, "t", 3, 42, &[(7, 1), (7, 0)], &mut fire);
        let Some(Frame::Fire {
            base_sequence,
            items: i,
            ..
        }) = decode(&fire)
        else {
            panic!("fire")
        };
        assert_eq!(base_sequence, 42);
        assert_eq!(items(i).collect::<Vec<_>>(), vec![(7, 1), (7, 0)]);
        assert_eq!(
            decode(&encode_done(9, true)),
            Some(Frame::Done {
                fire: 9,
                appended: true
            })
        );
        assert_eq!(decode(&fire[..fire.len() - 1]), None, "truncated");
    }
}
