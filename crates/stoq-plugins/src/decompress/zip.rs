//! Zip (stored, deflate, deflate64, bzip2, lzma, xz, PPMd; ZipCrypto and
//! WinZip AES), read through the central directory, or through the local
//! headers when the central directory is missing or broken.

use std::cell::Cell;

use ::zip::read::{read_zipfile_from_stream, read_zipfile_from_stream_with_options, ZipFile};
use ::zip::result::ZipError;
use ::zip::{ZipArchive, ZipReadOptions};

use super::extract::{Ctx, Extraction};
use super::limits::{read_capped, CountingCursor, Metered, Ratio, ReadOutcome, Stop};

enum Fail {
    Stop(Stop),
    BadPassword,
    Corrupt(String),
}

fn zip_error(e: ZipError) -> Fail {
    match e {
        ZipError::InvalidPassword => Fail::BadPassword,
        ZipError::UnsupportedArchive(m) if m == ZipError::PASSWORD_REQUIRED => Fail::BadPassword,
        e => Fail::Corrupt(e.to_string()),
    }
}

/// Read one opened member through the budget. `ratio` measures the
/// compressed input the member consumes.
fn read_member<R: std::io::Read>(
    file: ZipFile<'_, R>,
    ctx: &Ctx<'_>,
    ratio: Ratio<'_>,
) -> Result<Vec<u8>, Fail> {
    let declared = file.size();
    let mut m = Metered::new(file, &ctx.budget, ratio);
    match read_capped(&mut m, ctx.budget.limits.maximum_size, declared) {
        ReadOutcome::Data(v) => Ok(v),
        ReadOutcome::TooLarge => Err(Fail::Stop(Stop::MemberSize)),
        ReadOutcome::Failed(e) => match m.tripped() {
            Some(s) => Err(Fail::Stop(s)),
            None => Err(Fail::Corrupt(e.to_string())),
        },
    }
}

/// Passwords to try, the one that worked last time first.
fn password_order(ctx: &Ctx<'_>, good: Option<usize>) -> Vec<usize> {
    let mut order: Vec<usize> = good.into_iter().collect();
    order.extend((0..ctx.passwords.len()).filter(|&i| Some(i) != good));
    order
}

/// Handle the outcome of a member read; `false` when extraction must end.
fn settle(
    out: &mut Extraction,
    ctx: &Ctx<'_>,
    path: &str,
    result: Result<Vec<u8>, Fail>,
    encrypted: bool,
) -> bool {
    match result {
        Ok(v) => out.push(path.to_string(), v, encrypted),
        Err(Fail::Stop(s)) if s.is_archive_wide() => return false,
        Err(Fail::Stop(s)) => out.member_stopped(path, s, &ctx.budget.limits),
        Err(Fail::BadPassword) => out.locked(path, ctx.passwords.len()),
        Err(Fail::Corrupt(why)) => out.corrupt(path, why),
    }
    true
}

pub(crate) fn extract(data: &[u8], ctx: &Ctx<'_>, out: &mut Extraction) {
    let consumed = Cell::new(0u64);
    let mut archive = match ZipArchive::new(CountingCursor::new(data, &consumed)) {
        Ok(a) => a,
        Err(e) => {
            out.error(format!(
                "zip central directory unreadable ({e}); members read from the local headers"
            ));
            return extract_local(data, ctx, out);
        }
    };
    out.members = archive.len() as u64;
    if archive.has_duplicate_names() {
        out.error("the zip central directory lists a name twice; one entry per name was read");
    }
    let mut good: Option<usize> = None;
    for i in 0..archive.len() {
        if ctx.budget.entry().is_err() {
            break;
        }
        let (path, is_dir, is_symlink, encrypted) = match archive.by_index_data(i) {
            Ok(e) => (
                e.name()
                    .map(|n| n.into_owned())
                    .unwrap_or_else(|_| String::from_utf8_lossy(e.name_raw()).into_owned()),
                e.is_dir(),
                e.is_symlink(),
                e.encrypted(),
            ),
            Err(e) => {
                out.error(format!("zip entry {i}: {e}"));
                continue;
            }
        };
        if is_dir {
            continue;
        }
        if is_symlink {
            out.skip(path, "symlink");
            continue;
        }
        let result = if !encrypted {
            let ratio = Ratio::Member(&consumed, consumed.get());
            archive
                .by_index(i)
                .map_err(zip_error)
                .and_then(|f| read_member(f, ctx, ratio))
        } else {
            let mut result = Err(Fail::BadPassword);
            for p in password_order(ctx, good) {
                let pw = ctx.passwords[p].as_bytes();
                let ratio = Ratio::Member(&consumed, consumed.get());
                result = archive
                    .by_index_decrypt(i, pw)
                    .map_err(zip_error)
                    .and_then(|f| read_member(f, ctx, ratio));
                match &result {
                    Ok(_) => {
                        good = Some(p);
                        if out.password.is_none() {
                            out.password = Some(ctx.passwords[p].clone());
                        }
                        break;
                    }
                    // A wrong ZipCrypto password passes the 1-byte check
                    // one time in 256 and then fails the CRC; a wrong AES
                    // password fails the HMAC. Try the next one.
                    Err(Fail::BadPassword | Fail::Corrupt(_)) => {}
                    Err(Fail::Stop(_)) => break,
                }
            }
            if matches!(result, Err(Fail::Corrupt(_))) {
                result = Err(Fail::BadPassword);
            }
            result
        };
        if !settle(out, ctx, &path, result, encrypted) {
            break;
        }
    }
}

/// Walk the local headers one after the other (no central directory).
/// Entries whose sizes are only in a data descriptor cannot be walked past.
fn extract_local(data: &[u8], ctx: &Ctx<'_>, out: &mut Extraction) {
    let mut rest: &[u8] = data;
    let mut good: Option<usize> = None;
    loop {
        if ctx.budget.entry().is_err() {
            break;
        }
        let start = rest;
        let offset = data.len() - rest.len();
        let file = match read_zipfile_from_stream(&mut rest) {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                if offset < data.len() {
                    out.error(format!("zip local header at offset {offset}: {e}"));
                }
                break;
            }
        };
        out.members += 1;
        let path = file
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| String::from_utf8_lossy(file.name_raw()).into_owned());
        if file.is_dir() {
            continue;
        }
        if file.is_symlink() {
            out.skip(path, "symlink");
            continue;
        }
        let encrypted = file.encrypted();
        let ratio = Ratio::Archive(data.len() as u64);
        let result = if !encrypted {
            read_member(file, ctx, ratio)
        } else {
            // Dropping the entry moves `rest` past its data.
            drop(file);
            let mut result = Err(Fail::BadPassword);
            for p in password_order(ctx, good) {
                let mut again = start;
                let opts = ZipReadOptions::new().password(Some(ctx.passwords[p].as_bytes()));
                result = match read_zipfile_from_stream_with_options(&mut again, opts) {
                    Ok(Some(f)) => read_member(f, ctx, ratio),
                    Ok(None) => Err(Fail::Corrupt("entry vanished".into())),
                    Err(e) => Err(zip_error(e)),
                };
                match &result {
                    Ok(_) => {
                        good = Some(p);
                        if out.password.is_none() {
                            out.password = Some(ctx.passwords[p].clone());
                        }
                        break;
                    }
                    Err(Fail::Stop(_)) => break,
                    Err(_) => {}
                }
            }
            if matches!(result, Err(Fail::Corrupt(_))) {
                result = Err(Fail::BadPassword);
            }
            result
        };
        if !settle(out, ctx, &path, result, encrypted) {
            break;
        }
    }
}
