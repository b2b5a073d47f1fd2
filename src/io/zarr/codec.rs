//! Decoding a Zarr chunk's stored bytes: zlib, gzip, Zstandard, numcodecs' LZ4, CRC-32C and
//! Blosc, each bounded by the chunk's known decoded size (a stream that decodes to more, or
//! less, is a format error, and nothing larger than the chunk is ever allocated).
//!
//! **Blosc** (the version-1 frames of c-blosc, zarr-python v2's default compressor): a 16-byte
//! header (format versions, flags, type size, decoded size, block size, stored size), then,
//! unless the frame is stored uncompressed (flag `0x02`), the offsets of the blocks; each
//! block is one stream, or `typesize` streams (one per byte of the type) when the frame was
//! split, each prefixed by its stored size (a stream whose stored size equals its decoded size
//! is stored as is). Inner codecs: LZ4 / LZ4HC, zlib and Zstandard (BloscLZ and Snappy are
//! refused, naming them); byte shuffle (flag `0x01`) is undone per block; bit shuffle is
//! refused.

use std::io::Read;

use super::meta::ByteCodec;

/// Why a chunk did not decode: a message for a format error, or a codec refused by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes are not a valid stream of the codec.
    Corrupt(String),
    /// A valid stream of a variant not read (its name).
    Unsupported(String),
}

type Decoded = std::result::Result<Vec<u8>, DecodeError>;

fn corrupt(message: impl Into<String>) -> DecodeError {
    DecodeError::Corrupt(message.into())
}

/// Undo `codecs` (in order) on `data`; the result must be `expected` bytes (intermediate
/// results are bounded by `bound`).
pub fn decode(codecs: &[ByteCodec], data: Vec<u8>, expected: usize, bound: usize) -> Decoded {
    let mut data = data;
    for (k, codec) in codecs.iter().enumerate() {
        // The last codec yields the elements; those before it yield at most `bound` bytes.
        let want = if k + 1 == codecs.len() {
            Some(expected)
        } else {
            None
        };
        let cap = want.unwrap_or(bound);
        data = match codec {
            ByteCodec::Zlib => {
                read_bounded(flate2::read::ZlibDecoder::new(&data[..]), cap, "zlib")?
            }
            ByteCodec::Gzip => {
                read_bounded(flate2::read::MultiGzDecoder::new(&data[..]), cap, "gzip")?
            }
            ByteCodec::Zstd => zstd(&data, cap)?,
            ByteCodec::Lz4 => numcodecs_lz4(&data, cap)?,
            ByteCodec::Blosc => blosc(&data, cap)?,
            ByteCodec::Crc32c => crc32c_strip(data)?,
        };
        if let Some(n) = want {
            if data.len() != n {
                return Err(corrupt(format!(
                    "the {} stream decodes to {} bytes, not the chunk's {n}",
                    codec.name(),
                    data.len()
                )));
            }
        }
    }
    if codecs.is_empty() && data.len() != expected {
        return Err(corrupt(format!(
            "the chunk holds {} bytes, not the {expected} of its elements",
            data.len()
        )));
    }
    Ok(data)
}

/// Everything `r` yields, failing if it yields more than `cap` bytes.
fn read_bounded(r: impl Read, cap: usize, name: &str) -> Decoded {
    let mut out = Vec::new();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    r.take(limit)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(format!("a corrupt {name} stream ({e})")))?;
    if out.len() > cap {
        return Err(corrupt(format!(
            "the {name} stream decodes to more than the chunk's {cap} bytes"
        )));
    }
    Ok(out)
}

/// A Zstandard stream (one or more frames).
fn zstd(data: &[u8], cap: usize) -> Decoded {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let before = rest.len();
        let decoder = ruzstd::decoding::StreamingDecoder::new(&mut rest)
            .map_err(|e| corrupt(format!("a corrupt zstd frame ({e})")))?;
        let room = cap.saturating_sub(out.len());
        let part = read_bounded(decoder, room, "zstd")?;
        out.extend_from_slice(&part);
        if rest.len() == before {
            break;
        }
    }
    Ok(out)
}

/// numcodecs' LZ4: the decoded size (`u32`, little-endian), then an LZ4 block.
fn numcodecs_lz4(data: &[u8], cap: usize) -> Decoded {
    let Some((head, block)) = data.split_first_chunk::<4>() else {
        return Err(corrupt("an lz4 chunk shorter than its 4-byte header"));
    };
    let n = u32::from_le_bytes(*head) as usize;
    if n > cap {
        return Err(corrupt(format!(
            "the lz4 header declares {n} bytes, more than the chunk's {cap}"
        )));
    }
    lz4_block(block, n)
}

