//! DDE links outside Word fields: Excel workbooks (BIFF8 `.xls`, `.xlsx`,
//! `.xlsb`), Excel 2003/2007 XML spreadsheets and CSV text. The places
//! and the output form are those of oletools' msodde, so the two can be
//! compared line by line:
//!
//! - BIFF8: a SUPBOOK record (0x01AE) with `ctab` 0 names an OLE/DDE data
//!   source; its virtual path is `service` 0x03 `topic`, shown as
//!   `service topic` (`cmd /c calc.exe`).
//! - XLSB: a BrtBeginSupBook record (type 360) of link type 1 (DDE), with
//!   its two strings joined by a space.
//! - SpreadsheetML parts (`xl/externalLinks/*.xml`): `ddeLink` elements,
//!   `ddeService` and `ddeTopic` joined by a space.
//! - Cell formulas of XML spreadsheets and CSV cells of the form
//!   `=service|topic!item` (also with `+`, `-` or `@` first, and quoted):
//!   `service topic`.
//!
//! Every parser here takes untrusted bytes: lengths are checked, nothing
//! panics, output is bounded by the caller.

use std::sync::OnceLock;

use regex::Regex;

use crate::ovba::{decode_codepage, decode_utf16le};
use crate::util::{u16_at, u32_at, xml_attrs};

/// The SUPBOOK record type of BIFF8.
pub(crate) const BIFF_SUPBOOK: u16 = 0x01AE;
/// The BrtBeginSupBook record type of XLSB.
const XLSB_BEGIN_SUPBOOK: u32 = 360;
/// At most this many links are taken from one part or text.
const MAX_LINKS: usize = 1000;
/// CSV text longer than this is looked at only up to here.
const MAX_CSV_BYTES: usize = 16 << 20;

/// Whether a field instruction (trimmed) runs DDE: `DDE` or `DDEAUTO`,
/// any case, as msodde's DDE filter reads it.
pub(crate) fn is_dde_instruction(instruction: &str) -> bool {
    instruction
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case("dde"))
}

/// The DDE link of a BIFF8 SUPBOOK record body, if it is one (`ctab` 0 and
/// a virtual path other than the "unused" and "same sheet" markers).
pub(crate) fn biff_supbook(body: &[u8]) -> Option<String> {
    let ctab = u16_at(body, 0)?;
    let cch = usize::from(u16_at(body, 2)?);
    if ctab != 0 || cch == 0 || cch > 0xFF {
        return None;
    }
    // XLUnicodeStringNoCch: a flags byte (bit 0: two bytes per char).
    let high = body.get(4)? & 1 == 1;
    let chars = body.get(5..).unwrap_or(&[]);
    let path = if high {
        decode_utf16le(&chars[..(cch * 2).min(chars.len())])
    } else {
        decode_codepage(&chars[..cch.min(chars.len())], 1252)
    };
    if path.is_empty() || path == " " || path == "\0" {
        return None;
    }
    Some(path.replace('\u{3}', " "))
}

/// DDE links of an XLSB binary part (BrtBeginSupBook records of type DDE).
pub(crate) fn xlsb_links(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() && out.len() < MAX_LINKS {
        // Record type: one or two bytes of 7 bits; size: up to four.
        let b0 = data[pos];
        pos += 1;
        let mut rtype = u32::from(b0 & 0x7F);
        if b0 & 0x80 != 0 {
            let Some(&b1) = data.get(pos) else { break };
            pos += 1;
            rtype |= u32::from(b1 & 0x7F) << 7;
        }
        let mut size = 0usize;
        for i in 0..4 {
            let Some(&b) = data.get(pos) else {
                return out;
            };
            pos += 1;
            size |= usize::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        let end = pos.saturating_add(size);
        let body = &data[pos.min(data.len())..end.min(data.len())];
        pos = end;
        if rtype == XLSB_BEGIN_SUPBOOK && u16_at(body, 0) == Some(1) {
            let (first, rest) = xlsb_string(body, 2);
            let (second, _) = xlsb_string(body, rest);
            out.push(format!("{first} {second}"));
        }
    }
    out
}

/// An XLWideString at `off`: a u32 character count and UTF-16LE text.
/// Returns the text (empty when it does not fit) and the offset after it.
fn xlsb_string(body: &[u8], off: usize) -> (String, usize) {
    let Some(n) = u32_at(body, off) else {
        return (String::new(), body.len());
    };
    let start = off + 4;
    let end = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_mul(2))
        .and_then(|len| start.checked_add(len));
    match end {
        Some(end) if end <= body.len() => (decode_utf16le(&body[start..end]), end),
        _ => (String::new(), body.len()),
    }
}

