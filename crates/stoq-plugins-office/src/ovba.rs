//! MS-OVBA: the compression of VBA streams (2.4.1) and the records of the
//! `dir` stream (2.3.4.2) that name the modules and their code streams.
//!
//! The `ovba` crate opens a whole `vbaProject.bin` through its own CFB
//! reader, so it cannot reach the VBA storage of a `.doc` (`Macros/VBA`) or
//! `.xls` (`_VBA_PROJECT_CUR/VBA`) and it stops at the first unexpected
//! record. These functions work on stream bytes from any reader and keep
//! whatever they could decode.

use crate::util::u16_at;

/// The result of decompressing a CompressedContainer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decompressed {
    pub data: Vec<u8>,
    /// Why decompression stopped early, if it did.
    pub error: Option<String>,
}

/// Decompressed output larger than this is cut (VBA source is small; a
/// crafted stream could otherwise expand about 2000 times).
pub const MAX_DECOMPRESSED: usize = 64 << 20;

/// Decompress an MS-OVBA CompressedContainer (2.4.1.3.1), tolerating what
/// olevba tolerates (a last chunk cut short) and stopping, with an error,
/// where olevba would raise. Output stops at [`MAX_DECOMPRESSED`] bytes.
pub fn decompress(input: &[u8]) -> Decompressed {
    decompress_limited(input, MAX_DECOMPRESSED)
}

/// [`decompress`] with output limited to `limit` bytes (and to
/// [`MAX_DECOMPRESSED`]); reaching it is an error.
pub fn decompress_limited(input: &[u8], limit: usize) -> Decompressed {
    let limit = limit.min(MAX_DECOMPRESSED);
    let mut out: Vec<u8> = Vec::with_capacity(input.len().saturating_mul(2).min(limit));
    let fail = |out: Vec<u8>, msg: String| Decompressed {
        data: out,
        error: Some(msg),
    };
    match input.first() {
        Some(1) => {}
        Some(b) => return fail(out, format!("invalid signature byte {b:#04x}")),
        None => return fail(out, "empty compressed container".into()),
    }
    let mut pos = 1usize;
    while pos < input.len() {
        let chunk_start = pos;
        let Some(header) = u16_at(input, pos) else {
            return fail(out, format!("truncated chunk header at offset {pos}"));
        };
        let chunk_size = usize::from(header & 0x0FFF) + 3;
        let signature = (header >> 12) & 0x07;
        let compressed = header & 0x8000 != 0;
        if signature != 0b011 {
            return fail(
                out,
                format!("invalid chunk signature {signature:#b} at offset {pos}"),
            );
        }
        if !compressed && chunk_size != 4098 {
            return fail(
                out,
                format!("uncompressed chunk of size {chunk_size} at offset {pos}"),
            );
        }
        let chunk_end = (chunk_start + chunk_size).min(input.len());
        pos = chunk_start + 2;
        if !compressed {
            let end = (pos + 4096).min(input.len());
            if out.len() + (end.saturating_sub(pos)) > limit {
                return fail(out, format!("decompressed data over {limit} bytes"));
            }
            out.extend_from_slice(&input[pos.min(end)..end]);
            pos += 4096;
            continue;
        }
        let decompressed_chunk_start = out.len();
        while pos < chunk_end {
            let flags = input[pos];
            pos += 1;
            for bit in 0..8 {
                if pos >= chunk_end {
                    break;
                }
                if (flags >> bit) & 1 == 0 {
                    if out.len() >= limit {
                        return fail(out, format!("decompressed data over {limit} bytes"));
                    }
                    out.push(input[pos]);
                    pos += 1;
                    continue;
                }
                let Some(token) = u16_at(input, pos) else {
                    return fail(out, format!("truncated copy token at offset {pos}"));
                };
                let difference = out.len() - decompressed_chunk_start;
                if difference == 0 {
                    return fail(out, format!("copy token at start of chunk (offset {pos})"));
                }
                // CopyToken help (2.4.1.3.19.1): bit count = max(ceil(log2(d)), 4).
                let bit_count = (usize::BITS - (difference - 1).leading_zeros()).max(4);
                if bit_count > 16 {
                    return fail(out, format!("decompressed chunk too long at offset {pos}"));
                }
                let token = u32::from(token);
                let length_mask: u32 = 0xFFFF >> bit_count;
                let offset_mask: u32 = !length_mask & 0xFFFF;
                let length = (token & length_mask) as usize + 3;
                let offset = ((token & offset_mask) >> (16 - bit_count)) as usize + 1;
                if offset > out.len() {
                    return fail(
                        out,
                        format!("copy token reaches before the start (offset {pos})"),
                    );
                }
                if out.len() + length > limit {
                    return fail(out, format!("decompressed data over {limit} bytes"));
                }
                let src = out.len() - offset;
                for i in 0..length {
                    let b = out[src + i];
                    out.push(b);
                }
                pos += 2;
            }
        }
    }
    Decompressed {
        data: out,
        error: None,
    }
}

