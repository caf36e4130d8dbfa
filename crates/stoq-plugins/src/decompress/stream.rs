//! Single compressed streams: gzip, bzip2, xz, lzma ("LZMA alone"). A
//! stream holding a tar archive is extracted as that archive
//! (`tar.gz`, ...); any other stream gives one member.

use std::cell::Cell;
use std::io::{self, Cursor, Read};

use bzip2::read::MultiBzDecoder;
use flate2::read::MultiGzDecoder;
use lzma_rust2::{LzmaReader, XzReader};

use super::detect::{is_tar_header, Format};
use super::extract::{Ctx, Extraction};
use super::limits::{read_capped, CountingSlice, Metered, Ratio, ReadOutcome, DICT_MEM_LIMIT_KB};

fn decoder<'a>(format: Format, input: CountingSlice<'a>) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match format {
        Format::Gzip => Box::new(MultiGzDecoder::new(input)),
        Format::Bzip2 => Box::new(MultiBzDecoder::new(input)),
        Format::Xz => Box::new(XzReader::new_mem_limit(input, true, DICT_MEM_LIMIT_KB)),
        _ => Box::new(LzmaReader::new_mem_limit(input, DICT_MEM_LIMIT_KB, None)?),
    })
}

pub(crate) fn extract(data: &[u8], format: Format, ctx: &Ctx<'_>, out: &mut Extraction) {
    let consumed = Cell::new(0u64);
    let dec = match decoder(format, CountingSlice::new(data, &consumed)) {
        Ok(d) => d,
        Err(e) => {
            out.error(format!("{format}: {e}"));
            return;
        }
    };
    let mut metered = Metered::new(dec, &ctx.budget, Ratio::Stream(&consumed));

    // Look at the first block: a tar header makes it a tar archive.
    let mut head = Vec::with_capacity(512);
    let head_result = (&mut metered).take(512).read_to_end(&mut head);
    if let Err(e) = head_result {
        if ctx.budget.stopped().is_none() {
            if format == Format::Lzma && head.is_empty() {
                // "LZMA alone" has no magic: this was not one after all.
                out.format = None;
                return;
            }
            out.members = 1;
            out.corrupt(&member_name(data, format, ctx), format!("{format}: {e}"));
        }
        return;
    }
    if is_tar_header(&head) {
        out.format = Some(format.with_tar());
        let chained = Cursor::new(head).chain(metered);
        super::tar::extract_from(chained, ctx, out);
        return;
    }

    out.members = 1;
    let name = member_name(data, format, ctx);
    let declared = head.len() as u64;
    let mut chained = Cursor::new(head).chain(&mut metered);
    match read_capped(&mut chained, ctx.budget.limits.maximum_size, declared) {
        ReadOutcome::Data(v) => out.push(name, v, false),
        ReadOutcome::TooLarge => {
            out.member_stopped(&name, super::limits::Stop::MemberSize, &ctx.budget.limits)
        }
        ReadOutcome::Failed(e) => {
            if ctx.budget.stopped().is_none() {
                out.corrupt(&name, format!("{format}: {e}"));
            }
        }
    }
}

/// The name of the one member of a stream: the gzip header's original
/// name, else the payload's name minus its extension, else `unnamed`.
fn member_name(data: &[u8], format: Format, ctx: &Ctx<'_>) -> String {
    if format == Format::Gzip {
        if let Some(name) = gzip_original_name(data) {
            return name;
        }
    }
    let Some(hint) = ctx.name_hint.map(super::extract::basename) else {
        return "unnamed".to_string();
    };
    let lower = hint.to_ascii_lowercase();
    for (ext, replacement) in [
        (".tgz", ".tar"),
        (".tbz2", ".tar"),
        (".tbz", ".tar"),
        (".txz", ".tar"),
        (".gz", ""),
        (".gzip", ""),
        (".z", ""),
        (".bz2", ""),
        (".bzip2", ""),
        (".xz", ""),
        (".lzma", ""),
    ] {
        if lower.ends_with(ext) && hint.len() > ext.len() {
            return format!("{}{replacement}", &hint[..hint.len() - ext.len()]);
        }
    }
    hint.to_string()
}

/// The FNAME field of a gzip header (ISO 8859-1, RFC 1952).
pub(crate) fn gzip_original_name(data: &[u8]) -> Option<String> {
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    let flags = *data.get(3)?;
    if flags & FNAME == 0 {
        return None;
    }
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let len = u16::from_le_bytes([*data.get(10)?, *data.get(11)?]) as usize;
        pos = 12 + len;
    }
    let rest = data.get(pos..)?;
    let end = rest.iter().take(4096).position(|&b| b == 0)?;
    let name: String = rest[..end].iter().map(|&b| b as char).collect();
    (!name.is_empty()).then_some(name)
}
