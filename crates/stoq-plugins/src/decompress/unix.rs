//! The simple Unix containers: `ar` (and so `.deb`), `cpio` (newc, crc,
//! odc) and RPM (whose one member is its compressed cpio payload).

use super::extract::{Ctx, Extraction};
use super::limits::{read_capped, Metered, Ratio, ReadOutcome};

/// Copy one stored (uncompressed) member out through the budget.
/// `false` when the extraction must end.
fn stored(data: &[u8], path: String, ctx: &Ctx<'_>, out: &mut Extraction) -> bool {
    let mut m = Metered::new(data, &ctx.budget, Ratio::Off);
    match read_capped(&mut m, ctx.budget.limits.maximum_size, data.len() as u64) {
        ReadOutcome::Data(v) => out.push(path, v, false),
        ReadOutcome::TooLarge => {
            out.member_stopped(&path, super::limits::Stop::MemberSize, &ctx.budget.limits)
        }
        ReadOutcome::Failed(_) => return false,
    }
    true
}

fn field(d: &[u8], range: std::ops::Range<usize>) -> &str {
    std::str::from_utf8(d.get(range).unwrap_or_default())
        .unwrap_or_default()
        .trim()
}

// ---------------------------------------------------------------- ar ----

pub(crate) fn extract_ar(data: &[u8], ctx: &Ctx<'_>, out: &mut Extraction) {
    let mut pos = 8; // "!<arch>\n"
    let mut long_names: &[u8] = &[];
    while pos + 60 <= data.len() {
        if ctx.budget.entry().is_err() {
            return;
        }
        let h = &data[pos..pos + 60];
        if &h[58..60] != b"`\n" {
            out.error(format!("ar: bad member header at offset {pos}"));
            return;
        }
        let Ok(size) = field(h, 48..58).parse::<usize>() else {
            out.error(format!("ar: bad member size at offset {pos}"));
            return;
        };
        let start = pos + 60;
        let Some(body) = start.checked_add(size).and_then(|end| data.get(start..end)) else {
            out.error(format!("ar: member at offset {pos} runs past the end"));
            return;
        };
        pos = start + size + (size & 1);
        let raw_name = field(h, 0..16);
        let (name, content) = if raw_name == "/" || raw_name == "/SYM64/" || raw_name == "__.SYMDEF"
        {
            continue; // symbol table
        } else if raw_name == "//" {
            long_names = body;
            continue;
        } else if let Some(n) = raw_name.strip_prefix("#1/") {
            // BSD: the name is the first n bytes of the data.
            let n: usize = n.parse().unwrap_or(usize::MAX);
            let Some(name) = body.get(..n) else {
                out.error(format!("ar: bad BSD long name at offset {}", start - 60));
                return;
            };
            let name = String::from_utf8_lossy(name)
                .trim_end_matches('\0')
                .to_string();
            (name, &body[n..])
        } else if let Some(off) = raw_name
            .strip_prefix('/')
            .and_then(|o| o.parse::<usize>().ok())
        {
            // GNU: "/<offset>" into the "//" table, names end with "/\n".
            let rest = long_names.get(off..).unwrap_or_default();
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let name = String::from_utf8_lossy(&rest[..end]);
            (name.trim_end_matches('/').to_string(), body)
        } else {
            (raw_name.trim_end_matches('/').to_string(), body)
        };
        out.members += 1;
        if !stored(content, name, ctx, out) {
            return;
        }
    }
}

// -------------------------------------------------------------- cpio ----

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

struct CpioHeader {
    mode: u32,
    nlink: u32,
    size: usize,
    name: String,
    data_at: usize,
    next: usize,
}

fn hex(d: &[u8], at: usize) -> Option<u32> {
    u32::from_str_radix(std::str::from_utf8(d.get(at..at + 8)?).ok()?, 16).ok()
}

fn oct(d: &[u8], at: usize, len: usize) -> Option<u64> {
    u64::from_str_radix(std::str::from_utf8(d.get(at..at + len)?).ok()?, 8).ok()
}

fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

fn cpio_header(d: &[u8], pos: usize) -> Option<CpioHeader> {
    let magic = d.get(pos..pos + 6)?;
    if magic == b"070701" || magic == b"070702" {
        let f = |i: usize| hex(d, pos + 6 + 8 * i);
        let mode = f(1)?;
        let nlink = f(4)?;
        let size = f(6)? as usize;
        let namesize = f(11)? as usize;
        let name_at = pos + 110;
        let name = d.get(name_at..name_at.checked_add(namesize)?)?;
        let data_at = pos + align4(110 + namesize);
        let next = data_at.checked_add(align4(size))?;
        Some(CpioHeader {
            mode,
            nlink,
            size,
            name: cname(name),
            data_at,
            next,
        })
    } else if magic == b"070707" {
        let mode = oct(d, pos + 18, 6)? as u32;
        let nlink = oct(d, pos + 42, 6)? as u32;
        let namesize = oct(d, pos + 59, 6)? as usize;
        let size = usize::try_from(oct(d, pos + 65, 11)?).ok()?;
        let name_at = pos + 76;
        let name = d.get(name_at..name_at.checked_add(namesize)?)?;
        let data_at = name_at + namesize;
        let next = data_at.checked_add(size)?;
        Some(CpioHeader {
            mode,
            nlink,
            size,
            name: cname(name),
            data_at,
            next,
        })
    } else {
        None
    }
}

