//! LZ4 frame format decoding straight into the caller's scratch buffer: the
//! frame is parsed here and each block is handed to lz4_flex's block decoder,
//! so no per-batch decoder or block buffer is allocated. Pure; any shard.
//! Invariants: output never grows past the caller's limit; every length is
//! checked against the input; linked blocks see at most 64 KiB of earlier
//! output of the same frame. Header and content checksums are not verified:
//! the batch's CRC-32C already covers every compressed byte.

use lz4_flex::block::{decompress_into, decompress_into_with_dict, DecompressError};

/// Why an LZ4 payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum Lz4Error {
    #[error("lz4 frame is malformed at byte {position}: {reason}")]
    Malformed { position: usize, reason: &'static str },
    #[error("lz4 block at byte {position} is corrupt: {source}")]
    Block {
        position: usize,
        #[source]
        source: DecompressError,
    },
    #[error("decompressed payload exceeds the limit of {limit_bytes} bytes")]
    TooLarge { limit_bytes: usize },
}

const FRAME_MAGIC: u32 = 0x184D_2204;
/// Skippable frames (any content, ignored) use magics 0x184D2A50..=0x184D2A5F.
const SKIPPABLE_MAGIC_BASE: u32 = 0x184D_2A50;
/// A linked block may copy from this far back in the frame's earlier output.
const WINDOW_BYTES: usize = 64 * 1024;
/// Block-size field flag: the block is stored uncompressed.
const UNCOMPRESSED_FLAG: u32 = 0x8000_0000;

/// Decode every frame in `input`, appending to `out` (not cleared), refusing
/// output beyond `limit_bytes` in total.
pub fn decompress_frames(input: &[u8], out: &mut Vec<u8>, limit_bytes: usize) -> Result<(), Lz4Error> {
    let mut position = 0;
    while position < input.len() {
        position = decode_frame(input, position, out, limit_bytes)?;
    }
    Ok(())
}

fn u32_le(input: &[u8], position: usize) -> Result<u32, Lz4Error> {
    let bytes = input.get(position..position + 4).ok_or(Lz4Error::Malformed {
        position,
        reason: "truncated",
    })?;
    Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
}

/// The frame options the decoder needs, from the FLG and BD bytes.
struct Descriptor {
    block_max_bytes: usize,
    independent: bool,
    block_checksum: bool,
    content_checksum: bool,
    /// Bytes of FLG, BD, optional content size and HC.
    header_bytes: usize,
}

fn descriptor(input: &[u8], position: usize) -> Result<Descriptor, Lz4Error> {
    let malformed = |reason| Lz4Error::Malformed { position, reason };
    let (flg, bd) = match input.get(position..position + 2) {
        Some(&[flg, bd]) => (flg, bd),
        _ => return Err(malformed("truncated frame descriptor")),
    };
    if flg >> 6 != 0b01 || flg & 0b10 != 0 || bd & 0x8f != 0 {
        return Err(malformed("unsupported version or reserved bits set"));
    }
    if flg & 0b1 != 0 {
        return Err(malformed("dictionary ids are not supported"));
    }
    let block_max_bytes = match (bd >> 4) & 0x7 {
        4 => 64 * 1024,
        5 => 256 * 1024,
        6 => 1024 * 1024,
        7 => 4 * 1024 * 1024,
        _ => return Err(malformed("invalid block maximum size")),
    };
    let content_size_bytes = if flg & 0x08 != 0 { 8 } else { 0 };
    Ok(Descriptor {
        block_max_bytes,
        independent: flg & 0x20 != 0,
        block_checksum: flg & 0x10 != 0,
        content_checksum: flg & 0x04 != 0,
        header_bytes: 2 + content_size_bytes + 1,
    })
}

