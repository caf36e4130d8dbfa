//! The one place where decompression is capped.
//!
//! Every byte a decoder produces goes through a [`Metered`] reader, which
//! adds it to the archive's [`Budget`] and stops the read (with an I/O error
//! carrying a [`Stop`]) as soon as a budget is exceeded: total bytes
//! decompressed from the archive, compression ratio, or cancellation. Each
//! member is then read with [`read_capped`], which stops at
//! `maximum_size + 1` bytes. Declared sizes are never trusted: they only
//! size the first allocation, capped at [`PREALLOC_MAX`].

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The ratio budget is checked only once a scope has produced this many
/// bytes, so small, very compressible files (a few MiB of zeros) pass.
pub const RATIO_FLOOR: u64 = 16 << 20;

/// Largest dictionary or model an LZMA/LZMA2/xz/7z decoder may allocate,
/// in KiB (256 MiB; `xz -9` and `7z -mx=9` use 64 MiB).
pub const DICT_MEM_LIMIT_KB: u32 = 256 * 1024;

/// Largest allocation made up front from a declared (untrusted) size.
pub const PREALLOC_MAX: u64 = 1 << 20;

/// Most bytes a [`Metered`] reader asks its decoder for at once, so a
/// budget is never overshot by more than this.
pub const READ_CHUNK: usize = 256 << 10;

/// Longest `skipped` list kept in the results (the count is still exact).
pub const SKIPPED_LIST_MAX: usize = 100;

/// Budgets of one extraction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest member, in bytes (`maximum_size`); a larger member is not
    /// extracted.
    pub maximum_size: u64,
    /// Most bytes decompressed from one archive, kept or not
    /// (`max_total_size`); extraction stops there.
    pub max_total_size: u64,
    /// Most entries (files, directories, links) looked at in one archive
    /// (`max_entries`).
    pub max_entries: u64,
    /// Highest uncompressed/compressed ratio (`max_ratio`), checked once
    /// [`RATIO_FLOOR`] bytes have come out; 0 turns the check off.
    pub max_ratio: u64,
}

/// Default of `maximum_size` (the public plugin's value).
pub const DEFAULT_MAXIMUM_SIZE: u64 = 50_000_000;
/// Default of `max_total_size`.
pub const DEFAULT_MAX_TOTAL_SIZE: u64 = 500_000_000;
/// Default of `max_entries`.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;
/// Default of `max_ratio`.
pub const DEFAULT_MAX_RATIO: u64 = 200;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            maximum_size: DEFAULT_MAXIMUM_SIZE,
            max_total_size: DEFAULT_MAX_TOTAL_SIZE,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_ratio: DEFAULT_MAX_RATIO,
        }
    }
}

/// Why reading stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// One member passed `maximum_size` (only that member is lost).
    MemberSize,
    /// One member passed `max_ratio` (only that member is lost).
    MemberRatio,
    /// The archive passed `max_total_size`.
    TotalSize,
    /// The archive has more than `max_entries` entries.
    Entries,
    /// The archive (or its outer stream) passed `max_ratio`.
    Ratio,
    /// The scan was abandoned (plugin timeout).
    Cancelled,
}

impl Stop {
    /// Whether the whole extraction ends (as opposed to one member).
    pub fn is_archive_wide(self) -> bool {
        !matches!(self, Stop::MemberSize | Stop::MemberRatio)
    }
}

/// The error a [`Metered`] reader returns when it stops.
#[derive(Debug, Clone, Copy)]
pub struct BudgetExceeded(pub Stop);

impl fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "decompression budget exceeded: {:?}", self.0)
    }
}

impl std::error::Error for BudgetExceeded {}

fn stop_error(stop: Stop) -> io::Error {
    io::Error::other(BudgetExceeded(stop))
}

/// The [`Stop`] inside an I/O error made by a [`Metered`] reader, if the
/// decoder passed it through unchanged.
pub fn stop_of(e: &io::Error) -> Option<Stop> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<BudgetExceeded>())
        .map(|b| b.0)
}

/// The running budget of one archive. Shared by reference between the
/// readers of that archive (single thread), hence the `Cell`s.
#[derive(Debug)]
pub struct Budget {
    pub limits: Limits,
    decoded: Cell<u64>,
    entries: Cell<u64>,
    stopped: Cell<Option<Stop>>,
    cancel: Option<Arc<AtomicBool>>,
}

impl Budget {
    pub fn new(limits: Limits, cancel: Option<Arc<AtomicBool>>) -> Self {
        Budget {
            limits,
            decoded: Cell::new(0),
            entries: Cell::new(0),
            stopped: Cell::new(None),
            cancel,
        }
    }

    /// Bytes decompressed so far.
    pub fn decoded(&self) -> u64 {
        self.decoded.get()
    }

    /// The archive-wide stop, once one has happened.
    pub fn stopped(&self) -> Option<Stop> {
        self.stopped.get()
    }

