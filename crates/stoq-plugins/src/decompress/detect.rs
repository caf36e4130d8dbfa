//! Archive formats and their detection by magic bytes.

use std::fmt;

/// The formats the plugin knows. `Tar*` are tar archives inside a
/// compressed stream, extracted in one go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Zip,
    Tar,
    Gzip,
    TarGzip,
    Bzip2,
    TarBzip2,
    Xz,
    TarXz,
    Lzma,
    TarLzma,
    SevenZip,
    Cab,
    Ar,
    Cpio,
    Rpm,
    // Through an external tool only.
    Rar,
    Ace,
    Arj,
    Lzh,
    Iso,
}

impl Format {
    /// The name used in results and in `extra_data.archive_format`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::Tar => "tar",
            Format::Gzip => "gzip",
            Format::TarGzip => "tar.gz",
            Format::Bzip2 => "bzip2",
            Format::TarBzip2 => "tar.bz2",
            Format::Xz => "xz",
            Format::TarXz => "tar.xz",
            Format::Lzma => "lzma",
            Format::TarLzma => "tar.lzma",
            Format::SevenZip => "7z",
            Format::Cab => "cab",
            Format::Ar => "ar",
            Format::Cpio => "cpio",
            Format::Rpm => "rpm",
            Format::Rar => "rar",
            Format::Ace => "ace",
            Format::Arj => "arj",
            Format::Lzh => "lzh",
            Format::Iso => "iso",
        }
    }

    /// A format name as given in `extra_data.archiver` (a few aliases
    /// accepted, any case).
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "zip" | "jar" | "apk" => Format::Zip,
            "tar" => Format::Tar,
            "gzip" | "gz" | "gunzip" => Format::Gzip,
            "tar.gz" | "tgz" => Format::TarGzip,
            "bzip2" | "bz2" => Format::Bzip2,
            "tar.bz2" | "tbz2" | "tbz" => Format::TarBzip2,
            "xz" => Format::Xz,
            "tar.xz" | "txz" => Format::TarXz,
            "lzma" => Format::Lzma,
            "tar.lzma" => Format::TarLzma,
            "7z" | "7zip" | "7-zip" => Format::SevenZip,
            "cab" => Format::Cab,
            "ar" | "deb" => Format::Ar,
            "cpio" => Format::Cpio,
            "rpm" => Format::Rpm,
            "rar" => Format::Rar,
            "ace" => Format::Ace,
            "arj" => Format::Arj,
            "lzh" | "lha" => Format::Lzh,
            "iso" => Format::Iso,
            _ => return None,
        })
    }

    /// Whether the plugin reads this format itself (else it needs an
    /// external tool).
    pub fn is_native(self) -> bool {
        !matches!(
            self,
            Format::Rar | Format::Ace | Format::Arj | Format::Lzh | Format::Iso
        )
    }

    /// The tar-in-stream format for a single-stream format.
    pub fn with_tar(self) -> Format {
        match self {
            Format::Gzip => Format::TarGzip,
            Format::Bzip2 => Format::TarBzip2,
            Format::Xz => Format::TarXz,
            Format::Lzma => Format::TarLzma,
            f => f,
        }
    }

    /// The stream format under a tar-in-stream format.
    pub fn without_tar(self) -> Format {
        match self {
            Format::TarGzip => Format::Gzip,
            Format::TarBzip2 => Format::Bzip2,
            Format::TarXz => Format::Xz,
            Format::TarLzma => Format::Lzma,
            f => f,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The format of `data` by its magic bytes, or `None`. Tar inside a
/// compressed stream is reported as the stream format here; the extractor
/// looks inside.
pub fn detect(data: &[u8]) -> Option<Format> {
    let at = |off: usize, magic: &[u8]| data.get(off..off + magic.len()) == Some(magic);
    if at(0, b"PK\x03\x04")
        || at(0, b"PK\x05\x06")
        || (at(0, b"PK\x07\x08") || at(0, b"PK00")) && at(4, b"PK\x03\x04")
    {
        return Some(Format::Zip);
    }
    if at(0, &[0x1f, 0x8b, 0x08]) {
        return Some(Format::Gzip);
    }
    if at(0, b"BZh") && data.get(3).is_some_and(|b| (b'1'..=b'9').contains(b)) {
        return Some(Format::Bzip2);
    }
    if at(0, &[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Some(Format::Xz);
    }
    if at(0, &[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c]) {
        return Some(Format::SevenZip);
    }
    if at(0, b"MSCF\0\0\0\0") {
        return Some(Format::Cab);
    }
    if at(0, b"Rar!\x1a\x07\x00") || at(0, b"Rar!\x1a\x07\x01\x00") {
        return Some(Format::Rar);
    }
    if at(7, b"**ACE**") {
        return Some(Format::Ace);
    }
    if at(0, b"!<arch>\n") {
        return Some(Format::Ar);
    }
    if at(0, &[0xed, 0xab, 0xee, 0xdb]) {
        return Some(Format::Rpm);
    }
    if at(0, b"070701") || at(0, b"070702") || at(0, b"070707") {
        return Some(Format::Cpio);
    }
    if is_tar_header(data) {
        return Some(Format::Tar);
    }
    if at(0, &[0x60, 0xea]) && arj_header_ok(data) {
        return Some(Format::Arj);
    }
    if at(2, b"-l") && data.get(6) == Some(&b'-') && matches!(data.get(3), Some(b'h' | b'z')) {
        return Some(Format::Lzh);
    }
    if at(0x8001, b"CD001") {
        return Some(Format::Iso);
    }
    if is_lzma_alone(data) {
        return Some(Format::Lzma);
    }
    None
}

/// Whether `block` starts with a tar header: the POSIX/GNU `ustar` magic,
/// or (old v7 tar) a non-empty name and a valid header checksum.
pub fn is_tar_header(block: &[u8]) -> bool {
    let Some(h) = block.get(..512) else {
        return false;
    };
    if &h[257..262] == b"ustar" && checksum_ok(h) {
        return true;
    }
    h[0] != 0 && checksum_ok(h)
}

fn checksum_ok(h: &[u8]) -> bool {
    let field = &h[148..156];
    let digits: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let digits = digits.trim();
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return false;
    }
    let Ok(stored) = u32::from_str_radix(digits, 8) else {
        return false;
    };
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    // Some old tars summed signed chars.
    let signed: i64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as i8 as i64
            }
        })
        .sum();
    stored == sum || stored as i64 == signed
}

