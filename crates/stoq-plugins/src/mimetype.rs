//! `mimetype` worker: identify a payload's type from its content.
//!
//! No system libmagic is needed. [`detect`] answers with three strings:
//!
//! | key | meaning |
//! |---|---|
//! | `mimetype` | the media type. Where libmagic (`file --mime-type`, 5.44) knows the format, the same string (`application/vnd.microsoft.portable-executable`, `application/zip`, `text/rtf`, ...), so rules and routes written against libmagic's answers keep working (libmagic on the whole file: `application/msword`, not the `application/x-ole-storage` the Python plugin got from the first 1000 bytes); the known differences are listed in docs/PLUGINS.md. `application/octet-stream` when nothing matched |
//! | `label` | a short human-readable name, e.g. `PE32 executable (DLL)`, `ZIP archive`, `Microsoft Word 2007+ document (macro-enabled)`. More precise than the media type (it tells a .docm from a .docx); not a libmagic description |
//! | `extension` | the usual file-name extension, lower case, without the dot (`bin` when there is none) |
//!
//! How: fixed checks for the formats analysts route on (MZ/PE/NE, ELF,
//! Mach-O, Java class, OLE2 with its Word/Excel/PowerPoint/MSI/encrypted
//! subtypes, ZIP with its OOXML/ODF/JAR/APK subtypes, PDF, RTF, archives and
//! compressors, TNEF, Python bytecode), then text (libmagic's text/binary
//! rule, plus e-mail, scripts, HTML, XML, JSON, JavaScript), then the
//! `file-format` crate's signature table for everything else.
//!
//! Detection is bounded whatever the payload size: it reads the first
//! 64 KiB at most for text, plus fixed-size structures found through
//! offsets (the OLE2 directory, the ZIP central directory, the ELF dynamic
//! section), each with a cap on the number of entries. A multi-gigabyte
//! payload costs what a small one costs, so the `filetype` dispatcher can
//! call it for every payload in every round.

use std::sync::Arc;

use file_format::FileFormat;
use serde_json::{Map, Value};
use stoq_core::{
    async_trait, ModuleDescriptor, Payload, PluginClass, PluginInstance, PluginResult, Request,
    Worker, WorkerResponse,
};

/// What [`detect`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Detected {
    /// Media type (libmagic's string where libmagic knows the format).
    pub mimetype: &'static str,
    /// Short human-readable name of the format.
    pub label: &'static str,
    /// Usual file-name extension, without the dot.
    pub extension: &'static str,
}

impl Detected {
    const fn new(mimetype: &'static str, label: &'static str, extension: &'static str) -> Self {
        Detected {
            mimetype,
            label,
            extension,
        }
    }

    /// The worker's results: `{"mimetype", "label", "extension"}` in that
    /// order.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("mimetype".into(), self.mimetype.into());
        m.insert("label".into(), self.label.into());
        m.insert("extension".into(), self.extension.into());
        Value::Object(m)
    }
}

/// The answer for content nothing matched.
pub const UNKNOWN: Detected = Detected::new("application/octet-stream", "data", "bin");
/// The answer for an empty payload (libmagic's buffer answer).
pub const EMPTY: Detected = Detected::new("application/x-empty", "empty", "bin");

/// How much of the start of a payload the text checks read (libmagic reads
/// the same amount for its text/binary decision).
pub const TEXT_SAMPLE: usize = 64 * 1024;

/// Identify `data`. Never panics; the cost does not grow with the size of
/// `data` (see the module documentation).
pub fn detect(data: &[u8]) -> Detected {
    if data.is_empty() {
        return EMPTY;
    }
    if let Some(d) = detect_binary(data) {
        return d;
    }
    // Acrobat accepts a PDF header anywhere in the first KiB (so does
    // libmagic, after text).
    if find(&data[..data.len().min(1024)], b"%PDF-").is_some() {
        return PDF;
    }
    if let Some(d) = text::detect(data) {
        return d;
    }
    from_file_format(data)
}

// ----------------------------------------------------------------- helpers

fn get(data: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    data.get(off..off.checked_add(len)?)
}

fn at(data: &[u8], off: usize, sig: &[u8]) -> bool {
    get(data, off, sig.len()) == Some(sig)
}