    /// Record an archive-wide stop (the first one wins).
    pub fn stop(&self, stop: Stop) {
        if self.stopped.get().is_none() {
            self.stopped.set(Some(stop));
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Check cancellation and earlier stops; `Err` once the archive is done.
    pub fn check(&self) -> Result<(), Stop> {
        if let Some(s) = self.stopped.get() {
            return Err(s);
        }
        if self.cancelled() {
            self.stop(Stop::Cancelled);
            return Err(Stop::Cancelled);
        }
        Ok(())
    }

    /// Count one entry against `max_entries`.
    pub fn entry(&self) -> Result<(), Stop> {
        self.check()?;
        let n = self.entries.get() + 1;
        self.entries.set(n);
        if n > self.limits.max_entries {
            self.stop(Stop::Entries);
            return Err(Stop::Entries);
        }
        Ok(())
    }

    /// Count `n` bytes decompressed outside a [`Metered`] reader (an
    /// external tool's output, expanded sparse data, data skipped by a
    /// seek) against `max_total_size`.
    pub fn add(&self, n: u64) -> Result<(), Stop> {
        self.check()?;
        let total = self.decoded.get().saturating_add(n);
        self.decoded.set(total);
        if total > self.limits.max_total_size {
            self.stop(Stop::TotalSize);
            return Err(Stop::TotalSize);
        }
        Ok(())
    }

    fn ratio_exceeded(&self, out: u64, input: u64) -> bool {
        let max = self.limits.max_ratio;
        max != 0 && out > RATIO_FLOOR && out > max.saturating_mul(input.max(1))
    }
}

/// What the ratio of a [`Metered`] reader is measured against.
#[derive(Clone, Copy, Debug)]
pub enum Ratio<'a> {
    /// No ratio check.
    Off,
    /// One member, against the compressed input read since the second
    /// value of the counter (see [`CountingCursor`]): exceeding stops the
    /// member.
    Member(&'a Cell<u64>, u64),
    /// The whole archive, this many bytes long, against everything
    /// decompressed from it so far: exceeding stops the archive.
    Archive(u64),
    /// An outer compressed stream, against the input bytes it has consumed
    /// so far: exceeding stops the archive.
    Stream(&'a Cell<u64>),
}

/// A reader that counts what a decoder produces against a [`Budget`].
pub struct Metered<'b, R> {
    inner: R,
    budget: &'b Budget,
    ratio: Ratio<'b>,
    out: u64,
    tripped: Option<Stop>,
}

impl<'b, R: Read> Metered<'b, R> {
    pub fn new(inner: R, budget: &'b Budget, ratio: Ratio<'b>) -> Self {
        Metered {
            inner,
            budget,
            ratio,
            out: 0,
            tripped: None,
        }
    }

    /// The stop that ended this reader, if any (member or archive-wide).
    pub fn tripped(&self) -> Option<Stop> {
        self.tripped.or(self.budget.stopped())
    }

    /// Bytes this reader has produced.
    pub fn produced(&self) -> u64 {
        self.out
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    fn trip(&mut self, stop: Stop) -> io::Error {
        self.tripped = Some(stop);
        if stop.is_archive_wide() {
            self.budget.stop(stop);
        }
        stop_error(stop)
    }
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(s) = self.tripped {
            return Err(stop_error(s));
        }
        if let Err(s) = self.budget.check() {
            return Err(self.trip(s));
        }
        // Small reads keep the overshoot past a budget small.
        let want = buf.len().min(READ_CHUNK);
        let n = self.inner.read(&mut buf[..want])?;
        self.out += n as u64;
        let total = self.budget.decoded.get().saturating_add(n as u64);
        self.budget.decoded.set(total);
        if total > self.budget.limits.max_total_size {
            return Err(self.trip(Stop::TotalSize));
        }
        let exceeded = match self.ratio {
            Ratio::Off => None,
            Ratio::Member(consumed, base) => self
                .budget
                .ratio_exceeded(self.out, consumed.get().saturating_sub(base))
                .then_some(Stop::MemberRatio),
            Ratio::Archive(len) => self
                .budget
                .ratio_exceeded(total, len)
                .then_some(Stop::Ratio),
            Ratio::Stream(consumed) => self
                .budget
                .ratio_exceeded(self.out, consumed.get())
                .then_some(Stop::Ratio),
        };
        if let Some(stop) = exceeded {
            return Err(self.trip(stop));
        }
        Ok(n)
    }
}

/// A reader over an in-memory slice that counts what it hands out (the
/// compressed input a decoder has consumed, for [`Ratio::Stream`]).
pub struct CountingSlice<'a> {
    data: &'a [u8],
    consumed: &'a Cell<u64>,
}

impl<'a> CountingSlice<'a> {
    pub fn new(data: &'a [u8], consumed: &'a Cell<u64>) -> Self {
        CountingSlice { data, consumed }
    }
}

impl Read for CountingSlice<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.data.read(buf)?;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

/// A seekable in-memory reader that counts the bytes it hands out (the
/// compressed input of random-access formats, for [`Ratio::Member`]).
pub struct CountingCursor<'a> {
    inner: io::Cursor<&'a [u8]>,
    consumed: &'a Cell<u64>,
}

