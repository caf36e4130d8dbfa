//! OLE 1.0 structures (MS-OLEDS 2.2) and the OLE Packager's native data,
//! as oletools' `oleobj` reads them.
//!
//! - [`parse_native`]: an `\x01Ole10Native` stream (native data size,
//!   then the Packager header: label, source path, two reserved words,
//!   temporary path, data size, data). Inside an RTF `Package` object the
//!   same layout comes without the leading size (`package = true`).
//! - [`parse_ole1`]: an OLE 1.0 ObjectHeader + EmbeddedObject, the content
//!   of an RTF `\objdata` (version, format id, class/topic/item names,
//!   native data size, native data).
//!
//! Strings are ANSI, decoded as ISO-8859-1 (what oleobj's guess ends up
//! with for anything that is not ASCII). Both parsers only read inside the
//! given slice and never panic.

use crate::util::{basename, latin1, Cursor};

/// oleobj looks for a string's terminating NUL within this many bytes.
const STR_MAX_LEN: usize = 1024;

/// OLE 1.0 FormatID of a linked object.
pub const FORMAT_LINKED: u32 = 1;
/// OLE 1.0 FormatID of an embedded object.
pub const FORMAT_EMBEDDED: u32 = 2;

/// An embedded file from an OLE Packager native data block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeObject {
    /// The label (oleobj calls it `filename`): usually the file's name.
    pub label: String,
    pub src_path: String,
    pub tmp_path: String,
    /// Declared size of the embedded data.
    pub declared_size: u32,
    /// The embedded file (shorter than declared when truncated).
    pub data: Vec<u8>,
}

impl NativeObject {
    /// The best file name for the embedded file: the label, else the base
    /// name of the source path, else of the temporary path.
    pub fn filename(&self) -> Option<String> {
        [&self.label, &self.src_path, &self.tmp_path]
            .into_iter()
            .map(|s| basename(s.trim()).trim())
            .find(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// Whether fewer bytes were present than declared.
    pub fn is_truncated(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.declared_size)
    }
}

/// Why native data could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeError {
    /// The header ends before the data size: a link, no embedded data.
    Link {
        label: String,
        src_path: String,
        tmp_path: String,
    },
    /// The header is cut short or malformed.
    Malformed(String),
}

impl std::fmt::Display for NativeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NativeError::Link { label, .. } => {
                write!(f, "OLE package {label:?} is a link without embedded data")
            }
            NativeError::Malformed(m) => write!(f, "malformed OLE package: {m}"),
        }
    }
}

/// Parse OLE Packager native data. `package = false` for an
/// `\x01Ole10Native` stream (which starts with the native data size),
/// `true` for the native data of an OLE 1.0 `Package` object.
pub fn parse_native(data: &[u8], package: bool) -> Result<NativeObject, NativeError> {
    let bad = |what: &str| NativeError::Malformed(format!("{what} missing or not terminated"));
    let mut c = Cursor::new(data);
    if !package {
        c.u32().ok_or_else(|| bad("native data size"))?;
    }
    c.u16().ok_or_else(|| bad("type"))?;
    let label = latin1(c.zstr(STR_MAX_LEN).ok_or_else(|| bad("label"))?);
    let src_path = latin1(c.zstr(STR_MAX_LEN).ok_or_else(|| bad("source path"))?);
    c.u32().ok_or_else(|| bad("reserved word 1"))?;
    c.u32().ok_or_else(|| bad("reserved word 2"))?;
    let tmp_path = latin1(c.zstr(STR_MAX_LEN).ok_or_else(|| bad("temporary path"))?);
    let Some(declared_size) = c.u32() else {
        return Err(NativeError::Link {
            label,
            src_path,
            tmp_path,
        });
    };
    let data = c.take_upto(declared_size as usize).to_vec();
    Ok(NativeObject {
        label,
        src_path,
        tmp_path,
        declared_size,
        data,
    })
}

/// An OLE 1.0 object (ObjectHeader + EmbeddedObject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ole1Object {
    pub ole_version: u32,
    pub format_id: u32,
    pub class_name: Vec<u8>,
    pub topic_name: Vec<u8>,
    pub item_name: Vec<u8>,
    /// Native data of an embedded object (`None` for a link).
    pub data: Option<Vec<u8>>,
    /// Declared native data size of an embedded object.
    pub data_size: Option<u32>,
}

impl Ole1Object {
    /// The class name as text (ISO-8859-1, as read).
    pub fn class_name_str(&self) -> String {
        latin1(&self.class_name)
    }