/// An LZ4 block that decodes to exactly `n` bytes.
fn lz4_block(block: &[u8], n: usize) -> Decoded {
    let mut out = vec![0u8; n];
    let got = lz4_flex::block::decompress_into(block, &mut out)
        .map_err(|e| corrupt(format!("a corrupt lz4 block ({e})")))?;
    if got != n {
        return Err(corrupt(format!(
            "an lz4 block decodes to {got} bytes, not {n}"
        )));
    }
    Ok(out)
}

/// The CRC-32C (Castagnoli) of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Check and remove the CRC-32C trailer.
fn crc32c_strip(mut data: Vec<u8>) -> Decoded {
    if data.len() < 4 {
        return Err(corrupt("a chunk shorter than its crc32c checksum"));
    }
    let at = data.len() - 4;
    let stored = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    data.truncate(at);
    if crc32c(&data) != stored {
        return Err(corrupt("the crc32c checksum does not match the chunk"));
    }
    Ok(data)
}

/// Blosc frame header size.
const BLOSC_HEADER: usize = 16;
/// Blosc splits a block into per-byte streams only for types up to this size.
const BLOSC_MAX_SPLITS: usize = 16;
/// ... and blocks of at least this many elements.
const BLOSC_MIN_BUFFERSIZE: usize = 128;

