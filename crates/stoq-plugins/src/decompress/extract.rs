//! The extraction entry point and its result type.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::detect::{detect, Format};
use super::external::ExternalTools;
use super::limits::{Budget, Limits, Stop, SKIPPED_LIST_MAX};
use super::{cab, external, sevenz, stream, tar, unix, zip};

/// Most error messages kept per extraction; the rest are counted.
pub const ERRORS_MAX: usize = 20;

/// One extracted member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Full path inside the archive, as stored (lossy UTF-8). Metadata
    /// only: never used as a host path.
    pub path: String,
    /// The last component of `path` (split on `/` and `\`).
    pub filename: String,
    pub content: Vec<u8>,
    /// Whether the member was encrypted (and a password opened it).
    pub encrypted: bool,
}

/// A member that was not extracted, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// Everything one extraction found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extraction {
    /// `None`: not an archive this plugin knows (not an error).
    pub format: Option<Format>,
    /// Entries the archive lists (files, directories, links), as far as
    /// they could be read.
    pub members: u64,
    pub extracted: Vec<Member>,
    /// The first [`SKIPPED_LIST_MAX`] members not extracted (directories
    /// are not listed).
    pub skipped: Vec<Skipped>,
    /// How many members were skipped in all.
    pub skipped_total: u64,
    /// Error messages (budget stops, wrong passwords, corrupt data).
    pub errors: Vec<String>,
    errors_dropped: usize,
    /// The password that opened encrypted content, if any.
    pub password: Option<String>,
    /// The budget that ended the extraction early, if any.
    pub stopped: Option<Stop>,
    /// The external tool used, if any.
    pub tool: Option<String>,
    /// Bytes decompressed in all (kept or not), as counted by the budget.
    pub decoded: u64,
    /// Encrypted members no password opened.
    pub(crate) locked: u64,
}

impl Extraction {
    pub(crate) fn new(format: Format) -> Self {
        Extraction {
            format: Some(format),
            ..Default::default()
        }
    }

    /// Add an extracted member.
    pub(crate) fn push(&mut self, path: String, content: Vec<u8>, encrypted: bool) {
        let filename = basename(&path).to_string();
        self.extracted.push(Member {
            path,
            filename,
            content,
            encrypted,
        });
    }

    /// Record a member that is not extracted.
    pub(crate) fn skip(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.skipped_total += 1;
        if self.skipped.len() < SKIPPED_LIST_MAX {
            self.skipped.push(Skipped {
                path: path.into(),
                reason: reason.into(),
            });
        }
    }

    /// Take over everything `other` found (an attempt made on the side).
    pub(crate) fn absorb(&mut self, other: Extraction) {
        self.members = self.members.max(other.members);
        self.extracted.extend(other.extracted);
        let unlisted = other
            .skipped_total
            .saturating_sub(other.skipped.len() as u64);
        for s in other.skipped {
            self.skip(s.path, s.reason);
        }
        self.skipped_total += unlisted;
        for e in other.errors {
            if self.errors.len() < ERRORS_MAX {
                self.errors.push(e);
            } else {
                self.errors_dropped += 1;
            }
        }
        self.errors_dropped += other.errors_dropped;
        self.password = self.password.take().or(other.password);
        self.tool = other.tool.or(self.tool.take());
        self.locked += other.locked;
    }

    /// Record an error message (prefixed with `decompress: `).
    pub(crate) fn error(&mut self, msg: impl AsRef<str>) {
        if self.errors.len() < ERRORS_MAX {
            self.errors.push(format!("decompress: {}", msg.as_ref()));
        } else {
            self.errors_dropped += 1;
        }
    }

    /// Record a member that a password could not open.
    pub(crate) fn locked(&mut self, path: &str, tried: usize) {
        self.locked += 1;
        self.skip(
            path,
            format!("encrypted: none of {tried} passwords matched"),
        );
    }

    /// Record a member stopped by a per-member budget, or skipped by an
    /// archive-wide one.
    pub(crate) fn member_stopped(&mut self, path: &str, stop: Stop, limits: &Limits) {
        match stop {
            Stop::MemberSize => {
                self.skip(
                    path,
                    format!("larger than maximum_size ({} bytes)", limits.maximum_size),
                );
                self.error(format!(
                    "{path}: larger than maximum_size ({} bytes); not extracted",
                    limits.maximum_size
                ));
            }
            Stop::MemberRatio => {
                self.skip(
                    path,
                    format!("compression ratio above max_ratio ({})", limits.max_ratio),
                );
                self.error(format!(
                    "{path}: compression ratio above max_ratio ({}); not extracted",
                    limits.max_ratio
                ));
            }
            _ => self.skip(path, "budget reached"),
        }
    }

    /// Record a member whose data could not be read.
    pub(crate) fn corrupt(&mut self, path: &str, why: impl std::fmt::Display) {
        self.skip(path, format!("unreadable: {why}"));
        self.error(format!("{path}: {why}"));
    }

