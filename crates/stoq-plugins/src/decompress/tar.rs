//! Tar (v7, ustar, GNU, PAX), plain or inside a compressed stream.

use std::io::Read;

use ::tar::{Archive, EntryType};

use super::extract::{Ctx, Extraction};
use super::limits::{read_capped, Metered, Ratio, ReadOutcome};

/// A tar archive held in memory.
pub(crate) fn extract_plain(data: &[u8], ctx: &Ctx<'_>, out: &mut Extraction) {
    let metered = Metered::new(data, &ctx.budget, Ratio::Off);
    extract_from(metered, ctx, out);
}

/// A tar stream; `reader` must already count its bytes against the budget
/// (a [`Metered`] reader), since skipping a member reads through it.
pub(crate) fn extract_from<R: Read>(reader: R, ctx: &Ctx<'_>, out: &mut Extraction) {
    let mut archive = Archive::new(reader);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            out.error(format!("tar: {e}"));
            return;
        }
    };
    for entry in entries {
        if ctx.budget.entry().is_err() {
            break;
        }
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                if ctx.budget.stopped().is_none() {
                    out.error(format!(
                        "tar: corrupt entry ({e}); remaining members skipped"
                    ));
                }
                break;
            }
        };
        out.members += 1;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        let link = || {
            entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default()
        };
        match kind {
            EntryType::Directory => continue,
            EntryType::Symlink => {
                let reason = format!("symlink to {}", link());
                out.skip(path, reason);
                continue;
            }
            EntryType::Link => {
                let reason = format!("hard link to {}", link());
                out.skip(path, reason);
                continue;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                out.skip(path, "device or fifo");
                continue;
            }
            EntryType::XGlobalHeader | EntryType::XHeader => continue,
            _ => {}
        }
        let sparse = kind == EntryType::GNUSparse;
        let declared = entry.size();
        match read_capped(&mut entry, ctx.budget.limits.maximum_size, declared) {
            ReadOutcome::Data(v) => {
                // Holes of a sparse file are made up by the tar reader,
                // outside the metered stream: count them here.
                if sparse && ctx.budget.add(v.len() as u64).is_err() {
                    break;
                }
                out.push(path, v, false);
            }
            ReadOutcome::TooLarge => {
                if sparse && ctx.budget.add(ctx.budget.limits.maximum_size).is_err() {
                    break;
                }
                out.member_stopped(&path, super::limits::Stop::MemberSize, &ctx.budget.limits);
            }
            ReadOutcome::Failed(e) => {
                if ctx.budget.stopped().is_some() {
                    break;
                }
                out.corrupt(&path, format!("tar: {e}"));
                break;
            }
        }
    }
}