impl<'a> CountingCursor<'a> {
    pub fn new(data: &'a [u8], consumed: &'a Cell<u64>) -> Self {
        CountingCursor {
            inner: io::Cursor::new(data),
            consumed,
        }
    }
}

impl Read for CountingCursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

impl io::Seek for CountingCursor<'_> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// The outcome of reading one member.
#[derive(Debug)]
pub enum ReadOutcome {
    /// The whole member, at most `cap` bytes.
    Data(Vec<u8>),
    /// The member has more than `cap` bytes; `cap + 1` were read.
    TooLarge,
    /// The reader failed (a budget stop shows up as a [`BudgetExceeded`]
    /// error, see [`stop_of`] and [`Metered::tripped`]).
    Failed(io::Error),
}

/// Read a member to its end, keeping at most `cap` bytes. `size_hint` (a
/// declared size) only sizes the first allocation.
pub fn read_capped<R: Read>(reader: R, cap: u64, size_hint: u64) -> ReadOutcome {
    let mut buf = Vec::with_capacity(size_hint.min(cap).min(PREALLOC_MAX) as usize);
    let mut limited = reader.take(cap.saturating_add(1));
    match limited.read_to_end(&mut buf) {
        Ok(_) if buf.len() as u64 > cap => ReadOutcome::TooLarge,
        Ok(_) => ReadOutcome::Data(buf),
        Err(e) => ReadOutcome::Failed(e),
    }
}

/// Read and discard up to `n` bytes (through a [`Metered`] reader, so the
/// work is counted). Returns how many bytes were skipped.
pub fn skip<R: Read>(reader: R, n: u64) -> io::Result<u64> {
    io::copy(&mut reader.take(n), &mut io::sink())
}

/// Set a flag when dropped: the async side of a scan holds one, so when the
/// engine abandons the scan (timeout), the blocking extraction sees the
/// flag at its next read and stops.
#[derive(Debug)]
pub struct CancelOnDrop(pub Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(total: u64, member: u64, ratio: u64) -> Limits {
        Limits {
            maximum_size: member,
            max_total_size: total,
            max_entries: 3,
            max_ratio: ratio,
        }
    }

    #[test]
    fn member_cap_and_total_cap() {
        let b = Budget::new(small(100, 10, 0), None);
        let data = [7u8; 256];
        match read_capped(Metered::new(&data[..5], &b, Ratio::Off), 10, 1 << 40) {
            ReadOutcome::Data(v) => assert_eq!(v.len(), 5),
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            read_capped(Metered::new(&data[..], &b, Ratio::Off), 10, 0),
            ReadOutcome::TooLarge
        ));
        let mut m = Metered::new(&data[..], &b, Ratio::Off);
        match read_capped(&mut m, 1000, 0) {
            ReadOutcome::Failed(e) => assert_eq!(stop_of(&e), Some(Stop::TotalSize)),
            o => panic!("{o:?}"),
        }
        assert_eq!(m.tripped(), Some(Stop::TotalSize));
        assert_eq!(b.stopped(), Some(Stop::TotalSize));
        assert_eq!(b.entry(), Err(Stop::TotalSize));
    }

    #[test]
    fn entries_and_cancel() {
        let b = Budget::new(small(100, 10, 0), None);
        assert!(b.entry().is_ok() && b.entry().is_ok() && b.entry().is_ok());
        assert_eq!(b.entry(), Err(Stop::Entries));
        let flag = Arc::new(AtomicBool::new(false));
        let b = Budget::new(Limits::default(), Some(flag.clone()));
        drop(CancelOnDrop(flag));
        assert_eq!(b.check(), Err(Stop::Cancelled));
    }

    #[test]
    fn ratio_only_past_the_floor() {
        let b = Budget::new(small(u64::MAX, u64::MAX, 100), None);
        let zeros = io::repeat(0).take(RATIO_FLOOR + (1 << 20));
        let input = Cell::new(5000);
        let mut m = Metered::new(zeros, &b, Ratio::Member(&input, 4000));
        // 16 MiB from 1000 bytes is far above 100:1, but the floor holds.
        assert!(matches!(
            read_capped(&mut m, RATIO_FLOOR - 1, 0),
            ReadOutcome::TooLarge
        ));
        let zeros = io::repeat(0).take(1 << 30);
        let mut m = Metered::new(zeros, &b, Ratio::Member(&input, 4000));
        match read_capped(&mut m, u64::MAX - 1, 0) {
            ReadOutcome::Failed(e) => assert_eq!(stop_of(&e), Some(Stop::MemberRatio)),
            o => panic!("{o:?}"),
        }
        assert!(m.produced() < RATIO_FLOOR + (1 << 20));
        // A member stop leaves the archive going.
        assert_eq!(b.stopped(), None);
    }
}