/// A Blosc (version 1) frame, decoding to at most `cap` bytes.
fn blosc(data: &[u8], cap: usize) -> Decoded {
    if data.len() < BLOSC_HEADER {
        return Err(corrupt("a blosc frame shorter than its 16-byte header"));
    }
    let u32_at = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let flags = data[2];
    let typesize = usize::from(data[3]).max(1);
    let nbytes = u32_at(4) as usize;
    let blocksize = u32_at(8) as usize;
    let cbytes = u32_at(12) as usize;
    if nbytes > cap {
        return Err(corrupt(format!(
            "the blosc header declares {nbytes} bytes, more than the chunk's {cap}"
        )));
    }
    if cbytes > data.len() {
        return Err(corrupt(format!(
            "the blosc header declares {cbytes} stored bytes but the chunk holds {}",
            data.len()
        )));
    }
    let shuffle = flags & 0x01 != 0;
    let memcpyed = flags & 0x02 != 0;
    let bitshuffle = flags & 0x04 != 0;
    let dont_split = flags & 0x10 != 0;
    if memcpyed {
        let end = BLOSC_HEADER + nbytes;
        return match data.get(BLOSC_HEADER..end) {
            Some(raw) => Ok(raw.to_vec()),
            None => Err(corrupt(
                "a stored blosc frame shorter than its declared size",
            )),
        };
    }
    if bitshuffle && typesize > 1 {
        return Err(DecodeError::Unsupported("blosc with bit shuffle".into()));
    }
    let compressor = (flags >> 5) & 0x07;
    let inner = match compressor {
        1 => Inner::Lz4,
        3 => Inner::Zlib,
        4 => Inner::Zstd,
        0 => {
            return Err(DecodeError::Unsupported(
                "blosc with the blosclz compressor".into(),
            ))
        }
        2 => {
            return Err(DecodeError::Unsupported(
                "blosc with the snappy compressor".into(),
            ))
        }
        other => return Err(corrupt(format!("blosc compressor code {other}"))),
    };
    if nbytes == 0 {
        return Ok(Vec::new());
    }
    if blocksize == 0 || blocksize > nbytes.max(1).saturating_mul(2).max(1 << 20) {
        return Err(corrupt(format!("a blosc block size of {blocksize}")));
    }
    let nblocks = nbytes.div_ceil(blocksize);
    let starts_end = BLOSC_HEADER + 4 * nblocks;
    if starts_end > data.len() {
        return Err(corrupt("the blosc block offsets run past the chunk"));
    }
    let mut out = vec![0u8; nbytes];
    let mut tmp = Vec::new();
    for b in 0..nblocks {
        let start = u32_at(BLOSC_HEADER + 4 * b) as usize;
        let bsize = blocksize.min(nbytes - b * blocksize);
        let leftover = bsize < blocksize;
        let nsplits = if !dont_split
            && typesize <= BLOSC_MAX_SPLITS
            && blocksize / typesize >= BLOSC_MIN_BUFFERSIZE
            && !leftover
        {
            typesize
        } else {
            1
        };
        let neblock = bsize / nsplits;
        tmp.clear();
        tmp.resize(bsize, 0);
        let mut at = start;
        for j in 0..nsplits {
            let len_bytes = data
                .get(at..at + 4)
                .ok_or_else(|| corrupt("a blosc stream runs past the chunk"))?;
            let clen = i32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
            let clen = usize::try_from(clen)
                .map_err(|_| corrupt(format!("a blosc stream of size {clen}")))?;
            at += 4;
            let src = data
                .get(at..at.saturating_add(clen))
                .ok_or_else(|| corrupt("a blosc stream runs past the chunk"))?;
            let dst = &mut tmp[j * neblock..(j + 1) * neblock];
            if clen == neblock {
                dst.copy_from_slice(src);
            } else {
                let part = match inner {
                    Inner::Lz4 => lz4_block(src, neblock)?,
                    Inner::Zlib => {
                        read_bounded(flate2::read::ZlibDecoder::new(src), neblock, "zlib")?
                    }
                    Inner::Zstd => zstd(src, neblock)?,
                };
                if part.len() != neblock {
                    return Err(corrupt(format!(
                        "a blosc stream decodes to {} bytes, not {neblock}",
                        part.len()
                    )));
                }
                dst.copy_from_slice(&part);
            }
            at += clen;
        }
        let dst = &mut out[b * blocksize..b * blocksize + bsize];
        if shuffle && typesize > 1 {
            unshuffle(&tmp, dst, typesize);
        } else {
            dst.copy_from_slice(&tmp);
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy)]
enum Inner {
    Lz4,
    Zlib,
    Zstd,
}

/// Undo Blosc's byte shuffle of one block: byte `j` of element `i` was stored at
/// `j·elements + i`; trailing bytes short of a whole element are stored as they are.
fn unshuffle(src: &[u8], dst: &mut [u8], typesize: usize) {
    let elements = src.len() / typesize;
    for i in 0..elements {
        for j in 0..typesize {
            dst[i * typesize + j] = src[j * elements + i];
        }
    }
    let done = elements * typesize;
    dst[done..].copy_from_slice(&src[done..]);
}

/// Blosc's byte shuffle of one block (the inverse of what the decoder undoes), for the writer.
pub fn shuffle(src: &[u8], typesize: usize) -> Vec<u8> {
    let elements = src.len() / typesize;
    let mut dst = vec![0u8; src.len()];
    for i in 0..elements {
        for j in 0..typesize {
            dst[j * elements + i] = src[i * typesize + j];
        }
    }
    let done = elements * typesize;
    dst[done..].copy_from_slice(&src[done..]);
    dst
}

/// A Blosc frame of `data` (elements of `typesize` bytes) in blocks of `blocksize` bytes,
/// byte-shuffled and LZ4-compressed as c-blosc writes them (blocks split into per-byte streams
/// under the same rule), for the writer and the tests.
pub fn blosc_lz4_frame(data: &[u8], typesize: usize, blocksize: usize) -> Vec<u8> {
    let typesize = typesize.clamp(1, 255);
    let blocksize = blocksize.max(typesize);
    let nbytes = data.len();
    let nblocks = nbytes.div_ceil(blocksize);
    let mut out = vec![0u8; BLOSC_HEADER + 4 * nblocks];
    out[0] = 2; // format version
    out[1] = 1; // LZ4 format version
    out[2] = 0x01 | (1 << 5); // byte shuffle, LZ4
    out[3] = typesize as u8;
    out[4..8].copy_from_slice(&(nbytes as u32).to_le_bytes());
    out[8..12].copy_from_slice(&(blocksize as u32).to_le_bytes());
    for b in 0..nblocks {
        let start = out.len() as u32;
        out[BLOSC_HEADER + 4 * b..BLOSC_HEADER + 4 * b + 4].copy_from_slice(&start.to_le_bytes());
        let block = &data[b * blocksize..(b * blocksize + blocksize).min(nbytes)];
        let leftover = block.len() < blocksize;
        let shuffled = if typesize > 1 {
            shuffle(block, typesize)
        } else {
            block.to_vec()
        };
        let nsplits = if typesize <= BLOSC_MAX_SPLITS
            && blocksize / typesize >= BLOSC_MIN_BUFFERSIZE
            && !leftover
        {
            typesize
        } else {
            1
        };
        let neblock = block.len() / nsplits;
        for j in 0..nsplits {
            let part = &shuffled[j * neblock..(j + 1) * neblock];
            let packed = lz4_flex::block::compress(part);
            let stored: &[u8] = if packed.len() >= neblock {
                part
            } else {
                &packed
            };
            out.extend_from_slice(&(stored.len() as i32).to_le_bytes());
            out.extend_from_slice(stored);
        }
    }
    let cbytes = out.len() as u32;
    out[12..16].copy_from_slice(&cbytes.to_le_bytes());
    out
}