    /// Close the record: budget message, password summary, dropped errors.
    pub(crate) fn finish(&mut self, budget: &Budget, passwords: usize) {
        self.decoded = budget.decoded();
        if self.locked > 0 {
            let n = self.locked;
            self.error(format!(
                "{n} encrypted member{} not extracted: none of the {passwords} configured passwords matched",
                if n == 1 { "" } else { "s" }
            ));
        }
        if let Some(stop) = budget.stopped() {
            self.stopped = Some(stop);
            let l = &budget.limits;
            let n = self.extracted.len();
            let msg = match stop {
                Stop::TotalSize => format!(
                    "budget max_total_size ({} bytes) reached after {n} members; remaining members skipped",
                    l.max_total_size
                ),
                Stop::Entries => format!(
                    "budget max_entries ({}) reached after {n} members; remaining members skipped",
                    l.max_entries
                ),
                Stop::Ratio => format!(
                    "budget max_ratio ({}) exceeded ({} bytes decompressed) after {n} members; remaining members skipped",
                    l.max_ratio,
                    budget.decoded()
                ),
                Stop::Cancelled => {
                    format!("cancelled (plugin timeout) after {n} members; remaining members skipped")
                }
                Stop::MemberSize | Stop::MemberRatio => String::new(),
            };
            if !msg.is_empty() {
                // Budget messages go first and are never dropped.
                self.errors.insert(0, format!("decompress: {msg}"));
            }
        }
        if self.errors_dropped > 0 {
            self.errors.push(format!(
                "decompress: {} more errors not shown",
                self.errors_dropped
            ));
            self.errors_dropped = 0;
        }
    }
}

/// The last component of an archive path (split on `/` and `\`).
pub fn basename(path: &str) -> &str {
    let trimmed = path.trim_end_matches(['/', '\\']);
    trimmed
        .rsplit(['/', '\\'])
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(trimmed)
}

/// What an extraction is allowed to do.
#[derive(Clone, Debug, Default)]
pub struct Options<'a> {
    pub limits: Limits,
    /// Passwords to try on encrypted content, in order.
    pub passwords: &'a [String],
    /// Read the data as this format instead of detecting it.
    pub force: Option<Format>,
    /// The payload's own file name, to name the member of a single
    /// compressed stream (`x.gz` → `x`) when the stream does not say.
    pub name_hint: Option<&'a str>,
    /// External tools for the formats not read natively.
    pub external: Option<&'a ExternalTools>,
    /// Set when the scan is abandoned; extraction stops at its next read.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// What extraction code gets.
pub(crate) struct Ctx<'a> {
    pub budget: Budget,
    pub passwords: &'a [String],
    pub name_hint: Option<&'a str>,
    pub external: Option<&'a ExternalTools>,
}

/// Extract every member of `data` within `limits`, trying `passwords` on
/// encrypted content. Never panics and never touches the file system
/// (formats that need an external tool are not extracted: see
/// [`extract_with`]). Data that is not a known archive gives an
/// `Extraction` whose `format` is `None`.
pub fn extract(data: &[u8], limits: &Limits, passwords: &[String]) -> Extraction {
    extract_with(
        data,
        &Options {
            limits: limits.clone(),
            passwords,
            ..Options::default()
        },
    )
}

/// [`extract`] with every option.
pub fn extract_with(data: &[u8], opts: &Options<'_>) -> Extraction {
    let Some(format) = opts.force.or_else(|| detect(data)) else {
        return Extraction::default();
    };
    let ctx = Ctx {
        budget: Budget::new(opts.limits.clone(), opts.cancel.clone()),
        passwords: opts.passwords,
        name_hint: opts.name_hint,
        external: opts.external,
    };
    let mut out = Extraction::new(format);
    let run = catch_unwind(AssertUnwindSafe(|| {
        run_format(format, data, &ctx, &mut out);
    }));
    if run.is_err() {
        out.error(format!(
            "internal error while reading the {format} archive (a decoder panicked); \
             members read before it are kept"
        ));
    }
    out.finish(&ctx.budget, ctx.passwords.len());
    out
}

fn run_format(format: Format, data: &[u8], ctx: &Ctx<'_>, out: &mut Extraction) {
    match format {
        Format::Zip => zip::extract(data, ctx, out),
        Format::Tar => tar::extract_plain(data, ctx, out),
        Format::Gzip
        | Format::Bzip2
        | Format::Xz
        | Format::Lzma
        | Format::TarGzip
        | Format::TarBzip2
        | Format::TarXz
        | Format::TarLzma => stream::extract(data, format.without_tar(), ctx, out),
        Format::SevenZip => sevenz::extract(data, ctx, out),
        Format::Cab => cab::extract(data, ctx, out),
        Format::Ar => unix::extract_ar(data, ctx, out),
        Format::Cpio => unix::extract_cpio(data, ctx, out),
        Format::Rpm => unix::extract_rpm(data, ctx, out),
        Format::Rar | Format::Ace | Format::Arj | Format::Lzh | Format::Iso => {
            external::extract(format, data, ctx, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basenames() {
        assert_eq!(basename("a/b/c.txt"), "c.txt");
        assert_eq!(basename("..\\..\\evil.txt"), "evil.txt");
        assert_eq!(basename("../../evil.txt"), "evil.txt");
        assert_eq!(basename("dir/"), "dir");
        assert_eq!(basename("plain"), "plain");
        assert_eq!(basename(""), "");
        assert_eq!(basename("/"), "");
    }
}