fn cname(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

pub(crate) fn extract_cpio(data: &[u8], ctx: &Ctx<'_>, out: &mut Extraction) {
    let mut pos = 0;
    while pos < data.len() {
        if ctx.budget.entry().is_err() {
            return;
        }
        let Some(h) = cpio_header(data, pos) else {
            out.error(format!("cpio: bad header at offset {pos}"));
            return;
        };
        if h.name == "TRAILER!!!" {
            return;
        }
        out.members += 1;
        let Some(body) = data.get(h.data_at..h.data_at + h.size) else {
            out.corrupt(&h.name, "cpio: member runs past the end");
            return;
        };
        pos = h.next;
        match h.mode & S_IFMT {
            S_IFDIR => {}
            S_IFLNK => {
                let target = String::from_utf8_lossy(body).into_owned();
                out.skip(h.name, format!("symlink to {target}"));
            }
            S_IFREG if h.size == 0 && h.nlink > 1 => {
                out.skip(h.name, "hard link (data stored with another entry)")
            }
            S_IFREG => {
                if !stored(body, h.name, ctx, out) {
                    return;
                }
            }
            _ => out.skip(h.name, "device, fifo or socket"),
        }
    }
}

// --------------------------------------------------------------- rpm ----

const RPMTAG_NAME: u32 = 1000;
const RPMTAG_VERSION: u32 = 1001;
const RPMTAG_RELEASE: u32 = 1002;
const RPMTAG_ARCH: u32 = 1022;
const RPMTAG_PAYLOADCOMPRESSOR: u32 = 1125;
const RPM_STRING: u32 = 6;

fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

/// A header structure at `at`: its end and its string tags.
fn rpm_header(d: &[u8], at: usize) -> Option<(usize, Vec<(u32, String)>)> {
    if d.get(at..at + 4)? != [0x8e, 0xad, 0xe8, 0x01] {
        return None;
    }
    let count = be32(d, at + 8)? as usize;
    let store_len = be32(d, at + 12)? as usize;
    let index_at = at + 16;
    let store_at = index_at.checked_add(count.checked_mul(16)?)?;
    let end = store_at.checked_add(store_len)?;
    d.get(at..end)?;
    let mut strings = Vec::new();
    for i in 0..count.min(10_000) {
        let e = index_at + 16 * i;
        let (tag, kind, offset) = (be32(d, e)?, be32(d, e + 4)?, be32(d, e + 8)? as usize);
        if kind == RPM_STRING {
            let s = d.get(store_at + offset..end).unwrap_or_default();
            strings.push((tag, cname(&s[..s.len().min(4096)])));
        }
    }
    Some((end, strings))
}

pub(crate) fn extract_rpm(data: &[u8], ctx: &Ctx<'_>, out: &mut Extraction) {
    // 96-byte lead, signature header (padded to 8), main header, payload.
    let Some((sig_end, _)) = rpm_header(data, 96) else {
        out.error("rpm: bad signature header");
        return;
    };
    let Some((hdr_end, tags)) = rpm_header(data, sig_end.div_ceil(8) * 8) else {
        out.error("rpm: bad main header");
        return;
    };
    if ctx.budget.entry().is_err() {
        return;
    }
    out.members = 1;
    let payload = &data[hdr_end..];
    let tag = |t: u32| tags.iter().find(|(k, _)| *k == t).map(|(_, v)| v.as_str());
    let ext = match tag(RPMTAG_PAYLOADCOMPRESSOR) {
        Some("gzip") => "gz",
        Some("bzip2") => "bz2",
        Some("xz") => "xz",
        Some("lzma") => "lzma",
        Some("zstd") => "zst",
        _ => match super::detect::detect(payload) {
            Some(f) => match f {
                super::detect::Format::Gzip => "gz",
                super::detect::Format::Bzip2 => "bz2",
                super::detect::Format::Xz => "xz",
                super::detect::Format::Lzma => "lzma",
                _ => "bin",
            },
            None => "bin",
        },
    };
    let name = match (
        tag(RPMTAG_NAME),
        tag(RPMTAG_VERSION),
        tag(RPMTAG_RELEASE),
        tag(RPMTAG_ARCH),
    ) {
        (Some(n), Some(v), Some(r), Some(a)) => format!("{n}-{v}-{r}.{a}.cpio.{ext}"),
        _ => format!("payload.cpio.{ext}"),
    };
    stored(payload, name, ctx, out);
}
