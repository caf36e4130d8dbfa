//! 7z (LZMA, LZMA2, PPMd, bzip2, deflate, BCJ filters; AES-256 content
//! and header encryption), decoded block by block so that one bad block,
//! or one block needing another password, does not lose the others.

use std::collections::HashSet;
use std::io::{self, Cursor};

use sevenz_rust2::{Archive, ArchiveEntry, BlockDecoder, Error as SzError, Password};

use super::extract::{Ctx, Extraction};
use super::limits::{read_capped, skip, Metered, Ratio, ReadOutcome, Stop, DICT_MEM_LIMIT_KB};

const MEM_KB: usize = DICT_MEM_LIMIT_KB as usize;

fn is_password_error(e: &SzError) -> bool {
    matches!(
        e,
        SzError::PasswordRequired
            | SzError::MaybeBadPassword(_)
            | SzError::ChecksumVerificationFailed
            | SzError::NextHeaderCrcMismatch
    )
}

/// Open the archive headers, with the passwords when they are encrypted.
/// Returns the archive, the password that opened it (if one was needed)
/// and whether the headers were encrypted.
fn open(
    data: &[u8],
    ctx: &Ctx<'_>,
    out: &mut Extraction,
) -> Option<(Archive, Option<usize>, bool)> {
    let mut cursor = Cursor::new(data);
    match Archive::read_with_memory_limit(&mut cursor, &Password::empty(), MEM_KB) {
        Ok(a) => return Some((a, None, false)),
        Err(e) if is_password_error(&e) => {}
        Err(e) => {
            out.error(format!("7z: {e}"));
            return None;
        }
    }
    for (i, pw) in ctx.passwords.iter().enumerate() {
        if ctx.budget.check().is_err() {
            return None;
        }
        let mut cursor = Cursor::new(data);
        if let Ok(a) =
            Archive::read_with_memory_limit(&mut cursor, &Password::from(pw.as_str()), MEM_KB)
        {
            return Some((a, Some(i), true));
        }
    }
    out.error(format!(
        "7z: the archive headers are encrypted and none of the {} configured passwords matched",
        ctx.passwords.len()
    ));
    None
}

/// What became of one entry in a block attempt.
enum Outcome {
    File(Vec<u8>),
    NotFile,
    Stopped(Stop),
}

/// One entry reached in a block attempt.
struct Got {
    index: usize,
    path: String,
    outcome: Outcome,
}

/// The index of `entry` in `files` (the decoder hands out references into
/// the archive's file list).
fn index_of(files: &[ArchiveEntry], entry: &ArchiveEntry) -> usize {
    let size = std::mem::size_of::<ArchiveEntry>().max(1);
    (entry as *const ArchiveEntry as usize)
        .checked_sub(files.as_ptr() as usize)
        .map(|d| d / size)
        .filter(|&i| i < files.len() && std::ptr::eq(&files[i], entry))
        .or_else(|| files.iter().position(|f| std::ptr::eq(f, entry)))
        .unwrap_or(usize::MAX)
}

/// Decode one block with one password. Returns the entries reached and
/// the error that ended the block, if any.
fn decode_block(
    data: &[u8],
    archive: &Archive,
    block: usize,
    password: &Password,
    ctx: &Ctx<'_>,
) -> (Vec<Got>, Option<SzError>) {
    let mut cursor = Cursor::new(data);
    let decoder =
        BlockDecoder::new_with_memory_limit(1, MEM_KB, block, archive, password, &mut cursor);
    let mut got: Vec<Got> = Vec::new();
    let limits = &ctx.budget.limits;
    let files = &archive.files;
    let mut each = |entry: &ArchiveEntry, reader: &mut dyn io::Read| -> Result<bool, SzError> {
        if ctx.budget.entry().is_err() {
            return Ok(false);
        }
        let mut push = |outcome| {
            got.push(Got {
                index: index_of(files, entry),
                path: entry.name().to_string(),
                outcome,
            })
        };
        if entry.is_directory() || entry.is_anti_item {
            push(Outcome::NotFile);
            return Ok(true);
        }
        if !entry.has_stream() {
            push(Outcome::File(Vec::new()));
            return Ok(true);
        }
        let mut m = Metered::new(reader, &ctx.budget, Ratio::Archive(data.len() as u64));
        match read_capped(&mut m, limits.maximum_size, entry.size()) {
            ReadOutcome::Data(v) => {
                push(Outcome::File(v));
                Ok(true)
            }
            ReadOutcome::TooLarge => {
                push(Outcome::Stopped(Stop::MemberSize));
                // Drain the rest of the member through the budget (the
                // library would drain it uncounted), then go on.
                match skip(&mut m, u64::MAX) {
                    Ok(_) => Ok(true),
                    Err(_) if m.tripped().is_some() => Ok(false),
                    Err(e) => Err(SzError::from(e)),
                }
            }
            ReadOutcome::Failed(e) => match m.tripped() {
                Some(s) => {
                    if !s.is_archive_wide() {
                        push(Outcome::Stopped(s));
                    }
                    Ok(false)
                }
                None => Err(SzError::from(e)),
            },
        }
    };
    let result = decoder.for_each_entries(&mut each);
    (got, result.err())
}

