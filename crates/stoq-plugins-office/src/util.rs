//! Small helpers shared by the parsers: bounds-checked little-endian
//! reads, text decoding, hashing and option parsing.

use std::sync::OnceLock;

use stoq_core::hashing::{hex, sha256};

/// Little-endian `u16` at `off`, `None` past the end.
pub(crate) fn u16_at(data: &[u8], off: usize) -> Option<u16> {
    let b = data.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// Little-endian `u32` at `off`, `None` past the end.
pub(crate) fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    let b = data.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A forward-only cursor over a byte slice whose reads never panic.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        let v = u16_at(self.data, self.pos)?;
        self.pos += 2;
        Some(v)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let v = u32_at(self.data, self.pos)?;
        self.pos += 4;
        Some(v)
    }

    /// Exactly `n` bytes, or `None` (and no move) when fewer remain.
    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let b = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(b)
    }

    /// Up to `n` bytes (fewer at the end of the data).
    pub(crate) fn take_upto(&mut self, n: usize) -> &'a [u8] {
        let end = self.pos.saturating_add(n).min(self.data.len());
        let start = self.pos.min(end);
        self.pos = end;
        &self.data[start..end]
    }

    /// A string terminated by a NUL byte found within `max` bytes; the
    /// position moves past the NUL.
    pub(crate) fn zstr(&mut self, max: usize) -> Option<&'a [u8]> {
        let rest = self.data.get(self.pos..)?;
        let window = &rest[..rest.len().min(max)];
        let nul = window.iter().position(|&b| b == 0)?;
        self.pos += nul + 1;
        Some(&window[..nul])
    }
}

/// Bytes as ISO-8859-1 text (every byte is one character), the way
/// oletools' `guess_encoding` ends up decoding OLE package paths.
pub(crate) fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// Lower-case hex SHA-256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(&sha256(data))
}

/// The last component of a Windows or POSIX path.
pub(crate) fn basename(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}

/// Push `item` unless an equal item is already present (keeps first-seen
/// order).
pub(crate) fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

/// At most this many error records are reported per scan.
pub(crate) const MAX_ERRORS: usize = 50;

/// Error records for `messages`: duplicates dropped, at most
/// [`MAX_ERRORS`], the rest summarised in one last record.
pub(crate) fn error_records(messages: &[String]) -> Vec<stoq_core::Error> {
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<&String> = messages.iter().filter(|m| seen.insert(*m)).collect();
    let mut out: Vec<stoq_core::Error> = unique
        .iter()
        .take(MAX_ERRORS)
        .map(|m| stoq_core::Error::new(m.as_str()))
        .collect();
    if unique.len() > MAX_ERRORS {
        out.push(stoq_core::Error::new(format!(
            "... and {} more errors",
            unique.len() - MAX_ERRORS
        )));
    }
    out
}

/// Parse a byte size: a plain integer, optionally with a `k`, `m` or `g`
/// suffix (powers of 1024).
pub(crate) fn parse_size(v: &str) -> Result<u64, String> {
    let t = v.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1u64 << 20),
        Some('g') => (&t[..t.len() - 1], 1u64 << 30),
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| "expected a size in bytes (optionally with a k, m or g suffix)".to_string())
}

/// Base64 text as XML and MIME carry it (line breaks and other white
/// space anywhere), decoded.
pub(crate) fn decode_base64_text(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine;
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean)
}

/// The attributes of a start tag's attribute text (`a="1" x:b='2'`):
/// names without their namespace prefix, values with XML entities
/// replaced.
pub(crate) fn xml_attrs(attrs: &str) -> impl Iterator<Item = (&str, String)> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r#"(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')"#,
        )
        .expect("constant pattern")
    });
    re.captures_iter(attrs).filter_map(|c| {
        let name = c.get(1)?.as_str();
        let value = c.get(2).or_else(|| c.get(3))?.as_str();
        Some((name, crate::vba::unescape_xml(value)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_never_reads_past_the_end() {
        let mut c = Cursor::new(b"\x01\x00\x02\x00\x00\x00ab\0cd");
        assert_eq!(c.u16(), Some(1));
        assert_eq!(c.u32(), Some(2));
        assert_eq!(c.zstr(10), Some(&b"ab"[..]));
        assert_eq!(c.zstr(10), None);
        assert_eq!(c.bytes(3), None);
        assert_eq!(c.take_upto(10), b"cd");
        assert_eq!(c.u16(), None);
    }

    #[test]
    fn error_records_are_deduplicated_and_capped() {
        let msgs: Vec<String> = (0..200).map(|i| format!("e{}", i % 120)).collect();
        let r = error_records(&msgs);
        assert_eq!(r.len(), MAX_ERRORS + 1);
        assert_eq!(r[0].error, "e0");
        assert_eq!(r[MAX_ERRORS].error, "... and 70 more errors");
        assert_eq!(error_records(&["a".into(), "a".into()]).len(), 1);
    }

    #[test]
    fn sizes_and_names() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size(" 2 kb"), Ok(2048));
        assert!(parse_size("lots").is_err());
        assert_eq!(basename(r"C:\Windows\System32\calc.exe"), "calc.exe");
        assert_eq!(basename("a/b"), "b");
        assert_eq!(latin1(b"caf\xe9"), "café");
    }
}
