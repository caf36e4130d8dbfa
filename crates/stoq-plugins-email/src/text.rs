//! Bytes → text, shared by the plugins of this crate.
//!
//! Policy: a byte-order mark wins (UTF-8, UTF-16LE/BE); otherwise valid
//! UTF-8 is taken as is; otherwise the charset is guessed with `chardetng`
//! (the detector Firefox uses; ISO-2022-JP allowed, as mail clients do) and
//! the bytes are decoded with `encoding_rs`, malformed sequences becoming
//! U+FFFD. Decoding never fails.

use std::borrow::Cow;

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

/// How many leading bytes the binary check and the charset guess look at.
const SAMPLE: usize = 64 * 1024;

/// The encoding announced by a byte-order mark, if any.
fn bom(bytes: &[u8]) -> Option<&'static Encoding> {
    Encoding::for_bom(bytes).map(|(e, _)| e)
}

/// Decode `bytes` as text (see the module docs for the policy).
pub fn decode_text(bytes: &[u8]) -> Cow<'_, str> {
    if let Some(enc) = bom(bytes) {
        // decode() strips the BOM itself.
        return enc.decode(bytes).0;
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let enc = guess_charset(bytes);
    enc.decode_without_bom_handling(bytes).0
}

/// The charset `chardetng` guesses for non-UTF-8 bytes (looking at the
/// first 64 KiB).
pub fn guess_charset(bytes: &[u8]) -> &'static Encoding {
    let sample = &bytes[..bytes.len().min(SAMPLE)];
    let mut det = EncodingDetector::new(Iso2022JpDetection::Allow);
    det.feed(sample, sample.len() == bytes.len());
    det.guess(None, Utf8Detection::Allow)
}

/// Decode header bytes: UTF-8 (RFC 6532) when valid, else Windows-1252,
/// which maps every byte to a character so nothing is lost.
pub fn decode_8bit(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => WINDOWS_1252.decode_without_bom_handling(bytes).0,
    }
}

/// Whether `bytes` look like binary data rather than text: looking at the
/// first 64 KiB, more than 0.5 % NUL bytes or more than 5 % other control
/// bytes (below 0x20 except TAB, LF, VT, FF, CR and ESC; and 0x7F). Text
/// with a UTF-16 byte-order mark is text.
pub fn looks_binary(bytes: &[u8]) -> bool {
    if matches!(bom(bytes), Some(e) if e == UTF_16LE || e == UTF_16BE || e == UTF_8) {
        return false;
    }
    let sample = &bytes[..bytes.len().min(SAMPLE)];
    if sample.is_empty() {
        return false;
    }
    let mut nul = 0usize;
    let mut ctl = 0usize;
    for &b in sample {
        match b {
            0 => nul += 1,
            b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1b => {}
            0x01..=0x1f | 0x7f => ctl += 1,
            _ => {}
        }
    }
    nul * 200 > sample.len() || ctl * 20 > sample.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_bom_utf16_and_guess() {
        assert_eq!(decode_text(b"plain"), "plain");
        assert_eq!(decode_text(b"\xef\xbb\xbfbom"), "bom");
        assert_eq!(decode_text(b"\xff\xfeh\x00i\x00"), "hi");
        assert_eq!(decode_text(b"\xfe\xff\x00h\x00i"), "hi");
        // Latin-1/Windows-1252 text is recognised as such.
        assert_eq!(
            decode_text(b"Gr\xfc\xdfe aus K\xf6ln, sch\xf6ne Gr\xfc\xdfe"),
            "Grüße aus Köln, schöne Grüße"
        );
        assert_eq!(decode_8bit(b"caf\xe9"), "café");
    }

    #[test]
    fn binary_detection() {
        assert!(!looks_binary(b"hello world\r\n\tindented"));
        assert!(!looks_binary(b""));
        assert!(!looks_binary(b"\xff\xfeh\x00i\x00"));
        assert!(looks_binary(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00"));
        let random: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
            .collect();
        assert!(looks_binary(&random));
    }
}
