//! The canonical codec: the one place that knows how values become bytes.
//!
//! Every hash and signature in Banyan is computed over these bytes, so the encoding is
//! deterministic and *canonical*: each value has exactly one encoding, and decoding a byte string
//! that is not the encoding of some value fails. The implementation is bincode 2.0.1 (pinned:
//! upstream is unmaintained) with a fixed configuration — little endian, fixed-width integers
//! (variable-width integers would admit several encodings of one number) — and it is used from
//! this module only, so it can be swapped without touching the rest of the workspace.
//!
//! Decoding:
//! - takes a byte limit and refuses a longer input before reading it;
//! - rejects trailing bytes (a value followed by junk is not canonical);
//! - never allocates from an unchecked length prefix. Variable-length fields use
//!   [`BoundedVec`] and [`Bytes`], which check the prefix against a per-field maximum and then
//!   grow with the input actually consumed, so a 100-byte input cannot make the decoder reserve
//!   more than a few KiB, whatever its length prefix says. Any other container is additionally
//!   capped by bincode's own limit ([`MAX_DECODE_BYTES`]).

use bincode::config::{Configuration, Fixint, Limit, LittleEndian, NoLimit};
use bincode::de::read::Reader;

#[doc(hidden)]
pub use bincode;
pub use bincode::de::Decoder;
pub use bincode::enc::write::Writer;
pub use bincode::enc::Encoder;
pub use bincode::error::{DecodeError, EncodeError};
pub use bincode::impl_borrow_decode;
pub use bincode::{Decode, Encode};

/// Hard ceiling on what any single decode may claim, whatever the caller's limit.
pub const MAX_DECODE_BYTES: usize = 64 << 20;

/// Elements reserved up front by a [`BoundedVec`] before the input shows it has more.
const PREALLOC_ITEMS: usize = 256;
/// Bytes read per step by [`Bytes`], so the buffer never runs far ahead of the input.
const READ_CHUNK_BYTES: usize = 16 << 10;

type EncodeConfig = Configuration<LittleEndian, Fixint, NoLimit>;
type DecodeConfig = Configuration<LittleEndian, Fixint, Limit<MAX_DECODE_BYTES>>;

const fn encode_config() -> EncodeConfig {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
}

const fn decode_config() -> DecodeConfig {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<MAX_DECODE_BYTES>()
}

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The input is longer than the caller allows for this type.
    #[error("input of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit given.
        limit: usize,
    },
    /// A whole value was decoded but bytes remain after it.
    #[error("{trailing} trailing bytes after a value of {consumed} bytes")]
    TrailingBytes {
        /// Bytes the value used.
        consumed: usize,
        /// Bytes left over.
        trailing: usize,
    },
    /// The bytes are not the encoding of a value of this type.
    #[error("malformed encoding: {0}")]
    Malformed(String),
}

impl From<DecodeError> for CodecError {
    fn from(e: DecodeError) -> Self {
        CodecError::Malformed(e.to_string())
    }
}

/// Encode a value canonically.
pub fn encode<T: Encode>(value: &T) -> Vec<u8> {
    // Encoding into a Vec has no limit and no I/O, and no Banyan type's `Encode` returns an
    // error, so this cannot fail.
    #[allow(clippy::expect_used)]
    bincode::encode_to_vec(value, encode_config()).expect("encoding into a Vec cannot fail")
}

/// Append the canonical encoding of a value to `out` (no intermediate allocation).
pub fn encode_into<T: Encode>(value: &T, out: &mut Vec<u8>) {
    // Same reasoning as in `encode`: a Vec writer with no limit cannot fail.
    #[allow(clippy::expect_used)]
    bincode::encode_into_std_write(value, out, encode_config())
        .expect("encoding into a Vec cannot fail");
}

/// The length of a value's canonical encoding, without allocating it.
pub fn encoded_len<T: Encode>(value: &T) -> usize {
    let mut w = bincode::enc::write::SizeWriter::default();
    // SizeWriter only counts bytes; it cannot fail.
    #[allow(clippy::expect_used)]
    bincode::encode_into_writer(value, &mut w, encode_config()).expect("size counting cannot fail");
    w.bytes_written
}