fn arj_header_ok(data: &[u8]) -> bool {
    // Basic header size (little endian) is at most 2600 bytes.
    match data.get(2..4) {
        Some(s) => {
            let n = u16::from_le_bytes([s[0], s[1]]);
            (1..=2600).contains(&n)
        }
        None => false,
    }
}

/// The `.lzma` ("LZMA alone") header has no magic: properties byte,
/// dictionary size, uncompressed size (or all ones). The range coder's
/// first byte is always zero, which makes false positives rare.
fn is_lzma_alone(data: &[u8]) -> bool {
    if data.len() < 14 || data[0] >= 225 || data[13] != 0 {
        return false;
    }
    let dict = u32::from_le_bytes([data[1], data[2], data[3], data[4]]);
    let size = u64::from_le_bytes([
        data[5], data[6], data[7], data[8], data[9], data[10], data[11], data[12],
    ]);
    let dict_ok = (12..=30).any(|n| dict == 1 << n || dict == (1 << n) + (1 << (n - 1)));
    dict_ok && (size == u64::MAX || size < 1 << 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics() {
        assert_eq!(detect(b"PK\x03\x04rest"), Some(Format::Zip));
        assert_eq!(detect(b"PK\x05\x06\0\0"), Some(Format::Zip));
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Some(Format::Gzip));
        assert_eq!(detect(b"BZh91AY&SY"), Some(Format::Bzip2));
        assert_eq!(detect(b"BZhx"), None);
        assert_eq!(detect(b"Rar!\x1a\x07\x00"), Some(Format::Rar));
        assert_eq!(detect(b"!<arch>\ndebian-binary"), Some(Format::Ar));
        assert_eq!(detect(b"just some text that is not an archive"), None);
        assert_eq!(detect(b""), None);
        let mut lzma = vec![
            0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,
        ];
        assert_eq!(detect(&lzma), Some(Format::Lzma));
        lzma[13] = 1;
        assert_eq!(detect(&lzma), None);
    }

    #[test]
    fn names() {
        for f in [Format::Zip, Format::TarGzip, Format::SevenZip, Format::Rar] {
            assert_eq!(Format::from_name(f.as_str()), Some(f));
        }
        assert_eq!(Format::from_name(" 7ZIP "), Some(Format::SevenZip));
        assert_eq!(Format::from_name("upx"), None);
    }
}