fn xml_regexes() -> &'static (Regex, Regex) {
    static RE: OnceLock<(Regex, Regex)> = OnceLock::new();
    RE.get_or_init(|| {
        (
            // A ddeLink start tag (any prefix, any case as msodde).
            Regex::new(r"(?i)<(?:[a-z_][\w.-]*:)?ddelink\b([^>]*)>").expect("constant pattern"),
            // A Cell start tag.
            Regex::new(r"(?i)<(?:[a-z_][\w.-]*:)?cell\b([^>]*)>").expect("constant pattern"),
        )
    })
}

/// `ddeLink` elements of a SpreadsheetML part: `ddeService ddeTopic`.
pub(crate) fn xml_dde_links(xml: &str) -> Vec<String> {
    if !xml
        .as_bytes()
        .windows(7)
        .any(|w| w.eq_ignore_ascii_case(b"ddelink"))
    {
        return Vec::new();
    }
    let (link_re, _) = xml_regexes();
    link_re
        .captures_iter(xml)
        .take(MAX_LINKS)
        .map(|c| {
            let attrs: Vec<_> = xml_attrs(c.get(1).map_or("", |m| m.as_str())).collect();
            ["ddeService", "ddeTopic"]
                .iter()
                .filter_map(|want| attrs.iter().find(|(n, _)| n == want))
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// DDE formulas of an XML spreadsheet's cells (`ss:Formula` attributes).
pub(crate) fn xml_cell_formulas(xml: &str) -> Vec<String> {
    let (_, cell_re) = xml_regexes();
    let mut out = Vec::new();
    for c in cell_re.captures_iter(xml) {
        let attrs = c.get(1).map_or("", |m| m.as_str());
        let formula = xml_attrs(attrs).find(|(n, _)| n.eq_ignore_ascii_case("formula"));
        if let Some(link) = formula.and_then(|(_, f)| formula_link(&f)) {
            out.push(link);
            if out.len() >= MAX_LINKS {
                break;
            }
        }
    }
    out
}

/// `service topic` of a cell that holds a DDE formula
/// (`=cmd|' /c calc'!A0`), else `None`.
pub(crate) fn formula_link(cell: &str) -> Option<String> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re =
        RE.get_or_init(|| Regex::new(r#"^\s*"?[=+\-@](.+)\|(.+)!"#).expect("constant pattern"));
    let c = re.captures(cell)?;
    Some(format!("{} {}", &c[1], &c[2]))
}

/// Delimiters tried for CSV text, in order (msodde's set).
const CSV_DELIMITERS: &[u8] = b",;\t^| ";

/// DDE formulas in CSV text. Cells are split with each delimiter of
/// [`CSV_DELIMITERS`] in turn (quotes honoured, `""` is a quote); the first
/// delimiter that finds any wins. Text that none finds anything in is taken
/// as one cell, as Excel reads a file without delimiters.
pub(crate) fn csv_links(data: &[u8]) -> Vec<String> {
    let data = &data[..data.len().min(MAX_CSV_BYTES)];
    if !data.contains(&b'|') || !data.contains(&b'!') {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(data);
    for &delim in CSV_DELIMITERS {
        let mut out = Vec::new();
        for cell in csv_cells(&text, char::from(delim)) {
            if let Some(link) = formula_link(&cell) {
                out.push(link);
                if out.len() >= MAX_LINKS {
                    break;
                }
            }
        }
        if !out.is_empty() {
            return out;
        }
    }
    formula_link(&text).into_iter().collect()
}

/// The non-empty cells of CSV text, row after row (a line break ends a
/// row outside quotes).
fn csv_cells(text: &str, delim: char) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut at_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cell.push('"');
                } else {
                    quoted = false;
                }
            } else {
                cell.push(c);
            }
            continue;
        }
        if c == '"' && at_start {
            quoted = true;
            at_start = false;
        } else if c == delim || c == '\n' || c == '\r' {
            cells.push(std::mem::take(&mut cell));
            at_start = true;
        } else {
            cell.push(c);
            at_start = false;
        }
    }
    if !cell.is_empty() {
        cells.push(cell);
    }
    cells.retain(|c| !c.is_empty());
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn biff_supbook_records() {
        let dde = b"\x00\x00\x0f\x00\x00cmd\x03/c calc.exe";
        assert_eq!(biff_supbook(dde).as_deref(), Some("cmd /c calc.exe"));
        // Two bytes per character.
        let wide: Vec<u8> = [0u8, 0, 3, 0, 1]
            .into_iter()
            .chain("a\u{3}b".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(biff_supbook(&wide).as_deref(), Some("a b"));
        // Self-reference (cch 0x401), external workbook (ctab > 0), unused.
        assert_eq!(biff_supbook(b"\x01\x00\x01\x04"), None);
        assert_eq!(biff_supbook(b"\x02\x00\x03\x00\x00\x01Cx"), None);
        assert_eq!(biff_supbook(b"\x00\x00\x01\x00\x00 "), None);
        // Truncated bodies never panic.
        for n in 0..dde.len() {
            let _ = biff_supbook(&dde[..n]);
        }
    }

    #[test]
    fn xlsb_records() {
        let mut body = vec![1u8, 0];
        for s in ["cmd", "/c calc.exe"] {
            body.extend((s.len() as u32).to_le_bytes());
            body.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
        }
        // Type 360 = 0xE8 0x02 in two 7-bit bytes; size in one byte.
        let mut part = vec![0x01, 0x00];
        part.extend([0xE8, 0x02, body.len() as u8]);
        part.extend(&body);
        part.extend([0x02, 0x00]);
        assert_eq!(xlsb_links(&part), ["cmd /c calc.exe"]);
        // Workbook links (type 0) are not DDE.
        let mut wb = part.clone();
        wb[5] = 0;
        assert!(xlsb_links(&wb).is_empty());
        // A string count larger than the record gives an empty string.
        let mut bad = part.clone();
        bad[7] = 0xFF;
        assert_eq!(xlsb_links(&bad), [" "]);
        for n in 0..part.len() {
            let _ = xlsb_links(&part[..n]);
        }
    }

    #[test]
    fn xml_links_and_formulas() {
        let part = r#"<externalLink><ddeLink xmlns:r="x" ddeService="cmd" ddeTopic="/c calc&amp;.exe"><ddeItems/></ddeLink></externalLink>"#;
        assert_eq!(xml_dde_links(part), ["cmd /c calc&.exe"]);
        assert!(xml_dde_links("<externalBook r:id=\"rId1\"/>").is_empty());
        let sheet = r#"<Row><Cell ss:Formula="=cmd|'/c calc.exe'!A1"><Data/></Cell><Cell ss:Formula="=SUM(A1:A2)"/></Row>"#;
        assert_eq!(xml_cell_formulas(sheet), ["cmd '/c calc.exe'"]);
    }

    #[test]
    fn formulas_and_csv() {
        assert_eq!(
            formula_link("=cmd|'/k calc.exe'!A0").as_deref(),
            Some("cmd '/k calc.exe'")
        );
        assert_eq!(
            formula_link(" \"@SUM(1+1)*cmd|' /C calc'!A0").as_deref(),
            Some("SUM(1+1)*cmd ' /C calc'")
        );
        assert_eq!(formula_link("=A1|B2"), None);
        assert_eq!(formula_link("cmd|'x'!A0"), None);
        let csv = br#"a,b
1,"=MSEXCEL|'\..\regsvr32 x'!""A0""",z"#;
        assert_eq!(csv_links(csv), ["MSEXCEL '\\..\\regsvr32 x'"]);
        // Semicolon-separated: the comma split finds nothing, ';' does.
        assert_eq!(csv_links(b"x;+cmd|'/c a'!B1;y\n"), ["cmd '/c a'"]);
        assert!(csv_links(b"no pipes here!").is_empty());
        assert!(csv_links(b"a|b!c").is_empty());
    }
}
