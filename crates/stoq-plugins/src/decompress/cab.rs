//! Microsoft Cabinet (stored, MSZIP, LZX).
//!
//! The `cab` crate opens one file at a time and decodes its folder from the
//! start each time, which is quadratic in the number of files. So the file
//! table is read here, and the crate is handed a copy of the cabinet whose
//! file table is replaced by one synthetic file per folder spanning the
//! whole folder: each folder is then decoded once, front to back, and cut
//! into its members.

use std::io::{Cursor, Read, Seek, SeekFrom};

use cab::Cabinet;

use super::extract::{Ctx, Extraction};
use super::limits::{read_capped, skip, Metered, Ratio, ReadOutcome, Stop};

const FLAG_PREV_CABINET: u16 = 0x0001;
const FLAG_NEXT_CABINET: u16 = 0x0002;
const FLAG_RESERVE_PRESENT: u16 = 0x0004;
const ATTR_NAME_IS_UTF: u16 = 0x0080;
const NAME_MAX: usize = 256;

struct CabFile {
    path: String,
    size: u32,
    offset: u32,
    folder: u16,
}

struct Header {
    folders: usize,
    files: Vec<CabFile>,
}

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn cstr_end(d: &[u8], at: usize) -> Option<usize> {
    let rest = d.get(at..)?;
    let n = rest.iter().take(NAME_MAX + 1).position(|&b| b == 0)?;
    Some(at + n + 1)
}

fn parse(d: &[u8]) -> Option<Header> {
    let files_at = u32_at(d, 16)? as usize;
    let folders = u16_at(d, 26)? as usize;
    let count = u16_at(d, 28)? as usize;
    let flags = u16_at(d, 30)?;
    let mut pos = 36;
    let mut folder_reserve = 0usize;
    if flags & FLAG_RESERVE_PRESENT != 0 {
        let header_reserve = u16_at(d, 36)? as usize;
        folder_reserve = *d.get(38)? as usize;
        pos = 40 + header_reserve;
    }
    for flag in [FLAG_PREV_CABINET, FLAG_NEXT_CABINET] {
        if flags & flag != 0 {
            pos = cstr_end(d, pos)?;
            pos = cstr_end(d, pos)?;
        }
    }
    // The folder table must be there, even if only its count is used.
    d.get(pos..pos + folders * (8 + folder_reserve))?;
    let mut files = Vec::with_capacity(count);
    let mut at = files_at;
    for _ in 0..count {
        let size = u32_at(d, at)?;
        let offset = u32_at(d, at + 4)?;
        let folder = u16_at(d, at + 8)?;
        let attribs = u16_at(d, at + 14)?;
        let end = cstr_end(d, at + 16)?;
        let raw = &d[at + 16..end - 1];
        let name = if attribs & ATTR_NAME_IS_UTF != 0 {
            String::from_utf8_lossy(raw).into_owned()
        } else {
            // Not UTF-8 by declaration: keep ASCII, map the rest as Latin-1.
            raw.iter().map(|&b| b as char).collect()
        };
        files.push(CabFile {
            path: name.replace('\\', "/"),
            size,
            offset,
            folder,
        });
        at = end;
    }
    Some(Header { folders, files })
}

fn synthetic_name(folder: usize) -> String {
    format!("stoq-folder-{folder}")
}