pub(crate) fn extract(data: &[u8], ctx: &Ctx<'_>, out: &mut Extraction) {
    let Some((archive, header_pw, headers_encrypted)) = open(data, ctx, out) else {
        return;
    };
    if let Some(p) = header_pw {
        out.password = Some(ctx.passwords[p].clone());
    }
    out.members = archive.files.len() as u64;
    let mut good: Option<usize> = header_pw;
    let mut visited: HashSet<usize> = HashSet::new();
    let limits = ctx.budget.limits.clone();
    let mut per_block: Vec<Vec<usize>> = vec![Vec::new(); archive.blocks.len()];
    for (i, b) in archive.stream_map.file_block_index.iter().enumerate() {
        if let Some(list) = b.and_then(|b| per_block.get_mut(b)) {
            list.push(i);
        }
    }

    for (block, files) in per_block.iter().enumerate() {
        if ctx.budget.check().is_err() {
            break;
        }
        let encrypted = files.first().is_some_and(|&i| archive.is_file_encrypted(i));
        // Candidate passwords: none for a plain block; else the one that
        // worked before, then the others.
        let candidates: Vec<Option<usize>> = if !encrypted {
            vec![None]
        } else {
            let mut c: Vec<Option<usize>> = good.into_iter().map(Some).collect();
            c.extend(
                (0..ctx.passwords.len())
                    .filter(|&i| Some(i) != good)
                    .map(Some),
            );
            c
        };
        let mut accepted: Option<(Vec<Got>, Option<SzError>)> = None;
        for cand in candidates {
            let pw = match cand {
                Some(i) => Password::from(ctx.passwords[i].as_str()),
                None => Password::empty(),
            };
            let (got, err) = decode_block(data, &archive, block, &pw, ctx);
            let usable = got.iter().any(|g| matches!(g.outcome, Outcome::File(_)));
            if encrypted && !usable && err.is_some() && ctx.budget.stopped().is_none() {
                continue; // most likely the wrong password: try the next
            }
            if encrypted && usable {
                good = cand;
                if out.password.is_none() {
                    out.password = cand.map(|i| ctx.passwords[i].clone());
                }
            }
            accepted = Some((got, err));
            break;
        }
        let Some((got, err)) = accepted else {
            for &i in files {
                visited.insert(i);
                if archive.files[i].has_stream() {
                    out.locked(archive.files[i].name(), ctx.passwords.len());
                }
            }
            continue;
        };
        for g in got {
            visited.insert(g.index);
            match g.outcome {
                Outcome::File(v) => out.push(g.path, v, encrypted || headers_encrypted),
                Outcome::NotFile => {}
                Outcome::Stopped(s) => out.member_stopped(&g.path, s, &limits),
            }
        }
        if ctx.budget.stopped().is_some() {
            break;
        }
        if let Some(e) = err {
            out.error(format!("7z: block {block}: {e}"));
        }
        // Members of the block that were never reached.
        for &i in files {
            let f = &archive.files[i];
            if visited.insert(i) && f.has_stream() {
                out.skip(f.name(), "not decoded: the block stopped before it");
            }
        }
    }

    // Entries without data outside any block: empty files.
    for (i, f) in archive.files.iter().enumerate() {
        if ctx.budget.stopped().is_some() {
            break;
        }
        if visited.contains(&i) || f.has_stream() || f.is_directory() || f.is_anti_item {
            continue;
        }
        if ctx.budget.entry().is_err() {
            break;
        }
        out.push(f.name().to_string(), Vec::new(), headers_encrypted);
    }
}