/// One module as the `dir` stream describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleRecord {
    /// MODULENAME (MBCS, project code page).
    pub name: Vec<u8>,
    /// MODULENAMEUNICODE (UTF-16LE).
    pub name_unicode: Option<Vec<u8>>,
    /// MODULESTREAMNAME (MBCS).
    pub stream_name: Option<Vec<u8>>,
    /// MODULESTREAMNAME's unicode part (UTF-16LE).
    pub stream_name_unicode: Option<Vec<u8>>,
    /// MODULEOFFSET: where the compressed source starts in the stream.
    pub text_offset: u32,
    /// MODULETYPE: 0x21 procedural, 0x22 document/class/designer.
    pub module_type: Option<u16>,
}

/// What the `dir` stream says about a project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirInfo {
    /// PROJECTCODEPAGE (1252 when absent).
    pub codepage: u16,
    pub modules: Vec<ModuleRecord>,
    /// Inconsistencies met (parsing went on where it could).
    pub issues: Vec<String>,
}

/// Parse a decompressed `dir` stream.
///
/// Every record of the stream is `Id (u16), Size (u32), Data[Size]`,
/// except PROJECTVERSION (0x0009) whose size field is a reserved 4 followed
/// by 6 bytes; records are walked in that shape, so unknown or reordered
/// records do not derail the walk.
pub fn parse_dir(dir: &[u8]) -> DirInfo {
    let mut info = DirInfo {
        codepage: 1252,
        ..DirInfo::default()
    };
    let mut pos = 0usize;
    let mut current: Option<ModuleRecord> = None;
    while pos + 6 <= dir.len() {
        let id = u16::from_le_bytes([dir[pos], dir[pos + 1]]);
        let size = u32::from_le_bytes([dir[pos + 2], dir[pos + 3], dir[pos + 4], dir[pos + 5]]);
        pos += 6;
        let len = if id == 0x0009 { 6 } else { size as usize };
        let end = pos.saturating_add(len);
        if end > dir.len() {
            info.issues.push(format!(
                "dir record {id:#06x} ({len} bytes) goes past the end of the stream"
            ));
            break;
        }
        let data = &dir[pos..end];
        pos = end;
        match id {
            0x0003 => {
                if let Some(cp) = u16_at(data, 0) {
                    info.codepage = cp;
                }
            }
            0x0019 => {
                if let Some(m) = current.take() {
                    info.issues.push("module record without terminator".into());
                    info.modules.push(m);
                }
                current = Some(ModuleRecord {
                    name: data.to_vec(),
                    ..ModuleRecord::default()
                });
            }
            0x0047 => set(&mut current, |m| m.name_unicode = Some(data.to_vec())),
            0x001A => set(&mut current, |m| m.stream_name = Some(data.to_vec())),
            0x0032 => set(&mut current, |m| {
                m.stream_name_unicode = Some(data.to_vec());
            }),
            0x0031 => {
                let off = crate::util::u32_at(data, 0).unwrap_or(0);
                set(&mut current, |m| m.text_offset = off);
            }
            0x0021 | 0x0022 => set(&mut current, |m| m.module_type = Some(id)),
            0x002B => {
                if let Some(m) = current.take() {
                    info.modules.push(m);
                }
            }
            0x0010 => break,
            _ => {}
        }
    }
    if let Some(m) = current.take() {
        info.issues.push("last module record is cut short".into());
        info.modules.push(m);
    }
    info
}

fn set(current: &mut Option<ModuleRecord>, f: impl FnOnce(&mut ModuleRecord)) {
    if let Some(m) = current.as_mut() {
        f(m);
    }
}