fn u16le(data: &[u8], off: usize) -> Option<u16> {
    get(data, off, 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn u32le(data: &[u8], off: usize) -> Option<u32> {
    get(data, off, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u16e(data: &[u8], off: usize, be: bool) -> Option<u16> {
    let b: [u8; 2] = get(data, off, 2)?.try_into().ok()?;
    Some(if be {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    })
}

fn u32e(data: &[u8], off: usize, be: bool) -> Option<u32> {
    let b: [u8; 4] = get(data, off, 4)?.try_into().ok()?;
    Some(if be {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

fn u64e(data: &[u8], off: usize, be: bool) -> Option<u64> {
    let b: [u8; 8] = get(data, off, 8)?.try_into().ok()?;
    Some(if be {
        u64::from_be_bytes(b)
    } else {
        u64::from_le_bytes(b)
    })
}

/// First position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let last_start = hay.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        match hay[i..=last_start].iter().position(|&b| b == first) {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

// ---------------------------------------------------------- binary formats

const PDF: Detected = Detected::new("application/pdf", "PDF document", "pdf");
const RTF: Detected = Detected::new("text/rtf", "Rich Text Format document", "rtf");
const ZIP: Detected = Detected::new("application/zip", "ZIP archive", "zip");

fn detect_binary(data: &[u8]) -> Option<Detected> {
    let d = match data {
        [b'M', b'Z', ..] if data.len() >= 64 => detect_mz(data),
        [0x7f, b'E', b'L', b'F', ..] if data.len() >= 20 => detect_elf(data),
        [0xca, 0xfe, 0xba, 0xbe, ..] => detect_cafebabe(data)?,
        [0xfe, 0xed, 0xfa, 0xce, ..] | [0xce, 0xfa, 0xed, 0xfe, ..] => {
            Detected::new("application/x-mach-binary", "Mach-O 32-bit binary", "macho")
        }
        [0xfe, 0xed, 0xfa, 0xcf, ..] | [0xcf, 0xfa, 0xed, 0xfe, ..] => {
            Detected::new("application/x-mach-binary", "Mach-O 64-bit binary", "macho")
        }
        [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, ..] => ole::detect(data),
        [b'P', b'K', 3, 4, ..] if data.len() >= 30 => zip::detect(data),
        [b'P', b'K', 5, 6, ..] if data.len() >= 22 => ZIP,
        [b'%', b'P', b'D', b'F', b'-', ..] => PDF,
        // Office's ActiveMime container (macros of Word 2003 XML and MHTML
        // documents); libmagic has no rule for it.
        [b'A', b'c', b't', b'i', b'v', b'e', b'M', b'i', b'm', b'e', ..] => Detected::new(
            "application/x-mso",
            "Microsoft Office ActiveMime data",
            "mso",
        ),
        // Word opens anything that starts with `{\rt`; libmagic wants `{\rtf`.
        [b'{', b'\\', b'r', b't', ..] => RTF,
        [b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c, ..] => {
            Detected::new("application/x-7z-compressed", "7-Zip archive", "7z")
        }
        [0x1f, 0x8b, ..] => Detected::new("application/gzip", "gzip compressed data", "gz"),
        [b'B', b'Z', b'h', b'1'..=b'9', ..] if bzip2_ok(data) => {
            Detected::new("application/x-bzip2", "bzip2 compressed data", "bz2")
        }
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => {
            Detected::new("application/x-xz", "XZ compressed data", "xz")
        }
        [b'M', b'S', b'C', b'F', 0, 0, 0, 0, ..] => Detected::new(
            "application/vnd.ms-cab-compressed",
            "Microsoft Cabinet archive",
            "cab",
        ),
        [b'R', b'a', b'r', b'!', 0x1a, 7, 0, ..] => {
            Detected::new("application/x-rar", "RAR archive", "rar")
        }
        [b'R', b'a', b'r', b'!', 0x1a, 7, 1, 0, ..] => {
            Detected::new("application/x-rar", "RAR archive (v5)", "rar")
        }
        [0x78, 0x9f, 0x3e, 0x22, ..] => Detected::new(
            "application/vnd.ms-tnef",
            "Transport Neutral Encapsulation Format (TNEF)",
            "dat",
        ),
        [_, _, b'\r', b'\n', ..] if pyc_ok(data) => {
            Detected::new("application/x-bytecode.python", "Python bytecode", "pyc")
        }
        _ if tar_ok(data) => Detected::new("application/x-tar", "tar archive", "tar"),
        _ => return None,
    };
    Some(d)
}

/// `BZh<level>` followed by a block header (pi) or the end-of-stream marker
/// (sqrt pi), so that text starting with "BZh1" is not taken for bzip2.
fn bzip2_ok(data: &[u8]) -> bool {
    match get(data, 4, 6) {
        Some(m) => {
            m == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59] || m == [0x17, 0x72, 0x45, 0x38, 0x50, 0x90]
        }
        None => data.len() == 4,
    }
}

/// CPython bytecode: a known magic number followed by `\r\n`.
fn pyc_ok(data: &[u8]) -> bool {
    let Some(magic) = u16le(data, 0) else {
        return false;
    };
    data.len() >= 8
        && matches!(magic, 20121 | 50428 | 50823 | 60202 | 60717 | 62011..=62231 | 3000..=3800)
}

/// A tar header: `ustar` at 257, or (old V7 archives) a header whose
/// checksum is right.
fn tar_ok(data: &[u8]) -> bool {
    let Some(h) = get(data, 0, 512) else {
        return false;
    };
    if h[0] == 0 {
        return false;
    }
    if &h[257..262] == b"ustar" {
        return true;
    }
    // The checksum: octal digits, then NUL or space.
    let field = &h[148..156];
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    if digits.is_empty() || digits.len() > 7 {
        return false;
    }
    let stored = digits
        .iter()
        .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    stored == sum
}

/// MZ: PE32/PE32+ (DLL or not), NE, LE/LX or plain MS-DOS.
fn detect_mz(data: &[u8]) -> Detected {
    const DOS: Detected = Detected::new("application/x-dosexec", "MS-DOS executable", "exe");
    let Some(lfanew) = u32le(data, 0x3c) else {
        return DOS;
    };
    let lfanew = lfanew as usize;
    if at(data, lfanew, b"PE\0\0") {
        let dll = u16le(data, lfanew + 22).is_some_and(|c| c & 0x2000 != 0);
        let plus = u16le(data, lfanew + 24) == Some(0x20b);
        const MIME: &str = "application/vnd.microsoft.portable-executable";
        return match (plus, dll) {
            (false, false) => Detected::new(MIME, "PE32 executable", "exe"),
            (false, true) => Detected::new(MIME, "PE32 executable (DLL)", "dll"),
            (true, false) => Detected::new(MIME, "PE32+ executable", "exe"),
            (true, true) => Detected::new(MIME, "PE32+ executable (DLL)", "dll"),
        };
    }
    if at(data, lfanew, b"NE") {
        return Detected::new(
            "application/x-ms-ne-executable",
            "NE executable (16-bit Windows)",
            "exe",
        );
    }
    if at(data, lfanew, b"LE") || at(data, lfanew, b"LX") {
        return Detected::new("application/x-dosexec", "LE/LX executable", "exe");
    }
    DOS
}

/// ELF: the type, with libmagic's "pie executable" for shared objects
/// flagged DF_1_PIE.
fn detect_elf(data: &[u8]) -> Detected {
    let is64 = data[4] == 2;
    let be = data[5] == 2;
    let e_type = u16e(data, 16, be).unwrap_or(0);
    let (mime, labels, ext): (&str, [&str; 2], &str) = match e_type {
        1 => (
            "application/x-object",
            ["ELF 32-bit relocatable", "ELF 64-bit relocatable"],
            "o",
        ),
        2 => (
            "application/x-executable",
            ["ELF 32-bit executable", "ELF 64-bit executable"],
            "elf",
        ),
        3 if elf_is_pie(data, is64, be) => (
            "application/x-pie-executable",
            ["ELF 32-bit pie executable", "ELF 64-bit pie executable"],
            "elf",
        ),
        3 => (
            "application/x-sharedlib",
            ["ELF 32-bit shared object", "ELF 64-bit shared object"],
            "so",
        ),
        4 => (
            "application/x-coredump",
            ["ELF 32-bit core file", "ELF 64-bit core file"],
            "core",
        ),
        _ => (
            "application/octet-stream",
            ["ELF 32-bit file", "ELF 64-bit file"],
            "elf",
        ),
    };
    Detected::new(mime, labels[usize::from(is64)], ext)
}

/// Whether the dynamic section has DT_FLAGS_1 with DF_1_PIE (what libmagic
/// checks to tell a PIE from a shared library).
fn elf_is_pie(data: &[u8], is64: bool, be: bool) -> bool {
    const PT_DYNAMIC: u32 = 2;
    const DT_FLAGS_1: u64 = 0x6fff_fffb;
    const DF_1_PIE: u64 = 0x0800_0000;
    let field = |off: usize| -> Option<u64> {
        if is64 {
            u64e(data, off, be)
        } else {
            u32e(data, off, be).map(u64::from)
        }
    };
    let (phoff, phentsize, phnum) = if is64 {
        (u64e(data, 32, be), u16e(data, 54, be), u16e(data, 56, be))
    } else {
        (
            u32e(data, 28, be).map(u64::from),
            u16e(data, 42, be),
            u16e(data, 44, be),
        )
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (phoff, phentsize, phnum) else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    let word = if is64 { 8 } else { 4 };
    for i in 0..usize::from(phnum.min(256)) {
        let Some(ph) = i
            .checked_mul(usize::from(phentsize))
            .and_then(|o| o.checked_add(phoff))
        else {
            return false;
        };
        if u32e(data, ph, be) != Some(PT_DYNAMIC) {
            continue;
        }
        let (off, size) = if is64 {
            (field(ph + 8), field(ph + 32))
        } else {
            (field(ph + 4), field(ph + 16))
        };
        let (Some(off), Some(size)) = (off, size) else {
            return false;
        };
        let (Ok(off), Ok(size)) = (usize::try_from(off), usize::try_from(size)) else {
            return false;
        };
        // (Keeps the offsets below from overflowing.)
        if off >= data.len() {
            return false;
        }
        let entries = (size / (2 * word)).min(4096);
        for j in 0..entries {
            let e = off + j * 2 * word;
            match (field(e), field(e + word)) {
                (Some(0), _) | (None, _) | (_, None) => break,
                (Some(DT_FLAGS_1), Some(val)) => return val & DF_1_PIE != 0,
                _ => {}
            }
        }
        return false;
    }
    false
}

/// `CA FE BA BE`: a Mach-O universal binary (small architecture count) or
/// a Java class (the same bytes hold its version, always large).
fn detect_cafebabe(data: &[u8]) -> Option<Detected> {
    let n = u32e(data, 4, true)?;
    if (1..20).contains(&n) {
        Some(Detected::new(
            "application/x-mach-binary",
            "Mach-O universal binary",
            "macho",
        ))
    } else if n > 30 {
        Some(Detected::new(
            "application/x-java-applet",
            "Java class file",
            "class",
        ))
    } else {
        None
    }
}

// --------------------------------------------------------------------- OLE2

mod ole {
    use super::{get, u16le, u32le, Detected};

    const GENERIC: Detected =
        Detected::new("application/x-ole-storage", "OLE2 compound document", "cfb");
    /// Directory sectors read at most.
    const MAX_DIR_SECTORS: usize = 256;
    const ENTRY: usize = 128;

    /// OLE2: the application from the names at the top of the directory
    /// (libmagic's fallback rule, which gives the same answers as its
    /// summary-information rule on real Office files), MSI from the root
    /// CLSID, and whether a VBA project is stored.
    pub(super) fn detect(data: &[u8]) -> Detected {
        match scan(data) {
            Some(info) => classify(&info),
            None => GENERIC,
        }
    }

    #[derive(Default, Debug)]
    struct Info {
        encrypted: bool,
        word: bool,
        excel: bool,
        powerpoint: bool,
        outlook: bool,
        msi: bool,
        vba: bool,
    }

    fn classify(i: &Info) -> Detected {
        let (plain, macros) = if i.encrypted {
            return Detected::new(
                "application/encrypted",
                "Encrypted Microsoft Office document",
                "bin",
            );
        } else if i.word {
            (
                Detected::new(
                    "application/msword",
                    "Microsoft Word 97-2003 document",
                    "doc",
                ),
                "Microsoft Word 97-2003 document with VBA macros",
            )
        } else if i.excel {
            (
                Detected::new(
                    "application/vnd.ms-excel",
                    "Microsoft Excel 97-2003 workbook",
                    "xls",
                ),
                "Microsoft Excel 97-2003 workbook with VBA macros",
            )
        } else if i.powerpoint {
            (
                Detected::new(
                    "application/vnd.ms-powerpoint",
                    "Microsoft PowerPoint 97-2003 presentation",
                    "ppt",
                ),
                "Microsoft PowerPoint 97-2003 presentation with VBA macros",
            )
        } else if i.outlook {
            return Detected::new(
                "application/vnd.ms-outlook",
                "Microsoft Outlook message",
                "msg",
            );
        } else if i.msi {
            return Detected::new("application/x-msi", "Windows Installer package", "msi");
        } else {
            (GENERIC, "OLE2 compound document with VBA macros")
        };
        if i.vba {
            Detected {
                label: macros,
                ..plain
            }
        } else {
            plain
        }
    }

    /// Whether the directory entry's name is `want` (ASCII, any case).
    fn name_is(entry: &[u8], want: &str) -> bool {
        let len = usize::from(u16le(entry, 64).unwrap_or(0)).min(64);
        let units = (len / 2).saturating_sub(1);
        units == want.len()
            && want.bytes().enumerate().all(|(k, c)| {
                u16le(entry, 2 * k).is_some_and(|u| u < 128 && (u as u8).eq_ignore_ascii_case(&c))
            })
    }

    fn scan(data: &[u8]) -> Option<Info> {
        let shift = u16le(data, 0x1e)?;
        if shift != 9 && shift != 12 {
            return None;
        }
        let ss = 1usize << shift;
        let sector = |s: u32| (s as usize).checked_add(1)?.checked_mul(ss);
        // The next sector in a chain, through the FAT sectors listed in the
        // header (enough for the directory of any file up to 7 MiB with
        // 512-byte sectors, 3.5 GiB with 4 KiB sectors).
        let next = |s: u32| -> Option<u32> {
            let per = ss / 4;
            let idx = s as usize / per;
            if idx >= 109 {
                return None;
            }
            let fat = u32le(data, 0x4c + idx * 4)?;
            u32le(data, sector(fat)?.checked_add((s as usize % per) * 4)?)
        };
        let mut sectors: Vec<usize> = Vec::new();
        let mut s = u32le(data, 0x30)?;
        while s < 0xffff_fffa && sectors.len() < MAX_DIR_SECTORS {
            match sector(s).filter(|&o| get(data, o, ss).is_some()) {
                Some(o) => sectors.push(o),
                None => break,
            }
            match next(s) {
                Some(n) => s = n,
                None => break,
            }
        }
        let per_sector = ss / ENTRY;
        let count = sectors.len() * per_sector;
        let entry = |id: usize| -> Option<&[u8]> {
            let off = sectors.get(id / per_sector)? + (id % per_sector) * ENTRY;
            get(data, off, ENTRY)
        };
        let root = entry(0)?;
        let mut info = Info::default();
        const MSI: [&[u8]; 3] = [
            // {000C1084-0000-0000-C000-000000000046} and the patch and
            // transform variants.
            &[
                0x84, 0x10, 0x0c, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46,
            ],
            &[
                0x86, 0x10, 0x0c, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46,
            ],
            &[
                0x82, 0x10, 0x0c, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46,
            ],
        ];
        info.msi = MSI.contains(&&root[80..96]);
        // Any depth: a VBA project (Word keeps it in Macros/VBA, Excel in
        // _VBA_PROJECT_CUR/VBA; both hold a `_VBA_PROJECT` stream).
        info.vba = (1..count)
            .filter_map(entry)
            .any(|e| name_is(e, "_VBA_PROJECT"));
        // Top level: walk the red-black tree of the root's children.
        let mut seen = vec![false; count];
        let mut stack = vec![u32le(root, 76)?];
        while let Some(id) = stack.pop() {
            let id = id as usize;
            if id == 0 || id >= count || seen[id] {
                continue;
            }
            seen[id] = true;
            let Some(e) = entry(id) else { continue };
            if name_is(e, "EncryptedPackage") {
                info.encrypted = true;
            } else if name_is(e, "WordDocument") {
                info.word = true;
            } else if name_is(e, "Workbook") || name_is(e, "Book") {
                info.excel = true;
            } else if name_is(e, "PowerPoint Document") {
                info.powerpoint = true;
            } else if name_is(e, "__properties_version1.0") {
                info.outlook = true;
            }
            stack.extend([u32le(e, 68), u32le(e, 72)].into_iter().flatten());
        }
        Some(info)
    }
}

// ---------------------------------------------------------------------- ZIP

mod zip {
    use super::{at, get, u16le, u32le, Detected, ZIP};

    /// Central directory entries read at most.
    const MAX_ENTRIES: usize = 4096;
    /// Local headers walked at most when there is no central directory.
    const MAX_LOCAL: usize = 256;

    #[derive(Default, Debug)]
    struct Names {
        content_types: bool,
        word: bool,
        xl: bool,
        ppt: bool,
        visio: bool,
        macros: bool,
        manifest: bool,
        android_manifest: bool,
        dex: bool,
        /// Offset of the local header of a `mimetype` member.
        mimetype_at: Option<usize>,
    }

    impl Names {
        fn add(&mut self, name: &[u8], local: usize) {
            match name {
                b"[Content_Types].xml" => self.content_types = true,
                b"META-INF/MANIFEST.MF" => self.manifest = true,
                b"AndroidManifest.xml" => self.android_manifest = true,
                b"classes.dex" => self.dex = true,
                b"mimetype" => {
                    self.mimetype_at.get_or_insert(local);
                }
                _ => {}
            }
            if name.starts_with(b"word/") {
                self.word = true;
            } else if name.starts_with(b"xl/") {
                self.xl = true;
            } else if name.starts_with(b"ppt/") {
                self.ppt = true;
            } else if name.starts_with(b"visio/") {
                self.visio = true;
            }
            // VBA, or Excel 4 (XLM) macro sheets.
            if name.ends_with(b"vbaProject.bin") || name.starts_with(b"xl/macrosheets/") {
                self.macros = true;
            }
        }
    }

    pub(super) fn detect(data: &[u8]) -> Detected {
        let names = central_directory(data).unwrap_or_else(|| local_headers(data));
        // ODF, EPUB and friends: a stored `mimetype` member says what it is.
        if let Some(d) = names.mimetype_at.and_then(|o| by_mimetype_member(data, o)) {
            return d;
        }
        if names.content_types {
            const W: &str =
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
            const X: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
            const P: &str =
                "application/vnd.openxmlformats-officedocument.presentationml.presentation";
            let m = names.macros;
            if names.word {
                return if m {
                    Detected::new(W, "Microsoft Word 2007+ document (macro-enabled)", "docm")
                } else {
                    Detected::new(W, "Microsoft Word 2007+ document", "docx")
                };
            }
            if names.xl {
                return if m {
                    Detected::new(X, "Microsoft Excel 2007+ workbook (macro-enabled)", "xlsm")
                } else {
                    Detected::new(X, "Microsoft Excel 2007+ workbook", "xlsx")
                };
            }
            if names.ppt {
                return if m {
                    Detected::new(
                        P,
                        "Microsoft PowerPoint 2007+ presentation (macro-enabled)",
                        "pptm",
                    )
                } else {
                    Detected::new(P, "Microsoft PowerPoint 2007+ presentation", "pptx")
                };
            }
            if names.visio {
                return Detected::new(
                    "application/vnd.ms-visio.drawing.main+xml",
                    "Microsoft Visio 2013+ drawing",
                    "vsdx",
                );
            }
            return Detected::new("application/zip", "Microsoft OOXML package", "zip");
        }
        if names.android_manifest && names.dex {
            return Detected::new(
                "application/vnd.android.package-archive",
                "Android package (APK)",
                "apk",
            );
        }
        // libmagic's JAR rule: the first member's extra field starts with
        // the 0xCAFE header id.
        let cafe = u16le(data, 26)
            .and_then(|n| u16le(data, 30 + usize::from(n)))
            .is_some_and(|id| id == 0xcafe);
        match (cafe, names.manifest) {
            (true, _) => Detected::new("application/java-archive", "Java archive (JAR)", "jar"),
            (false, true) => Detected::new("application/zip", "Java archive (JAR)", "jar"),
            _ => ZIP,
        }
    }

    /// The names in the central directory, found through the end record.
    fn central_directory(data: &[u8]) -> Option<Names> {
        let tail_start = data.len().saturating_sub(22 + 0xffff);
        let tail = &data[tail_start..];
        let eocd = tail_start + tail.windows(4).rposition(|w| w == b"PK\x05\x06")?;
        let cd_size = u32le(data, eocd + 12)? as usize;
        let cd_off = u32le(data, eocd + 16)? as usize;
        // Data prepended to the archive (self-extractors) shifts every
        // offset: then the directory ends where the end record starts.
        let start = if at(data, cd_off, b"PK\x01\x02") {
            cd_off
        } else {
            eocd.checked_sub(cd_size)
                .filter(|&s| at(data, s, b"PK\x01\x02"))?
        };
        let shift = start - cd_off.min(start);
        let mut names = Names::default();
        let mut p = start;
        for _ in 0..MAX_ENTRIES {
            if !at(data, p, b"PK\x01\x02") {
                break;
            }
            let n = usize::from(u16le(data, p + 28)?);
            let e = usize::from(u16le(data, p + 30)?);
            let c = usize::from(u16le(data, p + 32)?);
            let local = (u32le(data, p + 42)? as usize).saturating_add(shift);
            let Some(name) = get(data, p + 46, n) else {
                break;
            };
            names.add(name, local);
            p += 46 + n + e + c;
        }
        Some(names)
    }

    /// The names in the local headers, from the start (for a truncated
    /// archive). Stops at a member whose size is only in a data descriptor.
    fn local_headers(data: &[u8]) -> Names {
        let mut names = Names::default();
        let mut p = 0usize;
        for _ in 0..MAX_LOCAL {
            if !at(data, p, b"PK\x03\x04") {
                break;
            }
            let (Some(flags), Some(size), Some(n), Some(e)) = (
                u16le(data, p + 6),
                u32le(data, p + 18),
                u16le(data, p + 26),
                u16le(data, p + 28),
            ) else {
                break;
            };
            let (n, e) = (usize::from(n), usize::from(e));
            let Some(name) = get(data, p + 30, n) else {
                break;
            };
            names.add(name, p);
            if flags & 8 != 0 && size == 0 {
                break;
            }
            p = p.saturating_add(30 + n + e).saturating_add(size as usize);
        }
        names
    }

    /// The type a stored `mimetype` member names, when it is one we know.
    fn by_mimetype_member(data: &[u8], local: usize) -> Option<Detected> {
        if !at(data, local, b"PK\x03\x04") || u16le(data, local + 8)? != 0 {
            return None;
        }
        let size = u32le(data, local + 18)? as usize;
        let n = usize::from(u16le(data, local + 26)?);
        let e = usize::from(u16le(data, local + 28)?);
        let content = get(data, local.checked_add(30 + n + e)?, size.min(128))?;
        let m = std::str::from_utf8(content).ok()?.trim();
        KNOWN_MIMETYPE_MEMBERS
            .iter()
            .find(|(t, _, _)| *t == m)
            .map(|(t, l, x)| Detected::new(t, l, x))
    }

    const KNOWN_MIMETYPE_MEMBERS: &[(&str, &str, &str)] = &[
        (
            "application/vnd.oasis.opendocument.text",
            "OpenDocument Text",
            "odt",
        ),
        (
            "application/vnd.oasis.opendocument.text-template",
            "OpenDocument Text template",
            "ott",
        ),
        (
            "application/vnd.oasis.opendocument.text-master",
            "OpenDocument Text master",
            "odm",
        ),
        (
            "application/vnd.oasis.opendocument.spreadsheet",
            "OpenDocument Spreadsheet",
            "ods",
        ),
        (
            "application/vnd.oasis.opendocument.spreadsheet-template",
            "OpenDocument Spreadsheet template",
            "ots",
        ),
        (
            "application/vnd.oasis.opendocument.presentation",
            "OpenDocument Presentation",
            "odp",
        ),
        (
            "application/vnd.oasis.opendocument.presentation-template",
            "OpenDocument Presentation template",
            "otp",
        ),
        (
            "application/vnd.oasis.opendocument.graphics",
            "OpenDocument Drawing",
            "odg",
        ),
        (
            "application/vnd.oasis.opendocument.graphics-template",
            "OpenDocument Drawing template",
            "otg",
        ),
        (
            "application/vnd.oasis.opendocument.formula",
            "OpenDocument Formula",
            "odf",
        ),
        (
            "application/vnd.oasis.opendocument.chart",
            "OpenDocument Chart",
            "odc",
        ),
        (
            "application/vnd.oasis.opendocument.image",
            "OpenDocument Image",
            "odi",
        ),
        (
            "application/vnd.oasis.opendocument.database",
            "OpenDocument Database",
            "odb",
        ),
        (
            "application/vnd.sun.xml.writer",
            "OpenOffice.org 1.x Writer document",
            "sxw",
        ),
        (
            "application/vnd.sun.xml.writer.template",
            "OpenOffice.org 1.x Writer template",
            "stw",
        ),
        (
            "application/vnd.sun.xml.writer.global",
            "OpenOffice.org 1.x Writer global document",
            "sxg",
        ),
        (
            "application/vnd.sun.xml.calc",
            "OpenOffice.org 1.x Calc spreadsheet",
            "sxc",
        ),
        (
            "application/vnd.sun.xml.calc.template",
            "OpenOffice.org 1.x Calc template",
            "stc",
        ),
        (
            "application/vnd.sun.xml.impress",
            "OpenOffice.org 1.x Impress presentation",
            "sxi",
        ),
        (
            "application/vnd.sun.xml.impress.template",
            "OpenOffice.org 1.x Impress template",
            "sti",
        ),
        (
            "application/vnd.sun.xml.draw",
            "OpenOffice.org 1.x Draw drawing",
            "sxd",
        ),
        (
            "application/vnd.sun.xml.draw.template",
            "OpenOffice.org 1.x Draw template",
            "std",
        ),
        (
            "application/vnd.sun.xml.math",
            "OpenOffice.org 1.x Math formula",
            "sxm",
        ),
        ("application/epub+zip", "EPUB document", "epub"),
    ];
}

// --------------------------------------------------------------------- text

mod text {
    use super::{at, find, Detected, TEXT_SAMPLE};

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Encoding {
        Ascii,
        Utf8,
        Utf16,
        EightBit,
    }

    /// Bytes libmagic never accepts in text (NUL and most C0 controls, DEL).
    fn is_bad(b: u8) -> bool {
        matches!(b, 0..=6 | 14..=26 | 28..=31 | 127)
    }

    /// Whether the sample is text, and how it is encoded. libmagic's rule
    /// (no NUL, no C0 control other than BEL BS TAB LF VT FF CR ESC, no
    /// DEL; any byte from 0x80 up) with one tolerance: from 1000 bytes on,
    /// one stray control byte per 1000 (a DOS end-of-file mark, a form
    /// feed in the wrong place) does not turn a text file into data.
    fn encoding(sample: &[u8]) -> Option<Encoding> {
        if sample.starts_with(&[0xff, 0xfe]) || sample.starts_with(&[0xfe, 0xff]) {
            return utf16(sample).then_some(Encoding::Utf16);
        }
        let body = sample.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(sample);
        if body.contains(&0) {
            return None;
        }
        // Counted in u8 per 255-byte chunk: vectorised, ~15x faster than a
        // usize counter per byte.
        let bad: usize = body
            .chunks(255)
            .map(|c| usize::from(c.iter().fold(0u8, |n, &b| n + u8::from(is_bad(b)))))
            .sum();
        if bad * 1000 > body.len() {
            return None;
        }
        if body.is_ascii() {
            return Some(Encoding::Ascii);
        }
        match std::str::from_utf8(body) {
            Ok(_) => Some(Encoding::Utf8),
            // Cut in the middle of a character by the sample boundary.
            Err(e) if e.error_len().is_none() && sample.len() == TEXT_SAMPLE => {
                Some(Encoding::Utf8)
            }
            Err(_) => Some(Encoding::EightBit),
        }
    }

    /// UTF-16 with a byte-order mark, without NUL or control characters.
    fn utf16(sample: &[u8]) -> bool {
        let be = sample[0] == 0xfe;
        let units = sample[2..].chunks_exact(2).map(|c| {
            if be {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_le_bytes([c[0], c[1]])
            }
        });
        let mut n = 0usize;
        let mut bad = 0usize;
        for u in units {
            n += 1;
            if u == 0 {
                return false;
            }
            if u < 128 && is_bad(u as u8) {
                bad += 1;
            }
        }
        bad * 1000 <= n
    }

    pub(super) fn detect(data: &[u8]) -> Option<Detected> {
        let sample = &data[..data.len().min(TEXT_SAMPLE)];
        let enc = encoding(sample)?;
        let truncated = data.len() > sample.len();
        if enc == Encoding::Utf16 {
            return Some(Detected::new("text/plain", "UTF-16 text", "txt"));
        }
        let body = sample.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(sample);
        Some(subtype(body, truncated).unwrap_or(match enc {
            Encoding::Ascii => Detected::new("text/plain", "ASCII text", "txt"),
            Encoding::Utf8 => Detected::new("text/plain", "UTF-8 text", "txt"),
            _ => Detected::new("text/plain", "8-bit text", "txt"),
        }))
    }

    /// The text sample, and the same as `str` when it is UTF-8 (for the
    /// fast substring search of `str`).
    struct Text<'a> {
        bytes: &'a [u8],
        utf8: Option<&'a str>,
    }

    impl<'a> Text<'a> {
        fn new(bytes: &'a [u8]) -> Self {
            let utf8 = match std::str::from_utf8(bytes) {
                Ok(s) => Some(s),
                // Cut inside a character at the end of the sample.
                Err(e) if e.error_len().is_none() => {
                    std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()
                }
                Err(_) => None,
            };
            Text { bytes, utf8 }
        }

        fn find(&self, needle: &str) -> Option<usize> {
            match self.utf8 {
                Some(s) => s.find(needle),
                None => find(self.bytes, needle.as_bytes()),
            }
        }
    }

    fn first_line(t: &[u8]) -> &[u8] {
        let end = t.iter().position(|&b| b == b'\n').unwrap_or(t.len());
        t[..end].strip_suffix(b"\r").unwrap_or(&t[..end])
    }

    /// Office documents saved as one XML file (by their root namespace):
    /// Word 2003 XML, flat OPC (Word/Excel/PowerPoint 2007+ "XML" formats)
    /// and Excel 2003 XML spreadsheets. They can hold DDE fields and, the
    /// first two, VBA projects.
    fn office_xml(head: &[u8]) -> Option<Detected> {
        let kinds: [(&[u8], &str); 3] = [
            (
                b"http://schemas.microsoft.com/office/2006/xmlPackage",
                "Microsoft Office flat OPC XML document",
            ),
            (
                b"http://schemas.microsoft.com/office/word/2003/wordml",
                "Microsoft Word 2003 XML document",
            ),
            (
                b"urn:schemas-microsoft-com:office:spreadsheet",
                "Microsoft Excel 2003 XML spreadsheet",
            ),
        ];
        kinds
            .iter()
            .find(|(ns, _)| find(head, ns).is_some())
            .map(|(_, label)| Detected::new("text/xml", label, "xml"))
    }

    /// The kinds of text libmagic names, in the order its rules win.
    fn subtype(t: &[u8], truncated: bool) -> Option<Detected> {
        if json(t, truncated) {
            return Some(Detected::new("application/json", "JSON data", "json"));
        }
        if let Some(d) = mail(t) {
            return Some(d);
        }
        if t.starts_with(b"#!") {
            return Some(shebang(first_line(t)));
        }
        if at(t, 0, b"<?xml") {
            let head = &t[..t.len().min(4096)];
            return Some(if find(head, b"<svg").is_some() {
                Detected::new("image/svg+xml", "SVG image", "svg")
            } else {
                office_xml(head).unwrap_or_else(|| Detected::new("text/xml", "XML document", "xml"))
            });
        }
        let trimmed = t.trim_ascii_start();
        if trimmed.starts_with(b"<?php") {
            return Some(Detected::new("text/x-php", "PHP script", "php"));
        }
        if trimmed.starts_with(b"<svg") {
            return Some(Detected::new("image/svg+xml", "SVG image", "svg"));
        }
        if html(t) {
            return Some(Detected::new("text/html", "HTML document", "html"));
        }
        if javascript(&Text::new(t)) {
            return Some(Detected::new(
                "application/javascript",
                "JavaScript source",
                "js",
            ));
        }
        if t.starts_with(b"%!") {
            return Some(Detected::new(
                "application/postscript",
                "PostScript document",
                "ps",
            ));
        }
        if trimmed.len() >= 9 && trimmed[..9].eq_ignore_ascii_case(b"@echo off") {
            return Some(Detected::new("text/x-msdos-batch", "DOS batch file", "bat"));
        }
        None
    }

    /// An object or array that parses as JSON (to the end of the sample
    /// when the payload is longer).
    fn json(t: &[u8], truncated: bool) -> bool {
        let s = t.trim_ascii();
        if !(s.starts_with(b"{") || s.starts_with(b"[")) {
            return false;
        }
        match serde_json::from_slice::<serde_json::Value>(s) {
            Ok(_) => true,
            Err(e) => truncated && e.is_eof(),
        }
    }

    /// E-mail and news. libmagic's rules on the first line (`From:`,
    /// `Date:`, `Received:`, `Return-Path:`, `Delivered-To:`,
    /// `Relay-Version:`; news: `Path:`, `Xref:`, `Article`), plus the
    /// stoQ dispatcher rule: `Date:` and `From:` header lines before the
    /// first empty line, whatever comes first.
    fn mail(t: &[u8]) -> Option<Detected> {
        const MAIL: Detected = Detected::new("message/rfc822", "e-mail message", "eml");
        const NEWS: Detected = Detected::new("message/news", "news article", "txt");
        for p in [&b"From:"[..], b"Date:", b"Received:", b"Relay-Version:"] {
            if t.starts_with(p) {
                return Some(MAIL);
            }
        }
        for p in [&b"return-path:"[..], b"delivered-to:"] {
            if t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p) {
                return Some(MAIL);
            }
        }
        // libmagic's "MIME entity text" (its media type stays text/plain):
        // what MHTML web archives (.mht) start with. The label routes them
        // to `smtp`, which takes them apart like a message.
        if t.starts_with(b"MIME-Version:") {
            return Some(Detected::new("text/plain", "MIME entity text", "mht"));
        }
        for p in [&b"Path:"[..], b"Xref:", b"Article"] {
            if t.starts_with(p) {
                return Some(NEWS);
            }
        }
        // Header block: `Name: value` lines (with folded continuations)
        // up to the first empty line.
        let (mut date, mut from) = (false, false);
        for (i, line) in t.split(|&b| b == b'\n').take(200).enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                break;
            }
            if i > 0 && (line[0] == b' ' || line[0] == b'\t') {
                continue;
            }
            let colon = line.iter().position(|&b| b == b':')?;
            let name = line[..colon].trim_ascii_end();
            if name.is_empty()
                || !name
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            {
                return None;
            }
            date |= name.eq_ignore_ascii_case(b"date");
            from |= name.eq_ignore_ascii_case(b"from");
            if date && from {
                return Some(MAIL);
            }
        }
        None
    }

    /// `#!` scripts, by interpreter (through `env`).
    fn shebang(line: &[u8]) -> Detected {
        let line = String::from_utf8_lossy(&line[2..]);
        let mut words = line.split_ascii_whitespace();
        let mut prog = words.next().unwrap_or("");
        prog = prog.rsplit('/').next().unwrap_or(prog);
        if prog == "env" {
            prog = words.find(|w| !w.starts_with('-')).unwrap_or("");
        }
        // Versioned names too: python3.11, perl5.36-x86_64-linux-gnu.
        let is = |name: &str| {
            prog.strip_prefix(name).is_some_and(|rest| {
                rest.is_empty()
                    || rest.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-')
            })
        };
        if [
            "sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "csh", "tcsh", "fish",
        ]
        .into_iter()
        .any(is)
        {
            Detected::new("text/x-shellscript", "shell script", "sh")
        } else if is("python") || is("pypy") {
            Detected::new("text/x-script.python", "Python script", "py")
        } else if is("perl") {
            Detected::new("text/x-perl", "Perl script", "pl")
        } else if is("ruby") {
            Detected::new("text/x-ruby", "Ruby script", "rb")
        } else if is("php") {
            Detected::new("text/x-php", "PHP script", "php")
        } else if is("node") || is("nodejs") {
            Detected::new("application/javascript", "Node.js script", "js")
        } else if is("lua") {
            Detected::new("text/x-lua", "Lua script", "lua")
        } else if is("tclsh") || is("wish") {
            Detected::new("text/x-tcl", "Tcl script", "tcl")
        } else if is("awk") || is("gawk") || is("mawk") || is("nawk") {
            Detected::new("text/x-awk", "awk script", "awk")
        } else {
            Detected::new("text/plain", "script", "txt")
        }
    }

    /// libmagic's HTML rules: one of these tags in the first 4 KiB (one
    /// pass over the `<` there).
    fn html(t: &[u8]) -> bool {
        let head = &t[..t.len().min(4096)];
        let trimmed = head.trim_ascii_start();
        if trimmed.len() >= 5 && trimmed[..5].eq_ignore_ascii_case(b"<html") {
            return true;
        }
        // Tags that must end there (`<head>`, `<head ...`, not `<header>`),
        // then prefixes that are enough.
        const TAGS: [&[u8]; 6] = [
            b"<head", b"<title", b"<html", b"<script", b"<style", b"<table",
        ];
        const PREFIXES: [&[u8]; 2] = [b"<!doctype html", b"<a href="];
        let starts_nocase = |rest: &[u8], p: &[u8]| {
            rest.len() >= p.len() && rest[..p.len()].eq_ignore_ascii_case(p)
        };
        head.iter()
            .enumerate()
            .filter(|(_, &b)| b == b'<')
            .any(|(i, _)| {
                let rest = &head[i..];
                PREFIXES.iter().any(|p| starts_nocase(rest, p))
                    || TAGS.iter().any(|tag| {
                        starts_nocase(rest, tag)
                            && matches!(
                                rest.get(tag.len()),
                                Some(b'>' | b' ' | b'\t' | b'\n' | b'\r')
                            )
                    })
            })
    }

    /// libmagic's JavaScript rules: `"use strict"`, `module.exports =`, or
    /// a first `const|var|let ... = require(` line.
    fn javascript(t: &Text) -> bool {
        if t.find("\"use strict\"").is_some() || t.find("'use strict'").is_some() {
            return true;
        }
        if let Some(p) = t
            .find("module.exports")
            .or_else(|| t.find("module[\"exports\"]"))
        {
            if t.bytes[p..].iter().take(200).any(|&b| b == b'=') {
                return true;
            }
        }
        let line = first_line(t.bytes);
        (line.starts_with(b"const ") || line.starts_with(b"var ") || line.starts_with(b"let "))
            && find(line, b"=").is_some()
            && find(line, b"require(").is_some()
    }
}

// ------------------------------------------------------- file-format tail

/// Everything else, from file-format's signature table; media types
/// renamed to libmagic's where they differ, labels shortened for the usual
/// formats.
fn from_file_format(data: &[u8]) -> Detected {
    // file-format forbids unsafe code and bounds its readers; a panic would
    // still be a bug in it, not a reason to fail the scan.
    let found = std::panic::catch_unwind(|| FileFormat::from_bytes(data))
        .unwrap_or(FileFormat::ArbitraryBinaryData);
    // The same variant from file-format's static tables, so that its names
    // borrow for 'static.
    let Some(fmt) = FileFormat::from_kind(found.kind())
        .iter()
        .find(|f| **f == found)
    else {
        return UNKNOWN;
    };
    use FileFormat as F;
    let (mime, label): (&'static str, &'static str) = match *fmt {
        F::ArbitraryBinaryData | F::Empty => return UNKNOWN,
        F::JointPhotographicExpertsGroup => ("image/jpeg", "JPEG image"),
        F::PortableNetworkGraphics => ("image/png", "PNG image"),
        F::GraphicsInterchangeFormat => ("image/gif", "GIF image"),
        F::WindowsBitmap => ("image/bmp", "BMP image"),
        F::TagImageFileFormat => ("image/tiff", "TIFF image"),
        F::WindowsIcon => ("image/vnd.microsoft.icon", "Windows icon"),
        F::Webp => ("image/webp", "WebP image"),
        F::RoshalArchive => ("application/x-rar", "RAR archive"),
        F::ArchivedByRobertJung => ("application/x-arj", "ARJ archive"),
        F::Ace => ("application/x-ace-compressed", "ACE archive"),
        F::RedHatPackageManager => ("application/x-rpm", "RPM package"),
        F::DebianPackage => ("application/vnd.debian.binary-package", "Debian package"),
        F::MicrosoftCompiledHtmlHelp => ("application/vnd.ms-htmlhelp", "Windows HtmlHelp (CHM)"),
        F::WindowsShortcut => ("application/x-ms-shortcut", "Windows shortcut (LNK)"),
        F::DerCertificate => ("application/x-x509-ca-cert", "DER certificate"),
        F::SmallWebFormat => ("application/x-shockwave-flash", "Adobe Flash (SWF)"),
        F::Zstandard => ("application/zstd", "Zstandard compressed data"),
        F::Lz4 => ("application/x-lz4", "LZ4 compressed data"),
        F::LempelZivMarkovChainAlgorithm => ("application/x-lzma", "LZMA compressed data"),
        F::Iso9660 => ("application/x-iso9660-image", "ISO 9660 image"),
        F::Id3v2 | F::Mpeg12AudioLayer3 => ("audio/mpeg", "MP3 audio"),
        F::MatroskaVideo => ("video/x-matroska", "Matroska video"),
        F::JavaClass => ("application/x-java-applet", "Java class file"),
        _ => (fmt.media_type(), fmt.name()),
    };
    Detected::new(mime, label, fmt.extension())
}

// ------------------------------------------------------------------ worker

/// The `mimetype` worker.
#[derive(Debug, Default)]
pub struct MimetypeWorker;

#[async_trait]
impl Worker for MimetypeWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        // Bounded work (see `detect`): no need for the blocking pool.
        let d = detect(&payload.content);
        tracing::debug!(
            payload = payload.id(),
            mimetype = d.mimetype,
            label = d.label,
            "mimetype"
        );
        Ok(Some(WorkerResponse::with_results(d.to_json())))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("mimetype", &[PluginClass::Worker], |_cfg| {
        Ok(PluginInstance::new().worker(Arc::new(MimetypeWorker)))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "Identify the payload's type from its content: mimetype (libmagic's media type where \
         libmagic knows the format), label, extension",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mime(data: &[u8]) -> &'static str {
        detect(data).mimetype
    }

    #[test]
    fn public_plugin_vector() {
        assert_eq!(mime(b"This is a magical string"), "text/plain");
    }

    #[test]
    fn text_and_binary() {
        assert_eq!(detect(b""), EMPTY);
        assert_eq!(detect(b"hello\n").label, "ASCII text");
        assert_eq!(detect("h\u{e9}llo\n".as_bytes()).label, "UTF-8 text");
        assert_eq!(detect(b"h\xe9llo\n").label, "8-bit text");
        assert_eq!(detect(b"\xff\xfeh\0i\0").label, "UTF-16 text");
        assert_eq!(mime(b"hello\x01world"), "application/octet-stream");
        assert_eq!(mime(b"hello\0world"), "application/octet-stream");
        // One stray control byte in a long text is tolerated.
        let mut long = b"lorem ipsum ".repeat(100);
        long.push(0x1a);
        assert_eq!(mime(&long), "text/plain");
        // A UTF-8 character cut by the sample boundary.
        let mut cut = vec![b'a'; TEXT_SAMPLE - 1];
        cut.extend_from_slice("\u{e9}tc".as_bytes());
        assert_eq!(detect(&cut).label, "UTF-8 text");
    }

    #[test]
    fn text_subtypes_follow_libmagic() {
        // Each answer checked with `file --mime-type` 5.44.
        let cases: &[(&[u8], &str)] = &[
            (b"{\"a\": 1, \"b\": [1,2]}\n", "application/json"),
            (b"[1, 2, 3]\n", "application/json"),
            (b"{\"a\":}\n", "text/plain"),
            (
                b"<!DOCTYPE html>\n<html><body>hi</body></html>\n",
                "text/html",
            ),
            (b"x\n<script>\n", "text/html"),
            (b"<html>", "text/html"),
            (
                b"<!DOCTYPE html>\n<html><script>\"use strict\";</script></html>\n",
                "text/html",
            ),
            (b"#!/bin/sh\necho hi\n", "text/x-shellscript"),
            (b"#!/usr/bin/env bash\n", "text/x-shellscript"),
            (b"#!/usr/bin/python3.11\n", "text/x-script.python"),
            (
                b"#!/usr/bin/env python3\nprint(1)\n",
                "text/x-script.python",
            ),
            (b"#!/usr/bin/perl\n", "text/x-perl"),
            (b"#!/usr/bin/env ruby\n", "text/x-ruby"),
            (b"#!/usr/bin/env node\n", "application/javascript"),
            (b"<?php echo 1; ?>\n", "text/x-php"),
            (b"<?xml version=\"1.0\"?>\n<a/>\n", "text/xml"),
            (
                b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n",
                "image/svg+xml",
            ),
            (b"  \n<?xml version=\"1.0\"?><a/>", "text/plain"),
            (
                b"/*! jQuery v3 */\n!function(e,t){\"use strict\";}(this);\n",
                "application/javascript",
            ),
            (b"module.exports = 1\n", "application/javascript"),
            (b"const x = require('y')\n", "application/javascript"),
            (b"var x = 1;\nfunction f(){}\n", "text/plain"),
            (b"%!PS-Adobe-3.0\n", "application/postscript"),
            (b"@ECHO OFF\r\n", "text/x-msdos-batch"),
            (
                b"From: a@b.c\nTo: d@e.f\nSubject: x\n\nbody\n",
                "message/rfc822",
            ),
            (b"Date: x\nFoo: bar\n\nbody text here\n", "message/rfc822"),
            (b"Received: from x\nFrom: a@b.c\n\nbody\n", "message/rfc822"),
            (b"Return-Path: <a@b.c>\nX: y\n\nbody\n", "message/rfc822"),
            (b"Delivered-To: a@b.c\n\nbody\n", "message/rfc822"),
            (b"Path: x\nFoo: bar\n\nbody\n", "message/news"),
            (b"Subject: x\nFrom: a@b.c\n\nbody\n", "text/plain"),
            (
                b"MIME-Version: 1.0\nContent-Type: text/plain\n\nbody\n",
                "text/plain",
            ),
            (b"{\\rtf1 hi}", "text/rtf"),
            (b"%PDF-1.4\n", "application/pdf"),
            (b"junk\n%PDF-1.4\n", "application/pdf"),
            // libmagic: data; Acrobat opens it, so do we.
            (b"\0\x01junk\n%PDF-1.4\n", "application/pdf"),
            (b"MZ", "text/plain"),
            (
                b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                "application/zip",
            ),
            (b"BZh91AY&SY", "application/x-bzip2"),
        ];
        for (data, want) in cases {
            assert_eq!(mime(data), *want, "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn office_xml_documents_are_named() {
        for (root, label) in [
            (
                r#"<pkg:package xmlns:pkg="http://schemas.microsoft.com/office/2006/xmlPackage">"#,
                "Microsoft Office flat OPC XML document",
            ),
            (
                r#"<w:wordDocument xmlns:w="http://schemas.microsoft.com/office/word/2003/wordml">"#,
                "Microsoft Word 2003 XML document",
            ),
            (
                r#"<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">"#,
                "Microsoft Excel 2003 XML spreadsheet",
            ),
            (
                r#"<feed xmlns="http://www.w3.org/2005/Atom">"#,
                "XML document",
            ),
        ] {
            let doc = format!("<?xml version=\"1.0\"?>\n{root}</x>");
            let d = detect(doc.as_bytes());
            assert_eq!((d.mimetype, d.label), ("text/xml", label), "{root}");
        }
        let d = detect(b"ActiveMime\x00\x00\x01\xf0\x04\x00\x00\x00\xff\xff\xff\xff");
        assert_eq!(d.mimetype, "application/x-mso");
        let mht = b"MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=\"b\"\r\n\r\n--b--\r\n";
        assert_eq!(
            (detect(mht).mimetype, detect(mht).label),
            ("text/plain", "MIME entity text")
        );
    }

    #[test]
    fn stoq_dispatcher_mail_rule_goes_beyond_libmagic() {
        // libmagic: text/plain (first line not a mail header); the stoQ
        // smtp_message rule (Date and From before the first empty line)
        // and this detector: e-mail.
        let m = b"X-Mailer: x\r\nFrom: a@b.c\r\nDate: Wed\r\n\r\nbody\r\n";
        assert_eq!(mime(m), "message/rfc822");
        assert_eq!(mime(b"Hello world\nDate: x\nFrom: y\n\n"), "text/plain");
    }

    #[test]
    fn synthetic_headers() {
        let mut mz = vec![0u8; 256];
        mz[..2].copy_from_slice(b"MZ");
        assert_eq!(detect(&mz).label, "MS-DOS executable");
        mz[0x3c] = 0x80;
        mz[0x80..0x84].copy_from_slice(b"PE\0\0");
        mz[0x80 + 24..0x80 + 26].copy_from_slice(&0x20bu16.to_le_bytes());
        mz[0x80 + 22..0x80 + 24].copy_from_slice(&0x2022u16.to_le_bytes());
        assert_eq!(detect(&mz).label, "PE32+ executable (DLL)");
        assert_eq!(detect(&mz).extension, "dll");
        mz[0x80..0x82].copy_from_slice(b"NE");
        assert_eq!(mime(&mz), "application/x-ms-ne-executable");
        // e_lfanew far outside the buffer.
        mz[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(mime(&mz), "application/x-dosexec");

        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        for (t, want) in [
            (1u16, "application/x-object"),
            (2, "application/x-executable"),
            (3, "application/x-sharedlib"),
            (4, "application/x-coredump"),
        ] {
            elf[16..18].copy_from_slice(&t.to_le_bytes());
            assert_eq!(mime(&elf), want);
        }

        // A PIE: PT_DYNAMIC with DT_FLAGS_1 = DF_1_PIE.
        let mut pie = vec![0u8; 256];
        pie[..6].copy_from_slice(b"\x7fELF\x02\x01");
        pie[16..18].copy_from_slice(&3u16.to_le_bytes());
        pie[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        pie[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        pie[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        pie[64..68].copy_from_slice(&2u32.to_le_bytes()); // PT_DYNAMIC
        pie[72..80].copy_from_slice(&200u64.to_le_bytes()); // p_offset
        pie[96..104].copy_from_slice(&32u64.to_le_bytes()); // p_filesz
        pie[200..208].copy_from_slice(&0x6fff_fffbu64.to_le_bytes());
        pie[208..216].copy_from_slice(&0x0800_0000u64.to_le_bytes());
        assert_eq!(detect(&pie).label, "ELF 64-bit pie executable");
        // A dynamic section offset far outside the buffer.
        pie[72..80].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        assert_eq!(mime(&pie), "application/x-sharedlib");

        let fat = b"\xca\xfe\xba\xbe\0\0\0\x02rest";
        assert_eq!(mime(fat), "application/x-mach-binary");
        let class = b"\xca\xfe\xba\xbe\0\0\0\x36rest";
        assert_eq!(mime(class), "application/x-java-applet");
        assert_eq!(
            detect(b"\xcf\xfa\xed\xfe\x07\0\0\x01").label,
            "Mach-O 64-bit binary"
        );

        assert_eq!(mime(b"Rar!\x1a\x07\x01\x00xx"), "application/x-rar");
        assert_eq!(mime(b"\xfd7zXZ\0xxxx"), "application/x-xz");
        assert_eq!(
            mime(b"MSCF\0\0\0\0xxxx"),
            "application/vnd.ms-cab-compressed"
        );
        assert_eq!(mime(b"7z\xbc\xaf\x27\x1cxx"), "application/x-7z-compressed");
        assert_eq!(mime(b"\x1f\x8b\x08\0"), "application/gzip");
        assert_eq!(
            mime(b"\xcb\x0d\r\n\0\0\0\0\0\0\0\0"),
            "application/x-bytecode.python"
        );

        // A V7 tar header (no ustar magic) with a right checksum.
        let mut tar = vec![0u8; 1024];
        tar[..5].copy_from_slice(b"a.txt");
        tar[100..108].copy_from_slice(b"0000644\0");
        tar[124..136].copy_from_slice(b"00000000000\0");
        let sum: u32 = tar[..512]
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        tar[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert_eq!(mime(&tar), "application/x-tar");
        tar[0] = b'b';
        assert_ne!(mime(&tar), "application/x-tar");
    }

    #[test]
    fn never_panics_on_noise_and_truncations() {
        // xorshift noise, and every prefix of several crafted headers.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut noise = vec![0u8; 70_000];
        for b in noise.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let heads: [&[u8]; 10] = [
            b"MZ",
            b"\x7fELF\x01\x02",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0",
            b"\x7fELF\x02\x02\x01\0\0\0\0\0\0\0\0\0\0\x03",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            b"PK\x03\x04",
            b"\xca\xfe\xba\xbe",
            b"{\\rtf1",
            b"\x1aE\xdf\xa3",
            b"\0\0\0\x20ftypisom",
        ];
        for h in heads {
            let mut d = noise.clone();
            d[..h.len()].copy_from_slice(h);
            for len in (0..600).chain([4096, 65_535, 65_536, 65_537, 70_000]) {
                let r = detect(&d[..len]);
                assert!(!r.mimetype.is_empty());
            }
        }
        for len in 0..2000 {
            let _ = detect(&noise[..len]);
        }
    }
}