/// A copy of the cabinet whose file table lists one file per folder.
fn patched(d: &[u8], extents: &[(usize, u64)]) -> Option<Vec<u8>> {
    let table_at = u32::try_from(d.len()).ok()?;
    let mut p = Vec::with_capacity(d.len() + extents.len() * 32);
    p.extend_from_slice(d);
    for &(folder, extent) in extents {
        p.extend_from_slice(&u32::try_from(extent).ok()?.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p.extend_from_slice(&u16::try_from(folder).ok()?.to_le_bytes());
        p.extend_from_slice(&0x21u16.to_le_bytes()); // 1980-01-01
        p.extend_from_slice(&0u16.to_le_bytes());
        p.extend_from_slice(&0u16.to_le_bytes());
        p.extend_from_slice(synthetic_name(folder).as_bytes());
        p.push(0);
    }
    p[16..20].copy_from_slice(&table_at.to_le_bytes());
    p[28..30].copy_from_slice(&u16::try_from(extents.len()).ok()?.to_le_bytes());
    Some(p)
}

enum Done {
    Data(Vec<u8>),
    Stopped(Stop),
    Corrupt(String),
    Skip(&'static str),
}

pub(crate) fn extract(data: &[u8], ctx: &Ctx<'_>, out: &mut Extraction) {
    let Some(header) = parse(data) else {
        out.error("cab: truncated or malformed header");
        return;
    };
    out.members = header.files.len() as u64;
    let mut done: Vec<Option<Done>> = (0..header.files.len()).map(|_| None).collect();

    // Files per folder, in folder order.
    let mut per_folder: Vec<Vec<usize>> = vec![Vec::new(); header.folders];
    for (i, f) in header.files.iter().enumerate() {
        match per_folder.get_mut(f.folder as usize) {
            Some(list) => list.push(i),
            None if f.folder >= 0xfffd => {
                done[i] = Some(Done::Skip("continued in another cabinet of a set"))
            }
            None => done[i] = Some(Done::Corrupt(format!("folder {} does not exist", f.folder))),
        }
    }
    for list in &mut per_folder {
        list.sort_by_key(|&i| (header.files[i].offset, i));
    }
    let extents: Vec<(usize, u64)> = per_folder
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(folder, l)| {
            let end = l
                .iter()
                .map(|&i| header.files[i].offset as u64 + header.files[i].size as u64)
                .max()
                .unwrap_or(0);
            (folder, end.min(u32::MAX as u64))
        })
        .collect();

    let cabinet = patched(data, &extents).map(|p| Cabinet::new(Cursor::new(p)));
    let mut cabinet = match cabinet {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            out.error(format!("cab: {e}"));
            None
        }
        None => {
            out.error("cab: the cabinet is too large");
            None
        }
    };

    if let Some(cabinet) = cabinet.as_mut() {
        'folders: for &(folder, _) in &extents {
            let list = &per_folder[folder];
            let reader = match cabinet.read_file(&synthetic_name(folder)) {
                Ok(r) => r,
                Err(e) => {
                    for &i in list {
                        done[i] = Some(Done::Corrupt(format!("folder {folder}: {e}")));
                    }
                    continue;
                }
            };
            let mut m = Metered::new(reader, &ctx.budget, Ratio::Archive(data.len() as u64));
            let mut pos: u64 = 0;
            for (n, &i) in list.iter().enumerate() {
                if ctx.budget.entry().is_err() {
                    break 'folders;
                }
                let f = &header.files[i];
                let offset = f.offset as u64;
                let moved: Result<(), String> = if offset > pos {
                    match skip(&mut m, offset - pos) {
                        Ok(k) if k == offset - pos => Ok(()),
                        Ok(_) => Err("folder data ends before the member".into()),
                        Err(e) => Err(e.to_string()),
                    }
                } else if offset < pos {
                    // Overlapping members (never made by real tools): the
                    // folder is decoded again from the start.
                    match ctx.budget.add(offset) {
                        Ok(()) => m
                            .get_mut()
                            .seek(SeekFrom::Start(offset))
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                        Err(_) => break 'folders,
                    }
                } else {
                    Ok(())
                };
                if let Err(why) = moved {
                    if ctx.budget.stopped().is_some() {
                        break 'folders;
                    }
                    for &j in &list[n..] {
                        done[j] = Some(Done::Corrupt(format!("cab: {why}")));
                    }
                    continue 'folders;
                }
                pos = offset;
                let size = f.size as u64;
                let cap = ctx.budget.limits.maximum_size;
                match read_capped((&mut m).take(size), cap, size) {
                    ReadOutcome::Data(v) => {
                        pos += v.len() as u64;
                        done[i] = Some(if (v.len() as u64) < size {
                            Done::Corrupt("cab: folder data ends inside the member".into())
                        } else {
                            Done::Data(v)
                        });
                    }
                    ReadOutcome::TooLarge => {
                        pos += cap + 1;
                        done[i] = Some(Done::Stopped(Stop::MemberSize));
                    }
                    ReadOutcome::Failed(e) => {
                        if ctx.budget.stopped().is_some() {
                            break 'folders;
                        }
                        for &j in &list[n..] {
                            done[j] = Some(Done::Corrupt(format!("cab: {e}")));
                        }
                        continue 'folders;
                    }
                }
            }
        }
    }

    let limits = ctx.budget.limits.clone();
    for (f, d) in header.files.into_iter().zip(done) {
        match d {
            Some(Done::Data(v)) => out.push(f.path, v, false),
            Some(Done::Stopped(s)) => out.member_stopped(&f.path, s, &limits),
            Some(Done::Corrupt(why)) => out.corrupt(&f.path, why),
            Some(Done::Skip(why)) => out.skip(f.path, why),
            None => {}
        }
    }
}