    /// Whether the class is the OLE Packager (`Package`, any case).
    pub fn is_package(&self) -> bool {
        trim_nul(&self.class_name).eq_ignore_ascii_case(b"package")
    }
}

fn trim_nul(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    &b[..end]
}

/// A length-prefixed ANSI string whose last byte must be NUL (oleobj's
/// `read_length_prefixed_string`).
fn lp_string(c: &mut Cursor<'_>, what: &str) -> Result<Vec<u8>, String> {
    let len = c.u32().ok_or_else(|| format!("{what} length missing"))? as usize;
    if len == 0 {
        return Ok(Vec::new());
    }
    let s = c
        .bytes(len)
        .ok_or_else(|| format!("{what} ({len} bytes) goes past the end"))?;
    if s[len - 1] != 0 {
        return Err(format!("{what} is not NUL-terminated"));
    }
    Ok(s[..len - 1].to_vec())
}

/// Parse an OLE 1.0 object. Fails (like oleobj) on an unknown format id,
/// a malformed name and on embedded data shorter than declared.
pub fn parse_ole1(data: &[u8]) -> Result<Ole1Object, String> {
    let mut c = Cursor::new(data);
    let ole_version = c.u32().ok_or("OLE version missing")?;
    let format_id = c.u32().ok_or("format id missing")?;
    if format_id != FORMAT_LINKED && format_id != FORMAT_EMBEDDED {
        return Err(format!("unknown OLE 1.0 format id {format_id:#x}"));
    }
    let class_name = lp_string(&mut c, "class name")?;
    let topic_name = lp_string(&mut c, "topic name")?;
    let item_name = lp_string(&mut c, "item name")?;
    let (data, data_size) = if format_id == FORMAT_EMBEDDED {
        let size = c.u32().ok_or("native data size missing")?;
        let d = c.take_upto(size as usize);
        if d.len() != size as usize {
            return Err(format!(
                "native data truncated: {} of {size} bytes",
                d.len()
            ));
        }
        (Some(d.to_vec()), Some(size))
    } else {
        (None, None)
    };
    Ok(Ole1Object {
        ole_version,
        format_id,
        class_name,
        topic_name,
        item_name,
        data,
        data_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(label: &str, data: &[u8]) -> Vec<u8> {
        let mut v = vec![2, 0];
        v.extend_from_slice(label.as_bytes());
        v.push(0);
        v.extend_from_slice(b"C:\\src\\");
        v.extend_from_slice(label.as_bytes());
        v.push(0);
        v.extend_from_slice(&[0, 0, 3, 0, 0, 0, 0, 0]);
        v.extend_from_slice(b"C:\\tmp\\x\0");
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn package_round_trip_and_truncations() {
        let p = package("a.txt", b"hello");
        let n = parse_native(&p, true).unwrap();
        assert_eq!(n.label, "a.txt");
        assert_eq!(n.src_path, "C:\\src\\a.txt");
        assert_eq!(n.tmp_path, "C:\\tmp\\x");
        assert_eq!(n.data, b"hello");
        assert_eq!(n.filename().as_deref(), Some("a.txt"));
        // With the stream's leading size field.
        let mut s = (p.len() as u32).to_le_bytes().to_vec();
        s.extend_from_slice(&p);
        assert_eq!(parse_native(&s, false).unwrap(), n);
        // Every truncation is an error, a link or a short object; never a panic.
        for cut in 0..p.len() {
            match parse_native(&p[..cut], true) {
                Ok(n) => assert!(n.is_truncated() || cut == p.len()),
                Err(NativeError::Link { label, .. }) => assert_eq!(label, "a.txt"),
                Err(NativeError::Malformed(_)) => {}
            }
        }
    }

    #[test]
    fn ole1_object() {
        let native = package("b.bin", b"xyz");
        let mut o = vec![1, 5, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0];
        o.extend_from_slice(b"Package\0");
        o.extend_from_slice(&[0; 8]);
        o.extend_from_slice(&(native.len() as u32).to_le_bytes());
        o.extend_from_slice(&native);
        let obj = parse_ole1(&o).unwrap();
        assert_eq!(obj.ole_version, 0x0501);
        assert_eq!(obj.class_name_str(), "Package");
        assert!(obj.is_package());
        assert_eq!(obj.data.as_deref(), Some(&native[..]));
        for cut in 0..o.len() {
            assert!(parse_ole1(&o[..cut]).is_err());
        }
        o[4] = 7;
        assert!(parse_ole1(&o).is_err());
    }
}
