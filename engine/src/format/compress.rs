//! Blob compression: zstd, or stored raw when it would not shrink.
//!
//! A blob is compressed before it is encrypted. Whatever the level, a chunk
//! whose compressed form is not at least 1/32 smaller is stored raw, so
//! incompressible data (encrypted dumps, embeddings, media) costs no space
//! and restores at memory speed.

use crate::format::DecodeError;
use std::str::FromStr;

/// How a blob's plaintext is stored inside its sealed envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Compression {
    /// The plaintext as is.
    None = 0,
    /// One zstd frame.
    Zstd = 1,
}

impl Compression {
    /// Decodes the on-disk byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::None),
            1 => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// What the user asked for with `--compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionMode {
    /// Never compress.
    Off,
    /// zstd at the level arca measured as the best speed/size trade-off.
    #[default]
    Auto,
    /// zstd at this level (1..=22, or negative for zstd's fast modes).
    Level(i32),
}

/// The zstd level `auto` uses.
pub const AUTO_LEVEL: i32 = 3;

impl FromStr for CompressionMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" | "none" => Ok(Self::Off),
            "auto" => Ok(Self::Auto),
            "max" => Ok(Self::Level(19)),
            _ => match s.parse::<i32>() {
                Ok(l) if (-7..=22).contains(&l) && l != 0 => Ok(Self::Level(l)),
                _ => Err(format!(
                    "invalid compression '{s}': use off, auto, max or a zstd level from -7 to 22"
                )),
            },
        }
    }
}

impl CompressionMode {
    /// The zstd level, or `None` for off.
    pub fn level(self) -> Option<i32> {
        match self {
            Self::Off => None,
            Self::Auto => Some(AUTO_LEVEL),
            Self::Level(l) => Some(l),
        }
    }
}

/// Compresses `data` if that pays. Returns the bytes to seal and how.
pub fn compress(data: &[u8], mode: CompressionMode) -> (std::borrow::Cow<'_, [u8]>, Compression) {
    use std::borrow::Cow;
    let Some(level) = mode.level() else {
        return (Cow::Borrowed(data), Compression::None);
    };
    if data.len() < 64 {
        return (Cow::Borrowed(data), Compression::None);
    }
    thread_local! {
        static CTX: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
            const { std::cell::RefCell::new(None) };
    }
    CTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            let c = zstd::bulk::Compressor::new(level).expect("valid zstd level");
            *slot = Some((level, c));
        }
        let c = &mut slot.as_mut().expect("set above").1;
        let limit = data.len() - data.len() / 32;
        let mut out = Vec::with_capacity(limit);
        match c.compress_to_buffer(data, &mut out) {
            Ok(n) if n <= limit => {
                out.truncate(n);
                (Cow::Owned(out), Compression::Zstd)
            }
            // does not fit in `limit` bytes: not worth it
            _ => (Cow::Borrowed(data), Compression::None),
        }
    })
}

/// Reverses [`compress`]. `raw_len` is the recorded plaintext length; a
/// frame that does not decode to exactly that many bytes is an error.
pub fn decompress(
    stored: Vec<u8>,
    how: Compression,
    raw_len: usize,
) -> Result<Vec<u8>, DecodeError> {
    match how {
        Compression::None => {
            check_stored_len(stored.len(), raw_len)?;
            Ok(stored)
        }
        Compression::Zstd => {
            let mut out = Vec::with_capacity(raw_len);
            decompress_zstd_into(&stored, raw_len, &mut out)?;
            Ok(out)
        }
    }
}

/// An uncompressed body must be exactly as long as recorded.
pub fn check_stored_len(len: usize, raw_len: usize) -> Result<(), DecodeError> {
    if len != raw_len {
        return Err(format!("stored length {len} differs from recorded length {raw_len}").into());
    }
    Ok(())
}

/// Decompresses one zstd frame into `out` (capacity reused), requiring
/// exactly `raw_len` bytes.
pub fn decompress_zstd_into(
    stored: &[u8],
    raw_len: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    DCTX.with(|cell| -> Result<(), String> {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?);
        }
        let d = slot.as_mut().expect("set above");
        out.clear();
        out.reserve_exact(raw_len);
        let n = d
            .decompress_to_buffer(stored, out)
            .map_err(|e| format!("zstd: {e}"))?;
        if n != raw_len {
            return Err(format!("decompressed to {n} bytes, expected {raw_len}"));
        }
        Ok(())
    })
    .map_err(DecodeError::from)
}

/// Decompresses a zstd frame of unknown size, failing past `limit` bytes.
/// Memory grows with the output, not with a claimed size.
pub fn decompress_bounded(z: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    use std::io::Read;
    let dec = zstd::stream::read::Decoder::new(z).map_err(|e| format!("zstd: {e}"))?;
    let mut out = Vec::new();
    dec.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("zstd: {e}"))?;
    if out.len() > limit {
        return Err(format!("decompresses to more than {limit} bytes").into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_raw_fallback() {
        let text = b"hello world ".repeat(1000);
        let (c, how) = compress(&text, CompressionMode::Auto);
        assert_eq!(how, Compression::Zstd);
        assert!(c.len() < text.len() / 10);
        assert_eq!(decompress(c.into_owned(), how, text.len()).unwrap(), text);

        let mut x = 1u32;
        let noise: Vec<u8> = (0..10000)
            .map(|_| {
                x = x.wrapping_mul(1664525).wrapping_add(1013904223);
                (x >> 24) as u8
            })
            .collect();
        let (c, how) = compress(&noise, CompressionMode::Auto);
        assert_eq!(how, Compression::None);
        assert_eq!(&c[..], &noise[..]);

        let (_, how) = compress(&text, CompressionMode::Off);
        assert_eq!(how, Compression::None);
        assert!(decompress(text.clone(), Compression::None, 5).is_err());
    }

    #[test]
    fn parse_modes() {
        assert_eq!(
            "off".parse::<CompressionMode>().unwrap(),
            CompressionMode::Off
        );
        assert_eq!(
            "auto".parse::<CompressionMode>().unwrap(),
            CompressionMode::Auto
        );
        assert_eq!(
            "7".parse::<CompressionMode>().unwrap(),
            CompressionMode::Level(7)
        );
        assert!("99".parse::<CompressionMode>().is_err());
        assert!("fast".parse::<CompressionMode>().is_err());
    }
}