/// Decode exactly one value from `bytes`, refusing inputs longer than `limit` bytes and any
/// trailing bytes.
pub fn decode<T: Decode<()>>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let (value, consumed) = bincode::decode_from_slice(bytes, decode_config())?;
    if consumed != bytes.len() {
        return Err(CodecError::TrailingBytes {
            consumed,
            trailing: bytes.len() - consumed,
        });
    }
    Ok(value)
}

/// Decode a length prefix and check it against `max` before anything is allocated.
fn decode_len<D: Decoder>(decoder: &mut D, max: usize) -> Result<usize, DecodeError> {
    let len = u64::decode(decoder)?;
    if len > max as u64 {
        return Err(DecodeError::OtherString(format!(
            "length prefix {len} exceeds the maximum of {max}"
        )));
    }
    // len <= max, and max is a usize.
    Ok(len as usize)
}

/// A vector of at most `MAX` elements whose decoding allocates in step with the input.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct BoundedVec<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> BoundedVec<T, MAX> {
    /// The most elements this vector may hold.
    pub const MAX_LEN: usize = MAX;

    /// Wrap `items`, or give them back if there are more than `MAX`.
    pub fn new(items: Vec<T>) -> Result<Self, Vec<T>> {
        if items.len() > MAX {
            Err(items)
        } else {
            Ok(Self(items))
        }
    }

    /// An empty vector.
    pub const fn empty() -> Self {
        Self(Vec::new())
    }

    /// Append an item, or give it back when full.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.0.len() >= MAX {
            Err(item)
        } else {
            self.0.push(item);
            Ok(())
        }
    }

    /// The items.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// The items, by value.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const MAX: usize> std::ops::Deref for BoundedVec<T, MAX> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: Encode, const MAX: usize> Encode for BoundedVec<T, MAX> {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        (self.0.len() as u64).encode(encoder)?;
        for item in &self.0 {
            item.encode(encoder)?;
        }
        Ok(())
    }
}

impl<C, T: Decode<C>, const MAX: usize> Decode<C> for BoundedVec<T, MAX> {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let len = decode_len(decoder, MAX)?;
        let mut items = Vec::with_capacity(len.min(PREALLOC_ITEMS));
        for _ in 0..len {
            items.push(T::decode(decoder)?);
        }
        Ok(Self(items))
    }
}

impl<'de, C, T: Decode<C>, const MAX: usize> bincode::BorrowDecode<'de, C> for BoundedVec<T, MAX> {
    fn borrow_decode<D: bincode::de::BorrowDecoder<'de, Context = C>>(
        decoder: &mut D,
    ) -> Result<Self, DecodeError> {
        <Self as Decode<C>>::decode(decoder)
    }
}

/// A byte string of at most `MAX` bytes whose decoding allocates in step with the input.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Bytes<const MAX: usize>(Vec<u8>);

impl<const MAX: usize> std::fmt::Debug for Bytes<MAX> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({})", hex::encode(&self.0))
    }
}

impl<const MAX: usize> Bytes<MAX> {
    /// The most bytes this string may hold.
    pub const MAX_LEN: usize = MAX;

    /// Wrap `bytes`, or give them back if there are more than `MAX`.
    pub fn new(bytes: Vec<u8>) -> Result<Self, Vec<u8>> {
        if bytes.len() > MAX {
            Err(bytes)
        } else {
            Ok(Self(bytes))
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl<const MAX: usize> std::ops::Deref for Bytes<MAX> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl<const MAX: usize> Encode for Bytes<MAX> {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        (self.0.len() as u64).encode(encoder)?;
        bincode::enc::write::Writer::write(encoder.writer(), &self.0)
    }
}

impl<C, const MAX: usize> Decode<C> for Bytes<MAX> {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let len = decode_len(decoder, MAX)?;
        decoder.claim_bytes_read(len)?;
        let mut out = Vec::with_capacity(len.min(READ_CHUNK_BYTES));
        let mut left = len;
        while left > 0 {
            let step = left.min(READ_CHUNK_BYTES);
            let start = out.len();
            out.resize(start + step, 0);
            decoder.reader().read(&mut out[start..])?;
            left -= step;
        }
        Ok(Self(out))
    }
}

impl<'de, C, const MAX: usize> bincode::BorrowDecode<'de, C> for Bytes<MAX> {
    fn borrow_decode<D: bincode::de::BorrowDecoder<'de, Context = C>>(
        decoder: &mut D,
    ) -> Result<Self, DecodeError> {
        <Self as Decode<C>>::decode(decoder)
    }
}
