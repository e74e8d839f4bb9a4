//! The RecordBatch compression codecs: gzip, snappy, lz4 and zstd, as Kafka
//! clients write them. Pure functions over byte slices; any shard may use them.
//!
//! Invariants: decompression never writes more than the caller's
//! `decompressed_max_bytes` into the output (a zip bomb is refused, not
//! inflated); bad input returns a `CompressionError`, never panics. Snappy is
//! read in both framings (raw block from librdkafka, xerial from Java and
//! kafka-python) and written xerial-framed, like the Java client. A
//! `Compressor` keeps its codec contexts so a hot producer loop reuses them.

use std::io::Read;

use crate::lz4_frame::{self, Lz4Error};
use crate::record_batch::Compression;

/// The xerial snappy-java stream magic that opens a framed snappy payload.
pub const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic (8) + version (4) + compatible version (4).
const XERIAL_HEADER_BYTES: usize = 16;
/// Uncompressed bytes per xerial block: snappy-java's default block size, so
/// our framed output looks like the Java client's.
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;
/// gzip level: Kafka's and librdkafka's default (zlib's 6).
const GZIP_LEVEL: u32 = 6;
/// zstd level: Kafka's and librdkafka's default.
const ZSTD_LEVEL: i32 = 3;
/// Largest zstd window (log2 bytes) a frame may declare. The streaming decoder
/// allocates the declared window up front, so without this a 30-byte frame could
/// cost 2 GiB. Java's streaming encoder declares 2^21 at the default level and
/// at most 2^23 up to level 19; one-shot encoders (librdkafka, kafka-python)
/// declare no more than the content size.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;
/// The fixed 10-byte gzip member header we write: no name, no mtime, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Why a payload could not be compressed or decompressed.
#[derive(Debug, thiserror::Error)]
pub enum CompressionError {
    #[error("{codec:?} payload is corrupt")]
    Corrupt {
        codec: Compression,
        #[source]
        source: std::io::Error,
    },
    #[error("snappy payload is corrupt")]
    Snappy(#[source] snap::Error),
    #[error("lz4 payload is corrupt")]
    Lz4(#[source] Lz4Error),
    #[error("xerial snappy framing is malformed at byte {position}")]
    BadXerialFraming { position: usize },
    #[error("decompressed payload exceeds the limit of {limit_bytes} bytes")]
    TooLarge { limit_bytes: usize },
    #[error("{codec:?} compression failed")]
    Encode {
        codec: Compression,
        #[source]
        source: std::io::Error,
    },
}

/// Decompress `input` written with `codec` into `out` (cleared first; its
/// capacity is reused). Refuses, with `TooLarge`, any payload that would
/// inflate beyond `decompressed_max_bytes`.
pub fn decompress(
    codec: Compression,
    input: &[u8],
    out: &mut Vec<u8>,
    decompressed_max_bytes: usize,
) -> Result<(), CompressionError> {
    out.clear();
    match codec {
        Compression::None => {
            if input.len() > decompressed_max_bytes {
                return Err(CompressionError::TooLarge {
                    limit_bytes: decompressed_max_bytes,
                });
            }
            out.extend_from_slice(input);
            Ok(())
        }
        // Java's GZIPInputStream reads concatenated members; so do we.
        Compression::Gzip => read_bounded(
            codec,
            flate2::read::MultiGzDecoder::new(input),
            out,
            decompressed_max_bytes,
        ),
        Compression::Snappy => decompress_snappy(input, out, decompressed_max_bytes),
        Compression::Lz4 => match lz4_frame::decompress_frames(input, out, decompressed_max_bytes) {
            Ok(()) => Ok(()),
            Err(Lz4Error::TooLarge { limit_bytes }) => {
                out.clear();
                Err(CompressionError::TooLarge { limit_bytes })
            }
            Err(e) => Err(CompressionError::Lz4(e)),
        },
        Compression::Zstd => {
            let corrupt = |source| CompressionError::Corrupt { codec, source };
            let mut decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(corrupt)?;
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(corrupt)?;
            read_bounded(codec, decoder, out, decompressed_max_bytes)
        }
    }
}

/// Read `reader` to its end into `out`, stopping one byte past the limit so a
/// bomb costs at most `limit + 1` bytes (plus `Vec` growth slack) of memory.
fn read_bounded(
    codec: Compression,
    reader: impl Read,
    out: &mut Vec<u8>,
    limit_bytes: usize,
) -> Result<(), CompressionError> {
    let limit_plus_one = u64::try_from(limit_bytes).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(limit_plus_one)
        .read_to_end(out)
        .map_err(|source| CompressionError::Corrupt { codec, source })?;
    if out.len() > limit_bytes {
        out.clear();
        return Err(CompressionError::TooLarge { limit_bytes });
    }
    Ok(())
}

fn decompress_snappy(input: &[u8], out: &mut Vec<u8>, limit_bytes: usize) -> Result<(), CompressionError> {
    let mut decoder = snap::raw::Decoder::new();
    if !input.starts_with(&XERIAL_MAGIC) {
        return append_snappy_block(&mut decoder, input, out, limit_bytes);
    }
    if input.len() < XERIAL_HEADER_BYTES {
        return Err(CompressionError::BadXerialFraming {
            position: input.len(),
        });
    }
    let mut position = XERIAL_HEADER_BYTES;
    while position < input.len() {
        let length_bytes = input
            .get(position..position + 4)
            .ok_or(CompressionError::BadXerialFraming { position })?;
        let block_bytes = u32::from_be_bytes(length_bytes.try_into().expect("4 bytes")) as usize;
        let start = position + 4;
        let block = start
            .checked_add(block_bytes)
            .and_then(|end| input.get(start..end))
            .ok_or(CompressionError::BadXerialFraming { position })?;
        append_snappy_block(&mut decoder, block, out, limit_bytes)?;
        position = start + block_bytes;
    }
    Ok(())
}

/// Decode one raw snappy block onto the end of `out`. The block states its
/// decompressed length up front, so the limit is checked before any work.
fn append_snappy_block(
    decoder: &mut snap::raw::Decoder,
    block: &[u8],
    out: &mut Vec<u8>,
    limit_bytes: usize,
) -> Result<(), CompressionError> {
    let block_out_bytes = snap::raw::decompress_len(block).map_err(CompressionError::Snappy)?;
    let start = out.len();
    if block_out_bytes > limit_bytes.saturating_sub(start) {
        out.clear();
        return Err(CompressionError::TooLarge { limit_bytes });
    }
    out.resize(start + block_out_bytes, 0);
    match decoder.decompress(block, &mut out[start..]) {
        Ok(written) if written == block_out_bytes => Ok(()),
        Ok(_) => Err(CompressionError::Snappy(snap::Error::HeaderMismatch {
            expected_len: block_out_bytes as u64,
            got_len: 0,
        })),
        Err(e) => Err(CompressionError::Snappy(e)),
    }
}

/// Reusable compression state: the deflate and zstd contexts live as long as
/// the compressor, so compressing one batch after another allocates nothing
/// once the output buffer has grown.
pub struct Compressor {
    deflate: flate2::Compress,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    snappy: snap::raw::Encoder,
    /// Writes one frame per batch into its inner Vec, which is swapped with
    /// the caller's output so both buffers keep their capacity.
    lz4: Option<lz4_flex::frame::FrameEncoder<Vec<u8>>>,
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    pub fn new() -> Self {
        Self {
            deflate: flate2::Compress::new(flate2::Compression::new(GZIP_LEVEL), false),
            zstd: None,
            snappy: snap::raw::Encoder::new(),
            lz4: None,
        }
    }

    /// Compress `input` with `codec` into `out` (cleared first).
    pub fn compress(
        &mut self,
        codec: Compression,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CompressionError> {
        out.clear();
        match codec {
            Compression::None => out.extend_from_slice(input),
            Compression::Gzip => self.compress_gzip(input, out)?,
            Compression::Snappy => self.compress_snappy_xerial(input, out)?,
            Compression::Lz4 => self.compress_lz4(input, out)?,
            Compression::Zstd => self.compress_zstd(input, out)?,
        }
        Ok(())
    }

    /// One gzip member (RFC 1952): fixed header, raw deflate, CRC-32, ISIZE.
    fn compress_gzip(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
        let codec = Compression::Gzip;
        out.extend_from_slice(&GZIP_HEADER);
        self.deflate.reset();
        // Deflate's worst case is a few bytes per 16 KiB block over the input.
        out.reserve(input.len() + input.len() / 1000 + 64);
        loop {
            let consumed = self.deflate.total_in() as usize;
            let status = self
                .deflate
                .compress_vec(&input[consumed..], out, flate2::FlushCompress::Finish)
                .map_err(|e| CompressionError::Encode {
                    codec,
                    source: std::io::Error::other(e),
                })?;
            if status == flate2::Status::StreamEnd {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        let mut crc = flate2::Crc::new();
        crc.update(input);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(input.len() as u32).to_le_bytes());
        Ok(())
    }

    /// xerial framing as snappy-java writes it: header, then [i32 length, block].
    fn compress_snappy_xerial(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
        out.extend_from_slice(&XERIAL_MAGIC);
        out.extend_from_slice(&1i32.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
        for chunk in input.chunks(XERIAL_BLOCK_BYTES) {
            let length_at = out.len();
            let max_bytes = snap::raw::max_compress_len(chunk.len());
            out.resize(length_at + 4 + max_bytes, 0);
            let written = self
                .snappy
                .compress(chunk, &mut out[length_at + 4..])
                .map_err(CompressionError::Snappy)?;
            out.truncate(length_at + 4 + written);
            out[length_at..length_at + 4].copy_from_slice(&(written as u32).to_be_bytes());
        }
        Ok(())
    }

    /// LZ4 frame format with 64 KiB independent blocks, as the Java client and
    /// librdkafka write it. The encoder (hash table, block buffers) is reused:
    /// `try_finish` closes the frame and the next write opens a fresh one.
    fn compress_lz4(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
        use std::io::Write;
        let codec = Compression::Lz4;
        let encoder = self.lz4.get_or_insert_with(|| {
            let info = FrameInfo::new()
                .block_size(BlockSize::Max64KB)
                .block_mode(BlockMode::Independent);
            FrameEncoder::with_frame_info(info, Vec::new())
        });
        std::mem::swap(encoder.get_mut(), out);
        let written = encoder
            .write_all(input)
            .map_err(|source| CompressionError::Encode { codec, source });
        let finished = written.and_then(|()| {
            encoder.try_finish().map_err(|e| CompressionError::Encode {
                codec,
                source: std::io::Error::other(e),
            })
        });
        std::mem::swap(encoder.get_mut(), out);
        if finished.is_err() {
            // A failed frame leaves the encoder mid-stream: start over next time.
            self.lz4 = None;
        }
        finished
    }

    fn compress_zstd(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
        let codec = Compression::Zstd;
        if self.zstd.is_none() {
            let ctx = zstd::bulk::Compressor::new(ZSTD_LEVEL)
                .map_err(|source| CompressionError::Encode { codec, source })?;
            self.zstd = Some(ctx);
        }
        let ctx = self.zstd.as_mut().expect("zstd context set above");
        out.reserve(zstd::zstd_safe::compress_bound(input.len()));
        ctx.compress_to_buffer(input, out)
            .map_err(|source| CompressionError::Encode { codec, source })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ (i / 7) as u8).collect()
    }

    #[test]
    fn given_each_codec_when_round_tripped_should_return_the_input() {
        let mut compressor = Compressor::new();
        let (mut packed, mut unpacked) = (Vec::new(), Vec::new());
        for len in [0, 1, 100, XERIAL_BLOCK_BYTES + 17, 200_000] {
            let input = sample(len);
            for codec in ALL {
                compressor.compress(codec, &input, &mut packed).unwrap();
                decompress(codec, &packed, &mut unpacked, len).unwrap();
                assert_eq!(unpacked, input, "{codec:?} len {len}");
            }
        }
    }

    #[test]
    fn given_a_payload_over_the_limit_when_decompressed_should_be_too_large() {
        let mut compressor = Compressor::new();
        let (mut packed, mut unpacked) = (Vec::new(), Vec::new());
        let bomb = vec![0u8; 4 << 20];
        for codec in ALL {
            compressor.compress(codec, &bomb, &mut packed).unwrap();
            let err = decompress(codec, &packed, &mut unpacked, 64 * 1024).unwrap_err();
            assert!(
                matches!(err, CompressionError::TooLarge { limit_bytes: 65536 }),
                "{codec:?}: {err}"
            );
            assert!(
                unpacked.capacity() <= 4 * 64 * 1024 + 8192,
                "{codec:?} grew to {}",
                unpacked.capacity()
            );
        }
    }

    #[test]
    fn given_a_zstd_frame_declaring_a_huge_window_when_decompressed_should_refuse_it() {
        use std::io::Write;
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.window_log(ZSTD_WINDOW_LOG_MAX + 3).unwrap();
        encoder.write_all(&sample(1000)).unwrap();
        let frame = encoder.finish().unwrap();
        let mut out = Vec::new();
        let err = decompress(Compression::Zstd, &frame, &mut out, 1 << 20).unwrap_err();
        assert!(
            matches!(
                err,
                CompressionError::Corrupt {
                    codec: Compression::Zstd,
                    ..
                }
            ),
            "{err}"
        );
        // The same content with the default window decodes.
        let frame = zstd::stream::encode_all(&sample(1000)[..], 3).unwrap();
        decompress(Compression::Zstd, &frame, &mut out, 1 << 20).unwrap();
    }

    #[test]
    fn given_a_raw_snappy_block_when_decompressed_should_be_accepted() {
        let input = sample(5000);
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        let mut out = Vec::new();
        decompress(Compression::Snappy, &raw, &mut out, 5000).unwrap();
        assert_eq!(out, input);
    }

    #[test]
    fn given_truncated_or_garbage_input_when_decompressed_should_error_not_panic() {
        let mut compressor = Compressor::new();
        let (mut packed, mut out) = (Vec::new(), Vec::new());
        let input = sample(70_000);
        for codec in ALL.into_iter().skip(1) {
            compressor.compress(codec, &input, &mut packed).unwrap();
            for cut in [1, 5, 17, packed.len() / 2, packed.len() - 5] {
                let result = decompress(codec, &packed[..cut], &mut out, 1 << 20);
                assert!(result.is_err() || out != input, "{codec:?} cut {cut}");
            }
            let garbage: Vec<u8> = (0..300u32).map(|i| (i * 31 % 256) as u8).collect();
            let _ = decompress(codec, &garbage, &mut out, 1 << 20);
        }
    }
}