/// Decode bytes in Windows code page `cp` (UTF-8 when unknown, as olevba
/// falls back), replacing invalid sequences.
pub fn decode_codepage(bytes: &[u8], cp: u16) -> String {
    let enc = match cp {
        // Python's cp1252 and the WHATWG windows-1252 agree on the
        // defined characters; 65001 is UTF-8.
        65001 => encoding_rs::UTF_8,
        _ => codepage::to_encoding_no_replacement(cp).unwrap_or(encoding_rs::UTF_8),
    };
    let (text, _) = enc.decode_without_bom_handling(bytes);
    text.into_owned()
}

/// Decode UTF-16LE with replacement.
pub fn decode_utf16le(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// File extensions by lower-case module name, from the `PROJECT` stream
/// (`Document=` and `Class=` → cls, `Module=` → bas, `BaseClass=` → frm).
pub fn module_extensions(project: &[u8], cp: u16) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for line in project.split(|&b| b == b'\n') {
        let line = decode_codepage(line, cp);
        let line = line.trim();
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.to_lowercase();
        let (value, ext) = match key {
            "Document" => (value.split('/').next().unwrap_or("").to_string(), "cls"),
            "Module" => (value, "bas"),
            "Class" => (value, "cls"),
            "BaseClass" => (value, "frm"),
            _ => continue,
        };
        out.push((value, ext));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // MS-OVBA 3.2 examples.
    #[test]
    fn spec_examples() {
        let compressed = [
            0x01, 0x2F, 0xB0, 0x00, 0x23, 0x61, 0x61, 0x61, 0x62, 0x63, 0x64, 0x65, 0x82, 0x66,
            0x00, 0x70, 0x61, 0x67, 0x68, 0x69, 0x6A, 0x01, 0x38, 0x08, 0x61, 0x6B, 0x6C, 0x00,
            0x30, 0x6D, 0x6E, 0x6F, 0x70, 0x06, 0x71, 0x02, 0x70, 0x04, 0x10, 0x72, 0x73, 0x74,
            0x75, 0x76, 0x10, 0x77, 0x78, 0x79, 0x7A, 0x00, 0x3C,
        ];
        let d = decompress(&compressed);
        assert_eq!(d.error, None);
        assert_eq!(
            String::from_utf8(d.data).unwrap(),
            "#aaabcdefaaaaghijaaaaaklaaamnopqaaaaaaaaaaaarstuvwxyzaaa"
        );
        let compressed = [
            0x01, 0x19, 0xB0, 0x00, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x00, 0x69,
            0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x70, 0x00, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76,
            0x2E,
        ];
        assert_eq!(decompress(&compressed).data, b"abcdefghijklmnopqrstuv.");
        // One literal and one copy token of length 72.
        let compressed = [0x01, 0x03, 0xB0, 0x02, 0x61, 0x45, 0x00];
        assert_eq!(decompress(&compressed).data, vec![b'a'; 73]);
    }

    #[test]
    fn output_limit() {
        let compressed = [0x01, 0x03, 0xB0, 0x02, 0x61, 0x45, 0x00];
        let d = decompress_limited(&compressed, 10);
        assert_eq!(d.data, b"a");
        assert!(d.error.unwrap().contains("over 10 bytes"));
    }

    #[test]
    fn bad_input_stops_with_an_error() {
        assert!(decompress(b"").error.is_some());
        assert!(decompress(b"\x02abc").error.is_some());
        // Copy token first in a chunk.
        assert!(decompress(&[0x01, 0x03, 0xB0, 0x01, 0x00, 0x00])
            .error
            .is_some());
        for cut in 0..7 {
            let _ = decompress(&[0x01, 0x03, 0xB0, 0x02, 0x61, 0x45, 0x00][..cut]);
        }
    }

    #[test]
    fn project_stream_extensions() {
        let p = b"ID=\"{X}\"\r\nDocument=ThisDocument/&H00000000\r\nModule=NewMacros\r\nBaseClass=UserForm1\r\nClass=Foo\r\n";
        assert_eq!(
            module_extensions(p, 1252),
            vec![
                ("thisdocument".to_string(), "cls"),
                ("newmacros".to_string(), "bas"),
                ("userform1".to_string(), "frm"),
                ("foo".to_string(), "cls"),
            ]
        );
    }
}
