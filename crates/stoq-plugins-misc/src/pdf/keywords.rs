//! Raw-bytes keyword counts, as pdfid does: no parsing, so they work on
//! files no parser opens. Objects inside compressed object streams are
//! not seen.

use memchr::memmem;

/// The names counted, in output order.
pub const KEYWORDS: [&str; 11] = [
    "/JS",
    "/JavaScript",
    "/OpenAction",
    "/AA",
    "/Launch",
    "/EmbeddedFile",
    "/URI",
    "/AcroForm",
    "/XFA",
    "/ObjStm",
    "/Encrypt",
];

/// Longest name token looked at for `#xx` obfuscation.
const MAX_NAME_LEN: usize = 127;

/// Occurrences of each keyword not followed by an ASCII letter or digit
/// (the regex `/JS(?![A-Za-z0-9])`), in [`KEYWORDS`] order.
pub fn count_keywords(data: &[u8]) -> Vec<(&'static str, usize)> {
    KEYWORDS
        .iter()
        .map(|kw| {
            let n = memmem::find_iter(data, kw.as_bytes())
                .filter(|&pos| {
                    data.get(pos + kw.len())
                        .is_none_or(|b| !b.is_ascii_alphanumeric())
                })
                .count();
            (*kw, n)
        })
        .collect()
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'\0'
            | b'\t'
            | b'\n'
            | 0x0c
            | b'\r'
            | b' '
            | b'('
            | b')'
            | b'<'
            | b'>'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'/'
            | b'%'
    )
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Names written with `#xx` escapes that decode to one of [`KEYWORDS`]
/// (`/J#61vaScript`), a classic way to hide from the plain counts. Only
/// keywords seen at least once are listed, in [`KEYWORDS`] order.
pub fn obfuscated_keywords(data: &[u8]) -> Vec<(&'static str, usize)> {
    let mut counts = [0usize; KEYWORDS.len()];
    let mut decoded = Vec::with_capacity(MAX_NAME_LEN + 1);
    for slash in memchr::memchr_iter(b'/', data) {
        let rest = &data[slash + 1..];
        let len = rest
            .iter()
            .take(MAX_NAME_LEN + 1)
            .position(|&b| is_delimiter(b))
            .unwrap_or(rest.len().min(MAX_NAME_LEN + 1));
        if len > MAX_NAME_LEN {
            continue;
        }
        let token = &rest[..len];
        if !token.contains(&b'#') {
            continue;
        }
        decoded.clear();
        decoded.push(b'/');
        let mut i = 0;
        while i < token.len() {
            let b = token[i];
            if b == b'#' {
                if let (Some(h), Some(l)) = (
                    token.get(i + 1).copied().and_then(hex_val),
                    token.get(i + 2).copied().and_then(hex_val),
                ) {
                    decoded.push(h << 4 | l);
                    i += 3;
                    continue;
                }
            }
            decoded.push(b);
            i += 1;
        }
        if let Some(k) = KEYWORDS.iter().position(|kw| kw.as_bytes() == decoded) {
            counts[k] += 1;
        }
    }
    KEYWORDS
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(kw, n)| (*kw, n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(data: &[u8], kw: &str) -> usize {
        count_keywords(data)
            .into_iter()
            .find(|(k, _)| *k == kw)
            .unwrap()
            .1
    }

    #[test]
    fn boundary_is_any_non_alphanumeric() {
        let d = b"/JS /JS(x) /JSON /JavaScript /JS_x /AAPL /AA>> /AA";
        assert_eq!(count(d, "/JS"), 3);
        assert_eq!(count(d, "/JavaScript"), 1);
        assert_eq!(count(d, "/AA"), 2);
        assert_eq!(count(b"", "/JS"), 0);
    }

    #[test]
    fn hex_escaped_names() {
        let d = b"<</S/J#61vaScript/J#53 (x)/Open#41ction 1 0 R /#4aS#>> /JS";
        assert_eq!(
            obfuscated_keywords(d),
            vec![("/JS", 1), ("/JavaScript", 1), ("/OpenAction", 1)]
        );
        // Broken escapes stay literal; nothing matches.
        assert!(obfuscated_keywords(b"/J#zS /#").is_empty());
    }
}