/// Decode the frame starting at `start`; returns the position after it.
fn decode_frame(
    input: &[u8],
    start: usize,
    out: &mut Vec<u8>,
    limit_bytes: usize,
) -> Result<usize, Lz4Error> {
    let magic = u32_le(input, start)?;
    if magic & 0xffff_fff0 == SKIPPABLE_MAGIC_BASE {
        let size = u32_le(input, start + 4)? as usize;
        let end = (start + 8).checked_add(size).filter(|end| *end <= input.len());
        return end.ok_or(Lz4Error::Malformed {
            position: start,
            reason: "skippable frame overruns the input",
        });
    }
    if magic != FRAME_MAGIC {
        return Err(Lz4Error::Malformed {
            position: start,
            reason: "bad magic",
        });
    }
    let d = descriptor(input, start + 4)?;
    let frame_out_start = out.len();
    let mut position = start + 4 + d.header_bytes;
    loop {
        let word = u32_le(input, position)?;
        position += 4;
        if word == 0 {
            break;
        }
        let size = (word & !UNCOMPRESSED_FLAG) as usize;
        if size > d.block_max_bytes {
            return Err(Lz4Error::Malformed {
                position,
                reason: "block larger than the frame's maximum",
            });
        }
        let block = input.get(position..position + size).ok_or(Lz4Error::Malformed {
            position,
            reason: "block overruns the input",
        })?;
        if word & UNCOMPRESSED_FLAG != 0 {
            if out.len() + size > limit_bytes {
                return Err(Lz4Error::TooLarge { limit_bytes });
            }
            out.extend_from_slice(block);
        } else {
            let linked_from = (!d.independent).then_some(frame_out_start);
            decode_block(block, position, out, d.block_max_bytes, linked_from, limit_bytes)?;
        }
        position += size + if d.block_checksum { 4 } else { 0 };
    }
    position += if d.content_checksum { 4 } else { 0 };
    if position > input.len() {
        return Err(Lz4Error::Malformed {
            position: input.len(),
            reason: "truncated checksum",
        });
    }
    Ok(position)
}

/// Decompress one block onto the end of `out`. `linked_from` is where the
/// frame's output starts when blocks may refer to earlier ones.
fn decode_block(
    block: &[u8],
    position: usize,
    out: &mut Vec<u8>,
    block_max_bytes: usize,
    linked_from: Option<usize>,
    limit_bytes: usize,
) -> Result<(), Lz4Error> {
    let at = out.len();
    let room = block_max_bytes.min(limit_bytes.saturating_sub(at));
    out.resize(at + room, 0);
    let (before, target) = out.split_at_mut(at);
    let result = match linked_from {
        Some(frame_start) if at > frame_start => {
            let dict = &before[at.saturating_sub(WINDOW_BYTES).max(frame_start)..];
            decompress_into_with_dict(block, target, dict)
        }
        _ => decompress_into(block, target),
    };
    match result {
        Ok(written) => {
            out.truncate(at + written);
            Ok(())
        }
        Err(DecompressError::OutputTooSmall { .. }) if room < block_max_bytes => {
            out.truncate(at);
            Err(Lz4Error::TooLarge { limit_bytes })
        }
        Err(source) => {
            out.truncate(at);
            Err(Lz4Error::Block { position, source })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    use std::io::Write;

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| ((i * 7) % 251) as u8 ^ (i / 300) as u8)
            .collect()
    }

    fn encode(input: &[u8], info: FrameInfo) -> Vec<u8> {
        let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(input).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn given_frames_of_every_shape_when_decoded_should_return_the_input() {
        let input = sample(150_000);
        for mode in [BlockMode::Independent, BlockMode::Linked] {
            for size in [BlockSize::Max64KB, BlockSize::Max256KB] {
                for (block_checksums, content_checksum, content_size) in
                    [(false, false, None), (true, true, Some(150_000u64))]
                {
                    let info = FrameInfo::new()
                        .block_mode(mode)
                        .block_size(size)
                        .block_checksums(block_checksums)
                        .content_checksum(content_checksum)
                        .content_size(content_size);
                    let frame = encode(&input, info);
                    let mut out = Vec::new();
                    decompress_frames(&frame, &mut out, input.len()).unwrap();
                    assert!(out == input, "{mode:?} {size:?} {block_checksums}");
                    let err = decompress_frames(&frame, &mut Vec::new(), input.len() - 1).unwrap_err();
                    let limit = input.len() - 1;
                    assert!(
                        matches!(err, Lz4Error::TooLarge { limit_bytes } if limit_bytes == limit),
                        "{err}"
                    );
                }
            }
        }
    }

    #[test]
    fn given_a_damaged_frame_when_decoded_should_error_not_panic() {
        let frame = encode(&sample(100_000), FrameInfo::new().block_mode(BlockMode::Linked));
        for cut in [0, 3, 5, 7, 11, 100, frame.len() / 2, frame.len() - 1] {
            assert!(
                decompress_frames(&frame[..cut], &mut Vec::new(), 1 << 20).is_err() || cut == 0,
                "cut {cut}"
            );
        }
        for i in (0..frame.len()).step_by(997) {
            let mut bad = frame.clone();
            bad[i] ^= 0x5a;
            let _ = decompress_frames(&bad, &mut Vec::new(), 1 << 20);
        }
    }
}
